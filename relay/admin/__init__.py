"""Operator tooling: replay, dead letters, stats, inspect, purge, export and the audit trail.

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

from relay._errors import FilterError
from relay._store.audit import AuditEntry
from relay._store.selection import BreakdownRow, EventFilter, StoredRow
from relay.admin.audit import DEFAULT_AUDIT_LIMIT, audit_entries, default_actor
from relay.admin.dead_letters import (
    DeadLetterGroup,
    dead_letters,
    discard_dead_letters,
    preview_dead_letters,
    requeue_dead_letters,
    show_dead_letter,
)
from relay.admin.filters import build_filter, check_filter, parse_duration, parse_instant
from relay.admin.inspection import EXPORT_PAGE_SIZE, EventDetail, export_events, inspect_event
from relay.admin.replay import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_SAMPLE_SIZE,
    BatchProgress,
    BatchResult,
    Preview,
    preview,
    replay,
)
from relay.admin.retention import PurgeResult, purge
from relay.admin.stats import Stats, stats

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
    "purge",
    "replay",
    "requeue_dead_letters",
    "show_dead_letter",
    "stats",
]
