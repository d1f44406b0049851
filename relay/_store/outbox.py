"""The producer side of the outbox: the row ``track()`` writes, and the statements that write it.

The store owns the row's shape (:func:`pending_row`): ``track()`` hands over a validated event
and its JSON, never column names. Every function runs in the caller's transaction, which the
caller owns: nothing here begins, commits or rolls it back beyond its own SAVEPOINT. Driver
errors leave as typed :class:`~relay._errors.StoreError` subclasses, never chained (the
driver's message quotes the bound values, which are property values).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeGuard, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from relay._event.properties import timestamp_ms_to_datetime
from relay._store._base import INSERT_HINT, store_error, translate_errors
from relay._tables import OutboxState, outbox

if TYPE_CHECKING:
    from sqlalchemy.orm import Session  # the ORM loads only when a Session is passed


def pending_row(
    *,
    insert_id: str,
    event: str,
    distinct_id: str,
    time_ms: int,
    properties: Mapping[str, Any],
    now: dt.datetime,
) -> dict[str, Any]:
    """The column values of a new pending outbox row for a validated event, at ``now``.

    Due now, or at the event's ``time`` when that is still ahead of the clock (within the
    allowed skew): Mixpanel would replace a future time by its own clock, changing the dedup
    key, so such a row waits.
    """
    return {
        "insert_id": insert_id,
        "event": event,
        "distinct_id": distinct_id,
        "time_ms": time_ms,
        "properties": properties,
        "state": OutboxState.PENDING.value,
        "attempts": 0,
        "next_attempt_at": max(now, timestamp_ms_to_datetime(time_ms)),
        "created_at": now,
        "updated_at": now,
    }


def _is_session(value: object) -> TypeGuard[Session]:
    """Whether ``value`` is an ORM ``Session``; the ORM is imported on first use, so commands
    that never track (``relay stats``) do not load it."""
    from sqlalchemy.orm import Session  # noqa: PLC0415

    return isinstance(value, Session)


def write_event(
    session: Session | Connection,
    *,
    values: Mapping[str, Any],
    properties_json: bytes,
    channel: str,
) -> None:
    """Insert one :func:`pending_row` and NOTIFY ``channel``, rolled back alone on failure.

    One pipelined round trip on PostgreSQL through psycopg
    (:func:`insert_and_notify_in_one_round_trip`), else :func:`insert_event` and
    :func:`notify` inside ``begin_nested()``. Raises a typed :class:`StoreError`, unchained
    (the driver's error quotes the bound property values); the caller's transaction carries
    on either way.
    """
    try:
        conn = session.connection() if _is_session(session) else cast(Connection, session)
        if insert_and_notify_in_one_round_trip(
            conn, values=values, properties_json=properties_json, channel=channel
        ):
            return
        with session.begin_nested():
            _insert_event(conn, values=values)
            # NOTIFY inside the business transaction is delivered only at its commit.
            _notify(conn, channel)
    except sa.exc.SQLAlchemyError as exc:  # begin_nested's SAVEPOINT or RELEASE, a bind error
        raise store_error(exc, "outbox insert", hint=INSERT_HINT) from None


def _insert_event(conn: Connection | Session, *, values: Mapping[str, Any]) -> None:
    """Insert one outbox row; ``values`` maps outbox column names to values.

    Lock: the new row (and the unique index entry for ``insert_id``), held until the caller's
    transaction ends. Guard: the caller's transaction; a rollback leaves no row.
    """
    conn.execute(sa.insert(outbox), dict(values))


@functools.lru_cache(maxsize=8)
def _pg_insert_sql(columns: tuple[str, ...]) -> str:
    """``INSERT INTO relay_outbox (columns) VALUES (...)`` with psycopg named placeholders.

    The columns are those of the values :func:`insert_event` would insert, so the two paths
    cannot drift apart; each must be a column of the table (``KeyError`` otherwise), which
    also keeps anything but column names out of the SQL.
    """
    names = [outbox.c[column].name for column in columns]
    placeholders = [
        f"CAST(%({name})s AS jsonb)" if name == "properties" else f"%({name})s" for name in names
    ]
    return (
        f"INSERT INTO {outbox.name} ({', '.join(names)}) "  # noqa: S608 - column names only
        f"VALUES ({', '.join(placeholders)})"
    )


def insert_and_notify_in_one_round_trip(
    conn: Connection, *, values: Mapping[str, Any], properties_json: bytes, channel: str
) -> bool:
    """On PostgreSQL through psycopg 3: SAVEPOINT, INSERT, ``pg_notify``, RELEASE pipelined.

    What ``track()`` needs, in one network round trip instead of four: ``values`` as for
    :func:`insert_event`, with the properties as their UTF-8 JSON text. The four statements go
    out in psycopg's pipeline mode (the extended protocol, values as bind parameters, so a
    server log of a failed statement shows placeholders, not property values) and their
    results come back together. When one fails, PostgreSQL skips the rest; this rolls back to
    the savepoint if it was taken, so the caller's transaction carries on as before, and
    raises the typed :class:`StoreError` (unchained: the driver's error quotes the values).
    Returns ``False``, having done nothing, on any other dialect or driver, on a libpq
    without pipeline mode, or on a connection in autocommit mode, where the caller takes the
    portable path
    (:func:`insert_event` and :func:`notify` in a savepoint). SQLAlchemy's statement hooks
    (``before_cursor_execute``) do not see these statements.

    Lock and guard: as :func:`insert_event`.
    """
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "psycopg":
        return False
    import psycopg  # the driver of this dialect: installed  # noqa: PLC0415

    driver = conn.connection.driver_connection
    if (
        not isinstance(driver, psycopg.Connection)
        or driver.autocommit
        or not psycopg.Pipeline.is_supported()
    ):
        return False
    params = {**values, "properties": properties_json.decode()}
    with driver.cursor() as savepoint, driver.cursor() as cursor:
        try:
            with driver.pipeline():
                savepoint.execute("SAVEPOINT relay_track")
                cursor.execute(_pg_insert_sql(tuple(params)), params)
                cursor.execute("SELECT pg_notify(%s, '')", (channel,))
                cursor.execute("RELEASE SAVEPOINT relay_track")
        except psycopg.Error as exc:
            # Roll back only to a savepoint that was taken: rolling back to one that was not
            # (the transaction was aborted before) would raise, not repair. A value psycopg
            # refused to send leaves the transaction usable, with the savepoint taken.
            if savepoint.statusmessage == "SAVEPOINT":
                with contextlib.suppress(psycopg.Error):  # the connection is gone
                    driver.execute("ROLLBACK TO SAVEPOINT relay_track")
                    driver.execute("RELEASE SAVEPOINT relay_track")
            raise store_error(exc, "outbox insert", hint=INSERT_HINT) from None
    return True


def _notify(conn: Connection | Session, channel: str) -> None:
    """Wake the relays listening on ``channel`` when the caller's transaction commits.

    PostgreSQL only (``pg_notify``, delivered at commit, dropped at rollback, identical
    notifications in one transaction folded into one); a no-op elsewhere. Lock: none.
    """
    bind = conn.get_bind() if _is_session(conn) else cast(Connection, conn)
    if bind.dialect.name != "postgresql":
        return
    conn.execute(sa.select(sa.func.pg_notify(channel, "")))


#: One outbox row written as is, driver errors translated and chained (the relay's own rows).
insert_event = translate_errors(_insert_event)
#: Wake the relays on a channel at commit, driver errors translated and chained.
notify = translate_errors(_notify)
