"""``track()`` and ``track_many()`` on Django's own connection, inside Django's transaction."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
import structlog
from django.db import connections, transaction

from relay._event.location import Location
from relay._event.properties import MixpanelSuperEventPropertiesSchema
from relay._event.registry import loggable_event_name
from relay._tracking import is_strict
from relay._tracking import track as core_track
from relay.contrib.django._bridge import borrowed_connection

logger = structlog.get_logger("relay._tracking")


@contextlib.contextmanager
def in_django_transaction(using: str) -> Iterator[sa.Connection]:
    """The borrowed connection, inside an ``atomic`` block of its own when there is none.

    Inside the caller's block the rows join its transaction (``track()`` takes its own savepoint).
    Outside any block Django is in autocommit mode and the rows are committed at once, as
    Django's own ``save()`` is; the block wrapped around them makes the savepoint valid.
    """
    if connections[using].in_atomic_block:
        with borrowed_connection(using) as conn:
            yield conn
    else:
        with transaction.atomic(using=using), borrowed_connection(using) as conn:
            yield conn


def _log_failure(event: str, exc: Exception) -> None:
    # The driver's message may quote property values or the connection string: type only.
    logger.error(
        "mixpanel_event_tracking_failed",
        event_name=loggable_event_name(event),
        error_type=type(exc).__name__,
        at="django connection",
    )


def track(
    *,
    event: str,
    distinct_id: str,
    properties: MixpanelSuperEventPropertiesSchema | Mapping[str, Any],
    occurred_at: dt.datetime | None = None,
    insert_id: str | None = None,
    strict: bool | None = None,
    location: Location | None = None,
    using: str = "default",
) -> str | None:
    """:func:`relay.track` on Django's connection ``using``, in the enclosing ``atomic()`` block.

    Same validation, result and fire-and-forget contract as :func:`relay.track`: returns the
    ``$insert_id`` written, or ``None`` when tracking failed and was logged (raises instead in
    strict mode). The row is written inside a savepoint, so a bad event never breaks the
    caller's block; it commits with the outermost block and disappears with any block that
    rolls back (an inner ``atomic()`` that rolls back removes only its own events). Outside any
    block (autocommit) the event is committed at once. On PostgreSQL the relays waiting on
    ``LISTEN`` are woken when the transaction commits.
    """
    return track_many(
        [
            {
                "event": event,
                "distinct_id": distinct_id,
                "properties": properties,
                "occurred_at": occurred_at,
                "insert_id": insert_id,
                "location": location,
            }
        ],
        strict=strict,
        using=using,
    )[0]


def track_many(
    events: Sequence[Mapping[str, Any]], *, strict: bool | None = None, using: str = "default"
) -> list[str | None]:
    """Track several events on one borrowed connection: one ``$insert_id`` or ``None`` each.

    Each item holds :func:`track`'s keyword arguments (``event``, ``distinct_id``,
    ``properties``, optionally ``occurred_at``, ``insert_id``, ``location``). Each event is
    validated and written on its own, in its own savepoint: a bad one is logged and yields
    ``None`` (raises in strict mode, leaving the events before it written) while the others
    are written.
    """
    results: list[str | None] = [None] * len(events)
    done = 0
    try:
        with in_django_transaction(using) as conn:
            for done, item in enumerate(events, start=1):
                results[done - 1] = core_track(conn, **dict(item), strict=strict)
    except Exception as exc:
        # Django's side failed (no connection, a broken block, a failed commit in autocommit
        # mode): the events not written are lost, as with relay.track, unless strict.
        if is_strict(strict):
            raise
        failed = events[done - 1] if done else (events[0] if events else {})
        _log_failure(str(failed.get("event", "")), exc)
        if not connections[using].in_atomic_block:
            # In autocommit mode the wrapping block rolled back: nothing was written.
            results = [None] * len(events)
    return results
