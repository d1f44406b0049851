"""``track_many()``: many events in the caller's transaction, in multi-row INSERTs.

For a cron run that tracks one event per employee (thousands in one transaction). Every item
is validated first, with the same rules as ``track()`` (``cron_run()`` applies). By default an
invalid item is logged and skipped and the valid ones are written; in strict mode the first
invalid item raises before anything is written. The rows then go out in chunks of multi-row
INSERTs inside one SAVEPOINT for the whole call (the only subtransaction it takes), so even a
failure only the database can see is rolled back alone: the caller's transaction carries on in
default mode, and strict mode writes nothing on a bad batch.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from relay._errors import DuplicateInsertIdError, EventValidationError
from relay._event.location import Location
from relay._event.properties import MixpanelSuperEventPropertiesSchema
from relay._store import check_writable, connection_of, insert_rows, pending_row
from relay._tracking import config
from relay._tracking.guard import FireAndForget
from relay._tracking.observers import notify_independent, notify_tracked
from relay._tracking.prepare import PreparedEvent, prepare_event
from relay._tracking.sync import independent_connection, report_failure


@dataclass(frozen=True, slots=True)
class TrackItem:
    """One event for :func:`track_many`: the keywords of ``track()`` apart from ``strict``."""

    event: str
    distinct_id: str
    properties: MixpanelSuperEventPropertiesSchema | Mapping[str, Any]
    occurred_at: dt.datetime | None = None
    insert_id: str | None = None
    location: Location | None = None


_KEYS = frozenset(f.name for f in fields(TrackItem))
_REQUIRED = frozenset({"event", "distinct_id", "properties"})


def _as_item(item: TrackItem | Mapping[str, Any]) -> TrackItem:
    if isinstance(item, TrackItem):
        return item
    if not isinstance(item, Mapping):
        raise EventValidationError(
            f"an item must be a TrackItem or a mapping, not {type(item).__name__}"
        )
    unknown = sorted(str(k) for k in item if k not in _KEYS)
    if unknown:
        # Key names are the caller's code, not user data, but keep them short.
        raise EventValidationError(f"unknown item keys: {', '.join(k[:40] for k in unknown)}")
    missing = sorted(_REQUIRED - item.keys())
    if missing:
        raise EventValidationError(f"item lacks {', '.join(missing)}", event=item.get("event"))
    return TrackItem(**item)


def prepare_many(
    events: Iterable[TrackItem | Mapping[str, Any]], *, strict: bool
) -> list[PreparedEvent | None]:
    """Validate every item; an invalid one is logged (and raised in strict mode) or ``None``."""
    now = dt.datetime.now(dt.UTC)
    prepared: list[PreparedEvent | None] = []
    for raw in events:
        event_name = raw.event if isinstance(raw, TrackItem) else _event_of(raw)
        with FireAndForget(
            functools.partial(report_failure, event_name), strict=strict, report_raised=True
        ) as guard:
            item = _as_item(raw)
            prepared.append(
                prepare_event(
                    event=item.event,
                    distinct_id=item.distinct_id,
                    properties=item.properties,
                    occurred_at=item.occurred_at,
                    insert_id=item.insert_id,
                    now=now,
                    location=item.location,
                )
            )
        if guard.failed:
            prepared.append(None)
    return prepared


def _event_of(raw: object) -> object:
    return raw.get("event") if isinstance(raw, Mapping) else None


def track_many(
    session: Session | Connection,
    events: Iterable[TrackItem | Mapping[str, Any]],
    *,
    strict: bool | None = None,
    independent: bool = False,
) -> list[str | None]:
    """Validate and write many events in the caller's transaction; one result per item.

    Each item is a :class:`TrackItem` or a mapping with ``event``, ``distinct_id``,
    ``properties`` and optionally ``occurred_at``, ``insert_id`` and ``location``, meaning
    what they mean for ``track()``. Returns, in order, each item's ``$insert_id``, or
    ``None`` for an item refused: invalid, a duplicate ``$insert_id`` (already in the
    outbox, or earlier in ``events``), or every item when the write failed.

    Default mode: refusals are logged (event name and field, never values) and the call never
    raises; the caller's transaction carries on in every case, a database failure included
    (the write runs in one SAVEPOINT for the whole call). Strict mode: the first invalid item
    raises its ``EventContractError`` before any SQL; a duplicate raises
    :class:`~relay.DuplicateInsertIdError` and any other failure ``StoreError``, after
    rolling back to the savepoint, so a bad batch writes nothing.

    ``independent=True``: as for ``track()``, the rows are written on another connection of
    the engine, in one transaction of their own committed before the call returns (failure
    events only).
    """
    strict = config.is_strict(strict)
    prepared = prepare_many(events, strict=strict)
    results: list[str | None] = [p.insert_id if p is not None else None for p in prepared]
    valid = [p for p in prepared if p is not None]
    if not valid:
        return results
    now = dt.datetime.now(dt.UTC)
    rows = [
        pending_row(
            insert_id=p.insert_id,
            event=p.event,
            distinct_id=p.distinct_id,
            time_ms=p.time_ms,
            properties_json=p.properties_json,
            now=now,
            destination=p.destination,
        )
        for p in valid
    ]
    with FireAndForget(
        lambda exc: report_failure(valid[0].event, exc), strict=strict, report_raised=True
    ) as guard:
        if independent:
            with independent_connection(session) as conn:
                refused = _insert_all(conn, valid, rows, strict=strict)
            notify_independent(conn.engine, [p.insert_id for p in valid if id(p) not in refused])
        else:
            refused = _insert_all(session, valid, rows, strict=strict)
    if guard.failed:
        return [None] * len(results)
    for index, p in enumerate(prepared):
        if p is not None and id(p) in refused:
            results[index] = None
    for p in valid:
        if id(p) in refused:
            report_failure(p.event, DuplicateInsertIdError("$insert_id already in the outbox"))
        else:
            notify_tracked(p.event)
    return results


def _insert_all(
    session: Session | Connection,
    valid: list[PreparedEvent],
    rows: list[dict[str, Any]],
    *,
    strict: bool,
) -> set[int]:
    """Insert ``rows`` in one SAVEPOINT (no NOTIFY); the ``id()`` of each event not written."""
    conn = connection_of(session)
    check_writable(conn)
    with session.begin_nested():  # rolled back to, should anything in it raise
        written = insert_rows(conn, rows)
        refused = _first_of_each(valid, written)
        if refused and strict:
            raise DuplicateInsertIdError(
                f"{len(refused)} of {len(valid)} $insert_ids are already in the outbox "
                "or repeated in the batch; nothing was written"
            )
    return refused


def _first_of_each(valid: list[PreparedEvent], written: set[str]) -> set[int]:
    """The ``id()`` of each prepared event not written: a duplicate, or a repeat in the batch."""
    seen: set[str] = set()
    refused: set[int] = set()
    for p in valid:
        if p.insert_id in written and p.insert_id not in seen:
            seen.add(p.insert_id)
        else:
            refused.add(id(p))
    return refused
