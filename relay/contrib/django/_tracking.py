"""``track()`` and ``track_many()`` on Django's own connection, inside Django's transaction."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
import structlog
from django.db import connections, transaction

from relay._event.location import Location
from relay._event.properties import MixpanelSuperEventPropertiesSchema
from relay._event.registry import loggable_event_name
from relay._tracking import track as core_track
from relay._tracking import track_many as core_track_many
from relay._tracking.guard import FireAndForget
from relay._tracking.observers import notify_independent
from relay._tracking.profiles import update_group as core_update_group
from relay._tracking.profiles import update_profile as core_update_profile
from relay._tracking.sync import sqlite_refusal
from relay.contrib.django._bridge import borrowed_connection
from relay.contrib.django._settings import relay_engine

logger = structlog.get_logger("relay._tracking")


@contextlib.contextmanager
def in_django_transaction(using: str) -> Iterator[sa.Connection]:
    """The borrowed connection, inside an ``atomic`` block of its own when there is none.

    Inside the caller's block the rows join its transaction. Outside any block Django is in
    autocommit mode and the rows are committed at once, as Django's own ``save()`` is (the
    block wrapped around them is that one short transaction).
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
    independent: bool = False,
) -> str | None:
    """:func:`relay.track` on Django's connection ``using``, in the enclosing ``atomic()`` block.

    Same validation, result and fire-and-forget contract as :func:`relay.track`: returns the
    ``$insert_id`` written, or ``None`` when tracking failed and was logged (raises instead in
    strict mode). A bad event is refused before any SQL and a duplicate ``$insert_id`` is
    skipped by the INSERT itself, so neither breaks the caller's block; the row commits with
    the outermost block and disappears with any block that rolls back (an inner ``atomic()``
    that rolls back removes only its own events). A failure only the database can see (the
    server gone, a permission revoked) fails the block on PostgreSQL as a failed ORM write
    would: see :func:`relay.track`. Outside any block (autocommit) the event is committed at
    once. No ``NOTIFY`` is sent: the relays notice the committed row by themselves.

    ``independent=True``: the event is written on a connection of relay's own to ``using``'s
    database (not Django's), in a transaction of its own committed before ``track()`` returns,
    so it is kept when the enclosing ``atomic()`` block (or ``ATOMIC_REQUESTS`` view) rolls
    back. For failure events (``.error``) only: see :func:`relay.track`. Each call opens and
    closes a connection (relay's engine keeps none idle).
    """

    def write(conn: sa.Connection) -> list[str | None]:
        return [
            core_track(
                conn,
                event=event,
                distinct_id=distinct_id,
                properties=properties,
                occurred_at=occurred_at,
                insert_id=insert_id,
                strict=strict,
                location=location,
            )
        ]

    return _on_django(
        write, count=1, event=event, strict=strict, using=using, independent=independent
    )[0]


def track_many(
    events: Sequence[Mapping[str, Any]],
    *,
    strict: bool | None = None,
    using: str = "default",
    independent: bool = False,
) -> list[str | None]:
    """:func:`relay.track_many` on Django's connection ``using``: an insert id or None each.

    Each item holds :func:`track`'s keyword arguments (``event``, ``distinct_id``,
    ``properties``, optionally ``occurred_at``, ``insert_id``, ``location``). The same
    contract as :func:`relay.track_many`: default mode skips and logs a bad item and writes the
    others (multi-row INSERTs, one savepoint for the call); strict mode raises before writing
    anything on a bad batch. ``independent=True`` as for :func:`track`.
    """
    first = str(events[0].get("event", "")) if events else ""
    return _on_django(
        lambda conn: core_track_many(conn, events, strict=strict),
        count=len(events),
        event=first,
        strict=strict,
        using=using,
        independent=independent,
    )


def update_profile(
    *,
    distinct_id: str,
    operation: str,
    properties: Mapping[str, Any] | Sequence[str] | None,
    strict: bool | None = None,
    using: str = "default",
) -> str | None:
    """:func:`relay.update_profile` on Django's connection ``using``, in the ``atomic()`` block.

    Same operations, checks and result; the update commits and rolls back with the enclosing
    block, as :func:`track` does (committed at once outside any block).
    """

    def write(conn: sa.Connection) -> list[str | None]:
        return [
            core_update_profile(
                conn,
                distinct_id=distinct_id,
                operation=operation,
                properties=properties,
                strict=strict,
            )
        ]

    return _on_django(write, count=1, event="profile update", strict=strict, using=using)[0]


def update_group(
    *,
    group_key: str,
    group_id: str,
    operation: str,
    properties: Mapping[str, Any] | Sequence[str] | None,
    strict: bool | None = None,
    using: str = "default",
) -> str | None:
    """:func:`relay.update_group` on Django's connection ``using``, in the ``atomic()`` block."""

    def write(conn: sa.Connection) -> list[str | None]:
        return [
            core_update_group(
                conn,
                group_key=group_key,
                group_id=group_id,
                operation=operation,
                properties=properties,
                strict=strict,
            )
        ]

    return _on_django(write, count=1, event="group profile update", strict=strict, using=using)[0]


def _on_django(
    write: Callable[[sa.Connection], list[str | None]],
    *,
    count: int,
    event: str,
    strict: bool | None,
    using: str,
    independent: bool = False,
) -> list[str | None]:
    """``write`` on the borrowed connection; on a Django-side failure, ``count`` Nones.

    ``independent``: on a connection of relay's own engine instead, in a transaction of its
    own. ``event`` names the failure in the log (the first event of a batch).
    """
    # Django's side failed (no connection, a broken block, a failed commit in autocommit mode),
    # or strict mode raised: the events are not written, as with relay.track.
    with FireAndForget(lambda exc: _log_failure(event, exc), strict=strict):
        if independent:
            django_conn = connections[using]
            if django_conn.vendor == "sqlite" and django_conn.in_atomic_block:
                raise sqlite_refusal()
            engine = relay_engine(using)
            with engine.begin() as conn:
                written = write(conn)
            notify_independent(engine, [i for i in written if i is not None])
            return written
        with in_django_transaction(using) as conn:
            return write(conn)
    return [None] * count
