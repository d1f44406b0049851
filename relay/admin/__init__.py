"""Operator tooling: replay, dead letters, stats, inspect, purge, export, reroute and the audit
trail.

The ``relay`` command's operator subcommands are thin over these functions, and these are thin
over :mod:`relay._store` (no SQL here). Every function takes the engine and, where time matters,
``now`` (aware UTC); mutating ones take ``actor`` (default: the OS user) and write one entry to
the audit trail, whose count grows inside each batch's own transaction. Dry runs
(:func:`preview`, :func:`preview_dead_letters`, ``purge(dry_run=True)``) write nothing.

Selections are :class:`EventFilter`s, built from typed values or from an operator's text with
:func:`build_filter`; a bad filter raises :class:`FilterError` before anything changes, and an
empty one is refused unless ``allow_all=True``.

Example::

    from relay.admin import EventFilter, preview, replay

    f = EventFilter(events=("svc.surveys.survey_delivered",), states=(OutboxState.DEAD,))
    print(preview(engine, f, now=now).count)
    result = replay(engine, f, now=now, actor="alice")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Public name -> private module defining it. Imported on first use (PEP 562), so `relay stats`
#: loads the stats module and what it needs, not every operator tool.
_EXPORTS: dict[str, str] = {
    "FilterError": "relay._errors",
    "AuditEntry": "relay._store.audit",
    "BreakdownRow": "relay._store.selection",
    "EventFilter": "relay._store.selection",
    "StoredRow": "relay._store.selection",
    "DEFAULT_AUDIT_LIMIT": "relay.admin._audit",
    "audit_entries": "relay.admin._audit",
    "default_actor": "relay.admin._audit",
    "DeadLetterGroup": "relay.admin._dead_letters",
    "dead_letters": "relay.admin._dead_letters",
    "discard_dead_letters": "relay.admin._dead_letters",
    "preview_dead_letters": "relay.admin._dead_letters",
    "requeue_dead_letters": "relay.admin._dead_letters",
    "show_dead_letter": "relay.admin._dead_letters",
    "build_filter": "relay.admin._filters",
    "check_filter": "relay.admin._filters",
    "parse_duration": "relay.admin._filters",
    "parse_instant": "relay.admin._filters",
    "EXPORT_PAGE_SIZE": "relay.admin._inspection",
    "EventDetail": "relay.admin._inspection",
    "export_events": "relay.admin._inspection",
    "inspect_event": "relay.admin._inspection",
    "DEFAULT_BATCH_SIZE": "relay.admin._replay",
    "DEFAULT_SAMPLE_SIZE": "relay.admin._replay",
    "BatchProgress": "relay.admin._replay",
    "BatchResult": "relay.admin._replay",
    "Preview": "relay.admin._replay",
    "preview": "relay.admin._replay",
    "replay": "relay.admin._replay",
    "ReroutePreview": "relay.admin._reroute",
    "preview_reroute": "relay.admin._reroute",
    "reroute": "relay.admin._reroute",
    "PurgeResult": "relay.admin._retention",
    "purge": "relay.admin._retention",
    "Stats": "relay.admin._stats",
    "stats": "relay.admin._stats",
}

__all__ = [
    "DEFAULT_AUDIT_LIMIT",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_SAMPLE_SIZE",
    "EXPORT_PAGE_SIZE",
    "AuditEntry",
    "BatchProgress",
    "BatchResult",
    "BreakdownRow",
    "DeadLetterGroup",
    "EventDetail",
    "EventFilter",
    "FilterError",
    "Preview",
    "PurgeResult",
    "ReroutePreview",
    "Stats",
    "StoredRow",
    "audit_entries",
    "build_filter",
    "check_filter",
    "dead_letters",
    "default_actor",
    "discard_dead_letters",
    "export_events",
    "inspect_event",
    "parse_duration",
    "parse_instant",
    "preview",
    "preview_dead_letters",
    "preview_reroute",
    "purge",
    "replay",
    "requeue_dead_letters",
    "reroute",
    "show_dead_letter",
    "stats",
]


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'relay.admin' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:
    from relay._errors import FilterError
    from relay._store.audit import AuditEntry
    from relay._store.selection import BreakdownRow, EventFilter, StoredRow
    from relay.admin._audit import DEFAULT_AUDIT_LIMIT, audit_entries, default_actor
    from relay.admin._dead_letters import (
        DeadLetterGroup,
        dead_letters,
        discard_dead_letters,
        preview_dead_letters,
        requeue_dead_letters,
        show_dead_letter,
    )
    from relay.admin._filters import build_filter, check_filter, parse_duration, parse_instant
    from relay.admin._inspection import EXPORT_PAGE_SIZE, EventDetail, export_events, inspect_event
    from relay.admin._replay import (
        DEFAULT_BATCH_SIZE,
        DEFAULT_SAMPLE_SIZE,
        BatchProgress,
        BatchResult,
        Preview,
        preview,
        replay,
    )
    from relay.admin._reroute import ReroutePreview, preview_reroute, reroute
    from relay.admin._retention import PurgeResult, purge
    from relay.admin._stats import Stats, stats
