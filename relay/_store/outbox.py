"""The outbox's hot path: the insert behind ``track()``, the claim, and the fenced acks.

Every function runs exactly one statement (the MariaDB claim, which has no ``UPDATE ...
RETURNING``, runs two inside one transaction) on a connection whose transaction the caller
owns; :func:`transaction` opens the short transactions the relay needs. Each docstring names
the lock the statement takes and the guard that keeps it correct under concurrency.

Driver errors are translated here, once, into :class:`relay._errors.StoreError` (the driver's
exception chained as ``__cause__``): by :func:`translate_errors` on every function and by
:func:`transaction` around begin and commit. Callers above the store never see SQLAlchemy
exceptions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from relay._database import immediate
from relay._errors import StoreError
from relay._escape import clip
from relay._tables import LAST_ERROR_MAX_LENGTH, OutboxEvent, OutboxState, UTCDateTime, outbox

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

_P = ParamSpec("_P")
_R = TypeVar("_R")
_V = TypeVar("_V")

_MYSQL_DIALECTS = frozenset({"mysql", "mariadb"})


def state_is(state: OutboxState) -> sa.ColumnElement[bool]:
    """``state = '<state>'`` with the value inlined into the SQL.

    A bound parameter would hide the value from PostgreSQL's planner in a generic (prepared)
    plan, and the partial index ``ix_relay_outbox_pending_due`` can only be chosen when the
    planner sees the literal ``'pending'``.
    """
    return outbox.c.state == sa.literal(state.value, literal_execute=True)


def translate_errors(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Re-raise the driver's errors from ``func`` as :class:`StoreError`."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return func(*args, **kwargs)
        except sa.exc.DBAPIError as exc:
            raise StoreError(f"{func.__name__} failed: {type(exc.orig).__name__}") from exc

    return wrapper


def is_mysql(conn: Connection) -> bool:
    """Whether ``conn`` talks to MySQL or MariaDB (SQLAlchemy names MariaDB either way)."""
    return conn.dialect.name in _MYSQL_DIALECTS


@contextlib.contextmanager
def transaction(
    engine: Engine, *, write: bool = False, durable: bool = True
) -> Iterator[Connection]:
    """One short transaction on a pooled connection, committed on success.

    ``write=True`` takes SQLite's write lock at ``BEGIN`` (``BEGIN IMMEDIATE``), so a
    transaction that reads before it writes never fails to upgrade its lock, and runs MySQL /
    MariaDB at READ COMMITTED, so locking reads lock only the rows they return instead of
    next-key ranges that would block ``track()``'s inserts. ``durable=False`` lets a
    PostgreSQL crash forget the commit: for the relay's claims and acks only, which are safe
    to lose (see :func:`_commit_without_waiting_for_flush`). Driver errors from connecting,
    beginning or committing are raised as :class:`StoreError`.
    """
    try:
        with engine.connect() as conn:
            if write:
                immediate(conn)
                if is_mysql(conn):
                    conn.execution_options(isolation_level="READ COMMITTED")
            with conn.begin():
                if not durable:
                    _commit_without_waiting_for_flush(conn)
                yield conn
    except sa.exc.DBAPIError as exc:
        raise StoreError(f"outbox transaction failed: {type(exc.orig).__name__}") from exc


def _commit_without_waiting_for_flush(conn: Connection) -> None:
    """On PostgreSQL, let this transaction's COMMIT return before its WAL reaches the disk.

    ``SET LOCAL synchronous_commit = off``: the transaction stays atomic and the database
    consistent, but a PostgreSQL crash may forget the last few hundred milliseconds of such
    commits. For the relay's claims and acks that is safe: a forgotten claim leaves its rows
    pending and due as before (an attempt goes uncounted); a forgotten ack leaves its rows
    leased until the lease expires. Either way the rows are sent again with the same
    ``time`` and ``$insert_id``, which Mixpanel deduplicates, and nothing is lost: the events
    themselves were committed by ``track()`` in the application's own, durable transaction,
    and claims and acks never delete a row. WAL is flushed in order, so a durable commit
    after them (any ``track()``) makes them durable too. Saves a WAL flush per claim and
    per ack. Lock: none.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.set_config("synchronous_commit", "off", True)))


