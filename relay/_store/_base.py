"""What every store module shares: one error translation, the relay's transactions, predicates.

Driver errors are translated here, once, into :class:`relay._errors.StoreError` or one of its
typed subclasses (:class:`~relay._errors.DuplicateInsertIdError`,
:class:`~relay._errors.OutboxTablesMissingError`), the way procrastinate's connector turns
``psycopg`` errors into its own: by :func:`translate_errors` on every store function and by
:func:`transaction` around begin and commit. Callers above the store never see SQLAlchemy
exceptions, and never re-read a SQLSTATE.
"""

from __future__ import annotations

import contextlib
import functools
import operator
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.cursor import CursorFetchStrategy

from relay._database import immediate
from relay._errors import DuplicateInsertIdError, OutboxTablesMissingError, StoreError
from relay._escape import clip
from relay._tables import LAST_ERROR_MAX_LENGTH, OutboxState, outbox

_P = ParamSpec("_P")
_R = TypeVar("_R")
_V = TypeVar("_V")

_MYSQL_DIALECTS = frozenset({"mysql", "mariadb"})
#: SQLSTATE of PostgreSQL's undefined_table, and MySQL/MariaDB's ER_NO_SUCH_TABLE errno.
_PG_UNDEFINED_TABLE = "42P01"
_MYSQL_NO_SUCH_TABLE = 1146
#: Ends the message of an insert that failed for a reason the store cannot name.
INSERT_HINT = "is the database reachable and migrated (relay migrate)?"


def driver_error(exc: BaseException) -> BaseException:
    """The driver's own exception behind ``exc`` (SQLAlchemy wraps it as ``orig``)."""
    orig = getattr(exc, "orig", None)
    return orig if isinstance(orig, BaseException) else exc


def store_error(exc: BaseException, what: str, *, hint: str | None = None) -> StoreError:
    """The typed :class:`StoreError` for the driver error ``exc`` raised while doing ``what``.

    The message names the driver's exception type and SQLSTATE, never the driver's own text
    (which may quote bound parameters). A unique-key violation (SQLSTATE class 23, or
    SQLAlchemy's ``IntegrityError`` where SQLite gives no SQLSTATE) is a
    :class:`DuplicateInsertIdError`: ``insert_id`` is the outbox's only unique key besides
    the generated primary key. A missing table is an :class:`OutboxTablesMissingError`.
    ``hint`` ends the message of any other failure.
    """
    orig = driver_error(exc)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    sqlstate = str(sqlstate) if sqlstate else None
    kind = f"{type(orig).__name__}" + (f" (SQLSTATE {sqlstate})" if sqlstate else "")
    if isinstance(exc, sa.exc.IntegrityError) or (sqlstate or "").startswith("23"):
        return DuplicateInsertIdError(
            f"{what} failed: {kind}; is this $insert_id already in the outbox?", sqlstate=sqlstate
        )
    if _is_missing_table(orig, sqlstate):
        return OutboxTablesMissingError(
            f"{what} failed: {kind}; is the database migrated (relay migrate)?", sqlstate=sqlstate
        )
    return StoreError(f"{what} failed: {kind}" + (f"; {hint}" if hint else ""), sqlstate=sqlstate)


def is_missing_table(exc: BaseException) -> bool:
    """Whether the driver error ``exc`` (or the one SQLAlchemy wraps in it) is a missing table.

    Read from the SQLSTATE (PostgreSQL) or the error number (MySQL, MariaDB); only SQLite, which
    gives neither, is read from its message.
    """
    orig = driver_error(exc)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return _is_missing_table(orig, str(sqlstate) if sqlstate else None)


def _is_missing_table(orig: BaseException, sqlstate: str | None) -> bool:
    if sqlstate == _PG_UNDEFINED_TABLE:
        return True
    args = getattr(orig, "args", ())
    if args and args[0] == _MYSQL_NO_SUCH_TABLE:
        return True
    # SQLite: OperationalError("no such table: relay_outbox"); the text names a table only.
    return type(orig).__name__ == "OperationalError" and str(orig).startswith("no such table")


