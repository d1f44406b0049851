"""The producer side of the outbox: the row ``track()`` writes, and the statements that write it.

The store owns the row's shape (:func:`pending_row`): tracking hands over a validated event and
its checked JSON bytes, never column names, and those very bytes are what is stored, whatever
JSON serializer the host's engine was built with. Every function runs in the caller's
transaction and never begins, commits or rolls it back.

No SAVEPOINT per event (on PostgreSQL each one that writes takes a subtransaction id, and more
than 64 in one transaction overflow every backend's snapshot cache): every failure that can be
foreseen is ruled out before or without an SQL error. Validation happens before any SQL (in
tracking); a duplicate ``$insert_id`` is skipped by the statement itself (``ON CONFLICT DO
NOTHING`` on PostgreSQL and SQLite; on MariaDB, whose failed statement rolls back alone, a
plain INSERT whose duplicate-key error leaves the transaction as it was); relay's tables missing
or not writable is checked once per PostgreSQL connection (:func:`check_writable`) and cached.
What remains is a failure only the database can see (see :func:`write_event`).

Driver errors leave as typed :class:`~relay._errors.StoreError` subclasses, unchained on the
tracking path (the driver's message quotes the bound values, which are property values).
"""

from __future__ import annotations

import datetime as dt
import functools
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeGuard, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from relay._errors import DuplicateInsertIdError, OutboxTablesMissingError, StoreError
from relay._event.properties import timestamp_ms_to_datetime
from relay._store._base import INSERT_HINT, is_mysql, store_error, translate_errors
from relay._store.pipeline import insert_in_one_round_trip
from relay._tables import DEFAULT_DESTINATION, OutboxState, outbox

if TYPE_CHECKING:
    from sqlalchemy.orm import Session  # the ORM loads only when a Session is passed

#: The columns of a new row for the ``default`` destination, in the order of :func:`pending_row`.
#: Such a row leaves ``destination`` to its server default: a host that upgraded relay before
#: running revision 0006 (the documented order is migrations first, but a rolling deploy meets
#: both) still writes its events, as it did across 0003 and 0004.
ROW_COLUMNS = (
    "insert_id",
    "event",
    "distinct_id",
    "time_ms",
    "properties",
    "state",
    "attempts",
    "next_attempt_at",
    "created_at",
    "updated_at",
)
#: The columns of a new row routed to another destination: :data:`ROW_COLUMNS` and ``destination``.
ROUTED_ROW_COLUMNS = (*ROW_COLUMNS, "destination")
#: Rows per multi-row INSERT: 11 parameters each, far below every driver's parameter limit
#: (PostgreSQL takes a chunk as one JSON document whatever its length).
CHUNK_ROWS = 1000
#: Key of :func:`check_writable`'s verdict in the pooled DBAPI connection's ``info``.
#: DBAPI connections on which relay_outbox was found to exist and be writable (weak: a closed
#: connection drops out). psycopg and psycopg2 connections both take weak references.
_writable: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
_WRITABLE_KEY = "relay_outbox_writable"


def pending_row(
    *,
    insert_id: str,
    event: str,
    distinct_id: str,
    time_ms: int,
    properties_json: bytes,
    now: dt.datetime,
    destination: str = DEFAULT_DESTINATION,
) -> dict[str, Any]:
    """The column values of a new pending outbox row for a validated event, at ``now``.

    ``destination``: the routed destination (the router's answer, checked by tracking); the
    ``default`` one is left to the column's server default (see :data:`ROW_COLUMNS`).

    ``properties`` is the checked JSON text itself (stored as is). Due now, or at the event's
    ``time`` when that is still ahead of the clock (within the allowed skew): Mixpanel would
    replace a future time by its own clock, changing the dedup key, so such a row waits.
    """
    row = {
        "insert_id": insert_id,
        "event": event,
        "distinct_id": distinct_id,
        "time_ms": time_ms,
        "properties": properties_json.decode(),
        "state": OutboxState.PENDING.value,
        "attempts": 0,
        "next_attempt_at": max(now, timestamp_ms_to_datetime(time_ms)),
        "created_at": now,
        "updated_at": now,
    }
    return with_destination(row, destination)


def with_destination(row: dict[str, Any], destination: str) -> dict[str, Any]:
    """``row`` with its ``destination`` column, set only for another than ``default``."""
    if destination != DEFAULT_DESTINATION:
        row["destination"] = destination
    return row