def clip_error(message: str) -> str:
    """``message`` cut to what ``last_error`` holds."""
    return clip(message, LAST_ERROR_MAX_LENGTH)


# --- the producer side ---------------------------------------------------------------------


@translate_errors
def insert_event(conn: Connection | Session, *, values: Mapping[str, Any]) -> None:
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
    raises :class:`StoreError` (the driver's error chained). Returns ``False``, having done
    nothing, on any other dialect or driver, on a libpq without pipeline mode, or on a
    connection in autocommit mode, where the caller takes the portable path
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
            raise StoreError(
                f"insert_and_notify_in_one_round_trip failed: {type(exc).__name__}"
            ) from exc
    return True


@translate_errors
def notify(conn: Connection | Session, channel: str) -> None:
    """Wake the relays listening on ``channel`` when the caller's transaction commits.

    PostgreSQL only (``pg_notify``, delivered at commit, dropped at rollback, identical
    notifications in one transaction folded into one); a no-op elsewhere. Lock: none.
    """
    from sqlalchemy.orm import Session  # noqa: PLC0415 - the ORM loads only for a Session

    bind = conn.get_bind() if isinstance(conn, Session) else conn
    if bind.dialect.name != "postgresql":
        return
    conn.execute(sa.select(sa.func.pg_notify(channel, "")))


# --- the relay side --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claim:
    """Rows leased by one claim, in id order: ``token`` fences every ack of them.

    ``last_due`` is the latest ``next_attempt_at`` among the rows the claim took (leased or
    dead-lettered; ``None`` when it took none): a following claim may start reading there (see
    :func:`claim`'s ``due_from``). ``full`` says the claim stopped at its row limit or its byte
    budget, so more rows may be due. ``too_large`` counts rows the claim found too large to
    ever be sent and marked dead instead of leasing them.
    """

    token: str
    events: list[OutboxEvent]
    last_due: dt.datetime | None = None
    full: bool = False
    too_large: int = 0


def claimed_columns(conn: Connection) -> tuple[sa.ColumnElement[Any], ...]:
    """The columns an :class:`OutboxEvent` is built from, in its field order."""
    # The stored JSON text goes to the client as is: on PostgreSQL the driver would parse
    # JSONB, so the server renders it as text; elsewhere the column already is text and only
    # SQLAlchemy's JSON result processing has to be bypassed.
    if conn.dialect.name == "postgresql":
        properties: sa.ColumnElement[str] = sa.cast(outbox.c.properties, sa.Text)
    else:
        properties = sa.type_coerce(outbox.c.properties, sa.Text)
    return (
        outbox.c.id,
        outbox.c.insert_id,
        outbox.c.event,
        outbox.c.distinct_id,
        outbox.c.time_ms,
        properties.label("properties_json"),
        outbox.c.attempts,
    )


def _to_events(rows: Sequence[Sequence[Any]], *, attempts_offset: int = 0) -> list[OutboxEvent]:
    """Events from claimed rows: :func:`claimed_columns`."""
    # Positional unpacking: attribute access on 2000 rows per claim is measurably slower.
    return [
        OutboxEvent(
            row_id, insert_id, event, distinct_id, time_ms, properties, attempts + attempts_offset
        )
        for row_id, insert_id, event, distinct_id, time_ms, properties, attempts in rows
    ]


def _id_is_one_of(conn: Connection, ids: Collection[int]) -> sa.ColumnElement[bool]:
    """``id`` in ``ids``: one array parameter on PostgreSQL, an expanded IN list elsewhere.

    A single ``= ANY(:ids)`` array keeps a 2000-id statement small to build, send and plan.
    """
    if conn.dialect.name == "postgresql":
        return outbox.c.id == sa.any_(
            sa.bindparam("ids", list(ids), type_=postgresql.ARRAY(sa.BigInteger()))
        )
    return outbox.c.id.in_(list(ids))


def lease_is_live(now: dt.datetime) -> sa.ColumnElement[bool]:
    """A relay holds the row at ``now``: it carries a lease token whose lease has not run out.

    The claim writes the expiry to ``lease_expires_at``. A relay older than migration 0002
    (one still running during an upgrade) wrote it to ``next_attempt_at`` instead and left
    ``lease_expires_at`` NULL; the ``coalesce`` reads such a lease too.
    """
    return sa.and_(
        outbox.c.lease_token.is_not(None),
        sa.func.coalesce(outbox.c.lease_expires_at, outbox.c.next_attempt_at) > now,
    )


def is_due(now: dt.datetime) -> sa.ColumnElement[bool]:
    """A pending row may be claimed at ``now``: its time has come and no live lease holds it.

    ``next_attempt_at <= now`` is the range the claim reads from ``ix_relay_outbox_pending_due``;
    the lease is checked on the row itself. (A lease written by a pre-0002 relay lies in
    ``next_attempt_at`` and so already fails the first test.)
    """
    return sa.and_(
        outbox.c.next_attempt_at <= now,
        sa.or_(outbox.c.lease_expires_at.is_(None), outbox.c.lease_expires_at <= now),
    )


def stored_size(conn: Connection) -> sa.ColumnElement[int]:
    """Bytes of a row's properties as the claim would fetch them, measured by the server.

    PostgreSQL renders JSONB as text to measure it (the text itself never leaves the server);
    SQLite and MariaDB store the text and count its bytes (SQLite's ``length`` of the text
    would count characters, hence the BLOB cast).
    """
    if conn.dialect.name == "postgresql":
        return sa.func.octet_length(sa.cast(outbox.c.properties, sa.Text))
    if conn.dialect.name == "sqlite":
        return sa.func.length(sa.cast(sa.type_coerce(outbox.c.properties, sa.Text), sa.LargeBinary))
    return sa.func.octet_length(sa.type_coerce(outbox.c.properties, sa.Text))


def too_large_reason(size: int, row_max_bytes: int) -> str:
    """The ``last_error`` of a row dead-lettered at claim time for its size."""
    return (
        f"stored properties render to {size} bytes, over the request limit of {row_max_bytes} bytes"
    )


@dataclass(frozen=True, slots=True)
class _Pick:
    ids: list[int]
    too_large: dict[int, int]
    full: bool
    last_due: dt.datetime | None


def _pick(
    candidates: Sequence[Sequence[Any]],
    *,
    limit: int,
    max_bytes: int | None,
    row_max_bytes: int | None,
) -> _Pick:
    """The due-order prefix of ``candidates`` (id, due, size) within ``max_bytes``.

    A row over ``row_max_bytes`` is set aside to be dead-lettered and costs no budget; the
    first row that fits no request on its own never stops the claim. The first row that
    fits is always taken, so a claim with rows due is never empty.
    """
    ids: list[int] = []
    too_large: dict[int, int] = {}
    total = 0
    full = len(candidates) >= limit
    last_due: dt.datetime | None = None
    for row_id, due, size in candidates:
        if row_max_bytes is not None and size > row_max_bytes:
            too_large[row_id] = size
        else:
            if ids and max_bytes is not None and total + size > max_bytes:
                full = True
                break
            ids.append(row_id)
            total += size
        last_due = due
    return _Pick(ids=ids, too_large=too_large, full=full, last_due=last_due)


@translate_errors
def claim(
    conn: Connection,
    *,
    now: dt.datetime,
    limit: int,
    lease_seconds: float,
    due_from: dt.datetime | None = None,
    max_bytes: int | None = None,
    row_max_bytes: int | None = None,
) -> Claim:
    """Lease up to ``limit`` due pending rows, oldest due first, under a fresh token.

    Sets ``lease_token`` and ``lease_expires_at = now + lease_seconds`` (an expired lease simply
    makes the row due again) and counts the attempt now, so a crash mid-send still uses one
    up. ``next_attempt_at`` is left alone: the claim touches no indexed column, so PostgreSQL
    updates each row in place on its own page (a HOT update: no new index entries, which
    were most of a claim's cost). Run it in ``transaction(engine, write=True)`` and commit
    before sending.

    Bounded by bytes as well as rows: the claim first reads the due rows' ids with their
    :func:`stored_size` (never their text), then leases the longest due-order prefix whose
    properties add up to at most ``max_bytes`` (at least one row). A row larger than
    ``row_max_bytes``, which no request could carry, is marked dead in the same transaction
    with :func:`too_large_reason` instead of being leased, so its text is never fetched and
    it never blocks the rows behind it. Locked candidates the claim does not take are
    released at commit.

    ``due_from`` (optional) skips rows due before it: the claim starts reading the index there
    instead of at its oldest entry. On PostgreSQL every finished row leaves a dead entry at the
    head of ``ix_relay_outbox_pending_due`` until VACUUM removes it, and a claim from the
    start walks all of them: during a long drain that grows to thousands of pages per claim.
    A relay passes the previous claim's :attr:`Claim.last_due` and starts from the beginning
    again often enough to pick up rows left behind (see :class:`relay._delivery.drain.ClaimCursor`).

    Lock: PostgreSQL and MySQL/MariaDB lock the candidate rows ``FOR UPDATE SKIP LOCKED``, so
    concurrent relays claim disjoint rows without waiting, and hold them to the commit; SQLite
    holds the database write lock taken by ``BEGIN IMMEDIATE``. Guard: ``state = 'pending'``
    and :func:`is_due`, read through the partial index ``ix_relay_outbox_pending_due`` (rows
    under a live lease are passed over on the heap: at most the batches in flight); the
    lease and dead-letter updates touch only rows this transaction holds.
    """
    token = uuid.uuid4().hex
    lease_until = now + dt.timedelta(seconds=lease_seconds)
    measured = max_bytes is not None or row_max_bytes is not None
    size = stored_size(conn) if measured else sa.literal(0)
    due = (
        sa.select(outbox.c.id, outbox.c.next_attempt_at, size)
        .where(state_is(OutboxState.PENDING), is_due(now))
        .order_by(outbox.c.next_attempt_at, outbox.c.id)
        .limit(limit)
    )
    if due_from is not None:
        due = due.where(outbox.c.next_attempt_at >= due_from)
    if conn.dialect.name != "sqlite":
        due = due.with_for_update(skip_locked=True)
    picked = _pick(
        conn.execute(due).all(), limit=limit, max_bytes=max_bytes, row_max_bytes=row_max_bytes
    )
    if picked.too_large and row_max_bytes is not None:
        _mark_too_large(conn, picked.too_large, row_max_bytes=row_max_bytes, now=now)
    events: list[OutboxEvent] = []
    if picked.ids:
        events = _lease(conn, picked.ids, token=token, lease_until=lease_until, now=now)
    # RETURNING has no defined order: hand events over in id (creation) order everywhere.
    events.sort(key=lambda e: e.id)
    return Claim(
        token=token,
        events=events,
        last_due=picked.last_due,
        full=picked.full,
        too_large=len(picked.too_large),
    )


def _lease(
    conn: Connection, ids: list[int], *, token: str, lease_until: dt.datetime, now: dt.datetime
) -> list[OutboxEvent]:
    """Lease the locked rows ``ids`` under ``token`` and read them. Lock: held by the claim."""
    lease = {
        "lease_token": token,
        "lease_expires_at": lease_until,
        "attempts": outbox.c.attempts + 1,
        "updated_at": now,
    }
    chosen = _id_is_one_of(conn, ids)
    if is_mysql(conn):
        # MariaDB has no UPDATE ... RETURNING: read, then mark, under the claim's row locks.
        rows = conn.execute(sa.select(*claimed_columns(conn)).where(chosen)).all()
        conn.execute(sa.update(outbox).where(chosen).values(lease))
        return _to_events(rows, attempts_offset=1)
    rows = conn.execute(
        sa.update(outbox).where(chosen).values(lease).returning(*claimed_columns(conn))
    ).all()
    return _to_events(rows)


def _mark_too_large(
    conn: Connection, sizes: Mapping[int, int], *, row_max_bytes: int, now: dt.datetime
) -> None:
    """Dead-letter rows no request can carry. Lock: held by the claim. Guard: still pending."""
    reasons = {row_id: too_large_reason(size, row_max_bytes) for row_id, size in sizes.items()}
    conn.execute(
        sa.update(outbox)
        .where(_id_is_one_of(conn, reasons), state_is(OutboxState.PENDING))
        .values(
            state=OutboxState.DEAD.value,
            finished_at=now,
            updated_at=now,
            lease_token=None,
            lease_expires_at=None,
            last_error=_per_row(reasons, sa.String()),
        )
    )


def _fenced(conn: Connection, token: str, ids: Collection[int]) -> sa.ColumnElement[bool]:
    return sa.and_(
        _id_is_one_of(conn, ids),
        outbox.c.lease_token == token,
        state_is(OutboxState.PENDING),
    )


def _per_row(values: Mapping[int, _V], type_: sa.types.TypeEngine[_V]) -> sa.ColumnElement[_V]:
    """One value for every row when they agree, else ``CASE id WHEN ... END``."""
    distinct = set(values.values())
    if len(distinct) == 1:
        return sa.literal(distinct.pop(), type_)
    return sa.case(
        {row_id: sa.literal(value, type_) for row_id, value in values.items()},
        value=outbox.c.id,
    )


def _delivered(now: dt.datetime) -> dict[str, Any]:
    """The columns an ack of accepted rows sets: finished now, lease and error cleared."""
    return {
        "state": OutboxState.DELIVERED.value,
        "finished_at": now,
        "updated_at": now,
        "lease_token": None,
        "lease_expires_at": None,
        "last_error": None,
    }


@translate_errors
def mark_delivered(conn: Connection, *, token: str, ids: Collection[int], now: dt.datetime) -> int:
    """Record that Mixpanel accepted ``ids``; returns how many rows changed.

    Lock: the rows updated. Guard: fenced, ``lease_token = token AND state = 'pending'``, so a
    worker whose lease expired and was re-claimed changes nothing.
    """
    if not ids:
        return 0
    result = conn.execute(
        sa.update(outbox).where(_fenced(conn, token, ids)).values(_delivered(now))
    )
    return result.rowcount


#: A claim is acked by its id range when the range holds fewer than this many rows per
#: claimed row, and by its list of ids otherwise.
DENSE_CLAIM_SPAN = 4


@translate_errors
def mark_claim_delivered(conn: Connection, *, claim: Claim, now: dt.datetime) -> int:
    """Record that Mixpanel accepted every row of ``claim``; returns how many rows changed.

    The same as :func:`mark_delivered` with all of the claim's ids. When those ids are dense
    (rows tracked one after the other, the usual case) the statement names only the claim's
    lowest and highest id: the claim's rows are exactly the rows in that range that still hold
    its token (a fresh one per claim), and the primary key walks the range once instead of
    looking up 2000 ids one by one. A claim that mixes old rows (retries) with new ones would
    stretch that range, and the walk, towards the whole table: it is acked by its ids.

    Lock: the rows updated. Guard: fenced, ``lease_token = token AND state = 'pending'``, so a
    worker whose lease expired and was re-claimed changes nothing; other rows in the range
    hold other tokens or none.
    """
    if not claim.events:
        return 0
    first_id, last_id = claim.events[0].id, claim.events[-1].id
    if last_id - first_id >= DENSE_CLAIM_SPAN * len(claim.events):
        return mark_delivered(conn, token=claim.token, ids=[e.id for e in claim.events], now=now)
    result = conn.execute(
        sa.update(outbox)
        .where(
            outbox.c.id.between(first_id, last_id),
            outbox.c.lease_token == claim.token,
            state_is(OutboxState.PENDING),
        )
        .values(_delivered(now))
    )
    return result.rowcount


@translate_errors
def mark_dead(conn: Connection, *, token: str, errors: Mapping[int, str], now: dt.datetime) -> int:
    """Give up on the rows in ``errors`` (id -> reason, kept in ``last_error``); returns the count.

    For Mixpanel's per-record rejections and rows out of attempts. Lock: the rows updated.
    Guard: fenced, ``lease_token = token AND state = 'pending'``.
    """
    if not errors:
        return 0
    reasons = {row_id: clip_error(reason) for row_id, reason in errors.items()}
    result = conn.execute(
        sa.update(outbox)
        .where(_fenced(conn, token, reasons))
        .values(
            state=OutboxState.DEAD.value,
            finished_at=now,
            updated_at=now,
            lease_token=None,
            lease_expires_at=None,
            last_error=_per_row(reasons, sa.String()),
        )
    )
    return result.rowcount


@dataclass(frozen=True, slots=True)
class Retry:
    """When to try a row again, and why the last attempt failed."""

    at: dt.datetime
    error: str


@translate_errors
def schedule_retry(
    conn: Connection, *, token: str, retries: Mapping[int, Retry], now: dt.datetime
) -> int:
    """Give up the lease on the rows in ``retries`` until each one's ``at``; returns the count.

    The attempt stays counted. Lock: the rows updated. Guard: fenced,
    ``lease_token = token AND state = 'pending'``.
    """
    if not retries:
        return 0
    result = conn.execute(
        sa.update(outbox)
        .where(_fenced(conn, token, retries))
        .values(
            next_attempt_at=_per_row({i: r.at for i, r in retries.items()}, UTCDateTime()),
            last_error=_per_row({i: clip_error(r.error) for i, r in retries.items()}, sa.String()),
            lease_token=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )
    return result.rowcount


@translate_errors
def release(
    conn: Connection,
    *,
    token: str,
    ids: Collection[int],
    next_attempt_at: dt.datetime,
    now: dt.datetime,
) -> int:
    """Hand claimed rows back unsent, due at ``next_attempt_at``; returns the count.

    Gives the attempt back (``attempts - 1``): used after a 401, which says nothing about the
    rows, and at shutdown for claims never sent. Lock: the rows updated. Guard: fenced,
    ``lease_token = token AND state = 'pending'``.
    """
    if not ids:
        return 0
    return _hand_back(conn, token=token, ids=ids, next_attempt_at=next_attempt_at, now=now)


@translate_errors
def postpone(
    conn: Connection, *, token: str, due: Mapping[int, dt.datetime], now: dt.datetime
) -> int:
    """Hand claimed rows back unsent, each due again at its own time; returns the count.

    For rows whose event ``time`` is still ahead of the relay's clock (Mixpanel would re-stamp
    it, changing the dedup key): gives the attempt back (``attempts - 1``) and keeps
    ``last_error``. Lock: the rows updated. Guard: fenced,
    ``lease_token = token AND state = 'pending'``.
    """
    if not due:
        return 0
    return _hand_back(
        conn, token=token, ids=due, next_attempt_at=_per_row(dict(due), UTCDateTime()), now=now
    )


def _hand_back(
    conn: Connection,
    *,
    token: str,
    ids: Collection[int],
    next_attempt_at: dt.datetime | sa.ColumnElement[dt.datetime],
    now: dt.datetime,
) -> int:
    """The fenced UPDATE behind :func:`release` and :func:`postpone`: unlease, attempt back."""
    result = conn.execute(
        sa.update(outbox)
        .where(_fenced(conn, token, ids))
        .values(
            next_attempt_at=next_attempt_at,
            attempts=sa.case((outbox.c.attempts > 0, outbox.c.attempts - 1), else_=0),
            lease_token=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )
    return result.rowcount