def translate_errors(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Re-raise the driver's errors from ``func`` as a typed :class:`StoreError`, chained."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return func(*args, **kwargs)
        except sa.exc.DBAPIError as exc:
            raise store_error(exc, func.__name__.lstrip("_")) from exc

    return wrapper


def state_is(state: OutboxState) -> sa.ColumnElement[bool]:
    """``state = '<state>'`` with the value inlined into the SQL.

    A bound parameter would hide the value from PostgreSQL's planner in a generic (prepared)
    plan, and the partial index ``ix_relay_outbox_pending_due`` can only be chosen when the
    planner sees the literal ``'pending'``. Inlined when the statement is compiled (the states
    are fixed words), not at each execution as ``literal_execute`` would: the claims and acks
    run their cached statements every drain cycle.
    """
    return outbox.c.state == sa.literal_column(f"'{state.value}'", sa.String())


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
        raise store_error(exc, "outbox transaction") from exc


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

    A constant string sent as is: this runs twice a drain cycle, and building and caching an
    SQLAlchemy ``select(set_config(...))`` cost more of the relay's CPU than the round trip
    (``bench/drain_cycle_cost.py``).
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_SYNCHRONOUS_COMMIT_OFF)


_SYNCHRONOUS_COMMIT_OFF = "SET LOCAL synchronous_commit TO off"


def clip_error(message: str) -> str:
    """``message`` cut to what ``last_error`` holds."""
    return clip(message, LAST_ERROR_MAX_LENGTH)


class IdArray(sa.types.TypeDecorator[Collection[int]]):
    """Row ids bound as one PostgreSQL ``bigint[]``, sent as its text (``{1,2,3}``) and cast.

    psycopg's array dumper handles each element in Python: 5 % of the relay's CPU in a drain
    of 2,000-row claims (``bench/drain_throughput.py --py-spy``, ``PY_SPY_GIL=1``), where the
    text is joined in C. Every value goes through ``operator.index`` (integers only: a string
    or a float is refused, never truncated into another row's id), so the text is never
    anything but integers and commas.
    """

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Collection[int] | None, dialect: sa.Dialect) -> str | None:
        if value is None:
            return None
        return "{" + ",".join(map(str, map(operator.index, value))) + "}"

    def bind_expression(self, bindvalue: sa.BindParameter[Any]) -> sa.ColumnElement[Any]:
        return sa.cast(bindvalue, postgresql.ARRAY(sa.BigInteger()))


def id_is_one_of(conn: Connection, ids: Collection[int]) -> sa.ColumnElement[bool]:
    """``id`` in ``ids``: one array parameter on PostgreSQL, an expanded IN list elsewhere.

    A single ``= ANY(:ids)`` array keeps a 2000-id statement small to build, send and plan.
    """
    if conn.dialect.name == "postgresql":
        return outbox.c.id == sa.any_(sa.bindparam("ids", list(ids), type_=IdArray()))
    return outbox.c.id.in_(list(ids))


def plain_rows(result: sa.CursorResult[Any]) -> list[tuple[Any, ...]]:
    """All of ``result``'s rows as the driver returned them (tuples), and the result closed.

    For the claim's few thousand rows a cycle: building SQLAlchemy's ``Row`` objects took about
    an eighth of the relay's CPU in a drain, besides the driver's own fetch (BENCHMARKS.md, "The
    claim read as the driver's tuples"). Only for statements none of whose
    columns has a result processor on the dialect (ints, strings, text; PostgreSQL's
    ``timestamptz``, which psycopg returns aware): the values are then the same.
    """
    try:
        if type(result.cursor_strategy) is not CursorFetchStrategy or result.cursor is None:
            # SQLAlchemy fetched (or let go of) the rows itself (an executemany's RETURNING, a
            # streamed result): the cursor may hold none of them; read them from the result.
            return [tuple(row) for row in result.all()]
        dbapi_error = result.context.dialect.loaded_dbapi.Error
        try:
            return list(result.cursor.fetchall())
        except dbapi_error as exc:
            # As SQLAlchemy's own fetch would: a DBAPIError, which translate_errors turns into
            # a StoreError naming no value (the driver's text may quote the row's data).
            raise sa.exc.DBAPIError.instance(
                None, None, exc, dbapi_error, hide_parameters=True, dialect=result.context.dialect
            ) from exc
    finally:
        result.close()


def ids_bound(dialect: str) -> sa.ColumnElement[bool]:
    """:func:`id_is_one_of` with the ids left to a bind parameter named ``ids`` (a list), for
    statements built once and run many times."""
    if dialect == "postgresql":
        return outbox.c.id == sa.any_(sa.bindparam("ids", type_=IdArray()))
    return outbox.c.id.in_(sa.bindparam("ids", expanding=True))


def per_row(values: Mapping[int, _V], type_: sa.types.TypeEngine[_V]) -> sa.ColumnElement[_V]:
    """One value for every row when they agree, else ``CASE id WHEN ... END``."""
    distinct = set(values.values())
    if len(distinct) == 1:
        return sa.literal(distinct.pop(), type_)
    return sa.case(
        {row_id: sa.literal(value, type_) for row_id, value in values.items()},
        value=outbox.c.id,
    )