def _same_columns(chunk: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
    """``chunk`` with one set of columns: when some rows are routed elsewhere (a mixed
    ``track_many``), the ``default`` ones name their destination too."""
    if all("destination" not in r for r in chunk) or all("destination" in r for r in chunk):
        return chunk
    return [r if "destination" in r else {**r, "destination": DEFAULT_DESTINATION} for r in chunk]


def _is_session(value: object) -> TypeGuard[Session]:
    """Whether ``value`` is an ORM ``Session``; the ORM is imported on first use, so commands
    that never track (``relay stats``) do not load it."""
    from sqlalchemy.orm import Session  # noqa: PLC0415

    return isinstance(value, Session)


def connection_of(session: Session | Connection) -> Connection:
    """The ``Connection`` a ``Session`` runs its transaction on (or ``session`` itself)."""
    return session.connection() if _is_session(session) else cast(Connection, session)


def _known_writable(conn: Connection) -> bool:
    # Keyed on the driver's own connection (psycopg's, also under SQLAlchemy's asyncio
    # adapter), which lives as long as the session; one that takes no weak reference falls
    # back to the pool record's info.
    try:
        return bool(_writable.get(conn.connection.driver_connection))
    except TypeError:
        return bool(conn.connection.info.get(_WRITABLE_KEY))


def _remember_writable(conn: Connection) -> None:
    try:
        _writable[conn.connection.driver_connection] = True
    except TypeError:
        conn.connection.info[_WRITABLE_KEY] = True


def check_writable(conn: Connection) -> None:
    """Fail before any statement could abort the caller's transaction on PostgreSQL.

    Asks once per pooled connection whether ``relay_outbox`` exists (on the connection's
    ``search_path``) and whether the current user may insert into it and use its id sequence,
    in one query that cannot fail; a yes is cached for the DBAPI connection (a no is asked
    again next time, so ``relay migrate`` or a GRANT takes effect without a reconnect). The
    DBAPI connection, not the pool's record of it: a host that checks out a new record each
    time (``relay.contrib.django`` borrows Django's connection through a ``NullPool``) would
    otherwise pay the query on every ``track()``.
    Raises :class:`OutboxTablesMissingError` or :class:`StoreError` (permission). A no-op
    elsewhere: on SQLite and MariaDB a failed statement rolls back alone and the caller's
    transaction carries on, so the statement's own error says the same at no extra cost.
    Lock: none.
    """
    if conn.dialect.name != "postgresql":
        return
    if _known_writable(conn):
        return
    try:
        verdict = conn.execute(_WRITABLE_SQL, {"t": outbox.fullname}).scalar_one()
    except sa.exc.SQLAlchemyError as exc:
        raise store_error(exc, "outbox check") from None
    if verdict == "missing":
        raise OutboxTablesMissingError(
            f"{outbox.fullname} does not exist here; is the database migrated (relay migrate)?"
        )
    if verdict == "denied":
        raise StoreError(
            f"the database user may not insert into {outbox.fullname} or use its id sequence; "
            "GRANT INSERT on the table and USAGE on its sequence"
        )
    _remember_writable(conn)


# CASE evaluates its branches in order, so the privilege functions (which raise on a missing
# table) only run once the table is known to exist.
_WRITABLE_SQL = sa.text(
    "SELECT CASE WHEN to_regclass(:t) IS NULL THEN 'missing' "
    "WHEN NOT has_table_privilege(:t, 'INSERT') THEN 'denied' "
    "WHEN NOT coalesce(has_sequence_privilege(pg_get_serial_sequence(:t, 'id'), 'USAGE'), true) "
    "THEN 'denied' ELSE 'ok' END"
)


@functools.lru_cache(maxsize=16)
def _rows_insert(dialect: str, columns: tuple[str, ...] = ROW_COLUMNS) -> sa.Insert:
    """The INSERT of :func:`pending_row` values, the properties bound as their JSON text.

    ``columns``: those of the rows given (every row of one call has the same keys), so a
    profile update's ``kind`` and ``profile_key`` are written as well as an event's columns.

    Binding the text (``CAST(:properties AS jsonb)`` on PostgreSQL, the text itself in the
    JSON-as-text columns elsewhere) bypasses the engine's JSON serializer, so what is stored
    is byte for byte what tracking checked, on an engine from ``relay.create_engine`` or on a
    host's own (whose default serializer is ``json.dumps``). A duplicate ``insert_id`` is
    skipped (``ON CONFLICT DO NOTHING``) and the inserted ids come back (``RETURNING``) on
    PostgreSQL and SQLite; MariaDB gets a plain INSERT. SQLAlchemy sends a list of rows as
    multi-row ``VALUES`` ("insertmanyvalues") on all three.
    """
    text = sa.bindparam("properties", type_=sa.Text())
    props: sa.ColumnElement[Any] = (
        sa.cast(text, postgresql.JSONB()) if dialect == "postgresql" else text
    )
    values: dict[str, Any] = {
        name: sa.bindparam(name, type_=outbox.c[name].type) for name in columns
    }
    values["properties"] = props
    if dialect == "postgresql":
        return (
            postgresql.insert(outbox)
            .values(values)
            .on_conflict_do_nothing(index_elements=[outbox.c.insert_id])
            .returning(outbox.c.insert_id)
        )
    if dialect == "sqlite":
        return (
            sqlite.insert(outbox)
            .values(values)
            .on_conflict_do_nothing(index_elements=[outbox.c.insert_id])
            .returning(outbox.c.insert_id)
        )
    return sa.insert(outbox).values(values)


def insert_rows(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert :func:`pending_row` values in chunks; returns the ids written (``insert_id``).

    A row whose ``insert_id`` is already in the outbox (or earlier in ``rows``) is skipped
    without an error. On MariaDB the chunk's ids already present are read first and left
    out; a chunk that still hits a duplicate (a concurrent writer) is retried row by row,
    each duplicate's failed INSERT rolling back alone. Raises a typed :class:`StoreError`,
    unchained, for anything else: on PostgreSQL the caller's transaction is then aborted.

    Lock: the new rows and their unique index entries, held to the end of the caller's
    transaction; a concurrent transaction inserting the same ``insert_id`` waits for this one.
    Guard: the caller's transaction; a rollback leaves no row.
    """
    written: set[str] = set()
    try:
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = _same_columns(rows[start : start + CHUNK_ROWS])
            columns = tuple(chunk[0])
            if is_mysql(conn):
                written |= _insert_mysql(conn, chunk, columns)
            elif conn.dialect.name == "postgresql" and len(chunk) > 1 and columns == ROW_COLUMNS:
                written.update(conn.execute(_PG_RECORDSET_INSERT, _recordset(chunk)).scalars())
            elif (
                conn.dialect.name == "postgresql"
                and len(chunk) > 1
                and columns == ROUTED_ROW_COLUMNS
            ):
                statement = _PG_ROUTED_RECORDSET_INSERT
                written.update(conn.execute(statement, _recordset(chunk)).scalars())
            else:
                result = conn.execute(_rows_insert(conn.dialect.name, columns), list(chunk))
                written.update(result.scalars())
    except sa.exc.SQLAlchemyError as exc:
        raise store_error(exc, "outbox insert", hint=INSERT_HINT) from None
    return written


# PostgreSQL: the chunk as one JSON document of rows, unpacked server-side. A statement of
# constant size with one text parameter (a 1,000-row VALUES list is a 10,000-placeholder text
# the driver parses anew each time, and text arrays cost a regex escape per element), and the
# checked properties bytes are spliced into the document verbatim, so the stored jsonb is the
# checked text parsed, exactly as ``CAST(:properties AS jsonb)`` stores it for one row.
def _pg_recordset_insert(*, routed: bool) -> sa.TextClause:
    destination = (", destination", ", u.x", ", x text") if routed else ("", "", "")
    return sa.text(
        f"INSERT INTO {outbox.name} "  # noqa: S608 - the table's own name and column names
        "(insert_id, event, distinct_id, time_ms, properties, state, attempts, next_attempt_at, "
        f"created_at, updated_at{destination[0]}) "
        f"SELECT u.i, u.e, u.d, u.t, u.p, :state, 0, u.n, u.c, u.u{destination[1]} "
        "FROM json_to_recordset(CAST(:rows AS json)) "
        "AS u(i text, e text, d text, t bigint, p jsonb, n timestamptz, c timestamptz, "
        f"u timestamptz{destination[2]}) "
        "ON CONFLICT (insert_id) DO NOTHING RETURNING insert_id"
    ).bindparams(sa.bindparam("rows", type_=sa.Text()), sa.bindparam("state", type_=sa.Text()))


_PG_RECORDSET_INSERT = _pg_recordset_insert(routed=False)
_PG_ROUTED_RECORDSET_INSERT = _pg_recordset_insert(routed=True)


def _recordset(chunk: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """:data:`_PG_RECORDSET_INSERT`'s parameters: the chunk's rows as one JSON array."""
    parts = []
    for r in chunk:
        head = orjson.dumps(
            {
                "i": r["insert_id"],
                "e": r["event"],
                "d": r["distinct_id"],
                "t": r["time_ms"],
                "n": r["next_attempt_at"],
                "c": r["created_at"],
                "u": r["updated_at"],
                "x": r.get("destination", DEFAULT_DESTINATION),
            }
        )
        parts.append(head[:-1] + b',"p":' + r["properties"].encode() + b"}")
    return {"rows": (b"[" + b",".join(parts) + b"]").decode(), "state": OutboxState.PENDING.value}


#: MySQL/MariaDB's ER_DUP_ENTRY: the one IntegrityError that means "already there".
_MYSQL_DUP_ENTRY = 1062


def _is_duplicate_key(exc: sa.exc.IntegrityError) -> bool:
    args: tuple[Any, ...] = getattr(exc.orig, "args", ())
    return bool(args) and args[0] == _MYSQL_DUP_ENTRY


def _insert_mysql(
    conn: Connection, chunk: Sequence[Mapping[str, Any]], columns: tuple[str, ...]
) -> set[str]:
    statement = _rows_insert(conn.dialect.name, columns)
    if len(chunk) == 1:  # track(): try it; a duplicate's failed INSERT rolls back alone
        try:
            conn.execute(statement, dict(chunk[0]))
        except sa.exc.IntegrityError as exc:
            if not _is_duplicate_key(exc):
                raise
            return set()
        return {chunk[0]["insert_id"]}
    ids = {row["insert_id"] for row in chunk}
    present = set(
        conn.execute(sa.select(outbox.c.insert_id).where(outbox.c.insert_id.in_(ids))).scalars()
    )
    fresh: dict[str, Mapping[str, Any]] = {}
    for row in chunk:
        if row["insert_id"] not in present:
            fresh.setdefault(row["insert_id"], row)
    if not fresh:
        return set()
    try:
        conn.execute(statement, list(fresh.values()))
        return set(fresh)
    except sa.exc.IntegrityError as exc:  # a concurrent writer got there first: the statement
        if not _is_duplicate_key(exc):  # alone was rolled back (InnoDB); one row at a time
            raise  # tells which ones
    written: set[str] = set()
    for insert_id, row in fresh.items():
        try:
            conn.execute(statement, dict(row))
        except sa.exc.IntegrityError as exc:
            if not _is_duplicate_key(exc):
                raise
            continue
        written.add(insert_id)
    return written


def write_event(session: Session | Connection, *, values: Mapping[str, Any]) -> None:
    """Insert one :func:`pending_row`, without a SAVEPOINT and without a NOTIFY.

    After :func:`check_writable`: one round trip on PostgreSQL through psycopg
    (:func:`insert_in_one_round_trip`), else :func:`insert_rows`. No ``NOTIFY`` is sent: a
    transaction that notifies takes PostgreSQL's global notify lock from its commit until its
    commit is flushed, so every notifying commit of the server waits for the one before; the
    relays notice new rows by themselves (:mod:`relay._daemon.watcher`).
    A duplicate ``insert_id`` writes nothing and raises :class:`DuplicateInsertIdError` with
    the caller's transaction untouched. Any other failure raises a typed :class:`StoreError`,
    unchained. What the caller's transaction is then: on SQLite and MariaDB it carries on (the
    failed statement rolled back alone); on PostgreSQL such a failure is one only the database
    could see (a lock or statement timeout, a deadlock, a full disk, a host's trigger, a
    serialization failure, a lost connection) and the transaction is aborted: every later
    statement fails until the caller rolls back, and its COMMIT commits nothing.
    """
    conn = connection_of(session)
    check_writable(conn)
    written = insert_in_one_round_trip(conn, values=values)
    if written is None:
        written = bool(insert_rows(conn, [values]))
    if not written:
        raise DuplicateInsertIdError(
            "outbox insert skipped: this $insert_id is already in the outbox"
        )


def _insert_event(conn: Connection | Session, *, values: Mapping[str, Any]) -> None:
    """Insert one outbox row; ``values`` maps outbox column names to values.

    Lock: the new row (and the unique index entry for ``insert_id``), held until the caller's
    transaction ends. Guard: the caller's transaction; a rollback leaves no row.
    """
    conn.execute(sa.insert(outbox), dict(values))


#: One outbox row written as is, driver errors translated and chained (the relay's own rows).
insert_event = translate_errors(_insert_event)


_NEWEST_ROW_ID = sa.select(sa.func.max(outbox.c.id))


@translate_errors
def newest_row_id(conn: Connection) -> int | None:
    """The id of the newest outbox row visible to ``conn`` (``None`` for an empty table).

    The relays' wake-up (:mod:`relay._daemon.watcher`) asks this a few dozen times a second: it
    reads the end of the primary key's index and changes when a transaction that inserted a
    row commits, without anything in the writer's transaction. Lock: none (a plain read).
    """
    newest = conn.execute(_NEWEST_ROW_ID).scalar()
    return None if newest is None else int(newest)
