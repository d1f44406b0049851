"""Online-safe DDL for relay's revisions: the host's writes to relay_outbox never wait long.

``relay_outbox`` lives in the host's database and ``track()`` writes it inside the host's own
business transactions, so a migration that queues for a table lock makes every later business
transaction queue behind it. The helpers here keep each lock short and each wait bounded:

* ``locked``: a statement that needs a lock writers conflict with (``ALTER TABLE ... ADD
  COLUMN`` takes ACCESS EXCLUSIVE on PostgreSQL, an exclusive metadata lock on MariaDB) runs on
  its own, in autocommit mode, under a short lock timeout (PostgreSQL ``lock_timeout``,
  MariaDB ``lock_wait_timeout``). While it waits for a transaction that touched the table,
  writers queue behind it for at most that timeout; then it gives up, lets them through, sleeps
  and retries, until ``RELAY_MIGRATE_LOCK_RETRY_SECONDS`` have passed.
* ``concurrently``: ``CREATE`` / ``DROP INDEX CONCURRENTLY`` (PostgreSQL), which take no lock
  writers conflict with. They wait for older transactions without any lock timeout (a timeout
  would abort the build half-way), and a build that failed earlier (an INVALID index left
  behind) is dropped and built again, so a re-run of the migration completes it.

Every step checks the catalog first and does nothing when its work is already done, so a
migration interrupted anywhere is completed by running ``relay migrate`` again. In offline
mode (``alembic upgrade --sql``) the statements are only rendered, without checks or retries.

SQLite needs none of this: its DDL is instant and takes the database's one write lock, which
``track()`` waits for anyway (``busy_timeout``), for microseconds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import context, op
from alembic.util import CommandError
from sqlalchemy.engine import Connection

from relay import RelaySettings
from relay._config import load_settings
from relay._errors import ConfigurationError, RelayError

#: First pause between attempts; doubles up to ``_MAX_PAUSE_SECONDS``.
_FIRST_PAUSE_SECONDS = 0.2
_MAX_PAUSE_SECONDS = 5.0
#: PostgreSQL's SQLSTATE for a lock_timeout, MariaDB's error number for lock_wait_timeout.
_PG_LOCK_NOT_AVAILABLE = "55P03"
_MARIADB_LOCK_WAIT_TIMEOUT = 1205


class DowngradeRefusedError(RelayError, CommandError):
    """The older schema cannot represent rows the tables hold now; the downgrade changed nothing.

    Its message is one line naming how many rows, and what to do. An Alembic ``CommandError``
    too, so that ``alembic downgrade`` prints it as one ``FAILED:`` line (exit 1) rather than
    a traceback.
    """


#: Per revision, what refuses its downgrade: a check returning the one-line refusal while the
#: tables hold rows the revision below cannot represent, else ``None``.
Refusal = Callable[[Connection], "str | None"]
_REFUSALS: dict[str, Refusal] = {}


def refuses_downgrade(revision: str) -> Callable[[Refusal], Refusal]:
    """Register ``check`` as what refuses the downgrade below ``revision`` (a decorator)."""

    def register(check: Refusal) -> Refusal:
        _REFUSALS[revision] = check
        return check

    return register


def refuse_downgrade(revision: str) -> None:
    """Raise ``DowngradeRefusedError`` if any step from ``revision`` down to the destination
    would meet rows the older schema cannot represent; call it first in ``downgrade()``.

    A downgrade over several revisions runs one revision at a time, each committed: checking
    only its own step, ``0005`` to ``0003`` would take ``0005`` down and then refuse at
    ``0004``, leaving the tables at a revision no relay of either version runs on. So the first
    step checks every step down to the destination (a revision id or ``base``; for a relative
    destination, only its own), before anything changes.
    """
    if offline():
        return
    destination = context.get_revision_argument()
    if destination == "base":
        lowest = ""
    elif isinstance(destination, str) and re.fullmatch(r"\d{4}", destination):
        lowest = destination
    else:  # relative (-1) or unusual: this step only; the next step checks itself
        _refuse([revision] if revision in _REFUSALS else [])
        return
    _refuse([r for r in sorted(_REFUSALS, reverse=True) if lowest < r <= revision])


def _refuse(revisions: Sequence[str]) -> None:
    conn = op.get_bind()
    for revision in revisions:
        message = _REFUSALS[revision](conn)
        if message:
            raise DowngradeRefusedError(message)


def settings() -> RelaySettings:
    """The ``RELAY_*`` settings, or an Alembic ``CommandError`` naming each invalid one.

    ``alembic`` run by hand prints a ``CommandError`` as one ``FAILED:`` line and exits
    non-zero; a pydantic ``ValidationError`` would be a traceback (and quote the input).
    """
    try:
        return load_settings()
    except ConfigurationError as exc:
        raise CommandError(str(exc)) from None


class LockNotTakenError(RuntimeError):
    """A locking statement found the table busy for longer than the retry budget."""


def dialect() -> str:
    """The name of the dialect the migration runs on (``postgresql``, ``mysql``, ``sqlite``)."""
    return op.get_context().dialect.name


def offline() -> bool:
    """Whether the migration only renders SQL (``--sql``): nothing can be looked up."""
    return bool(op.get_context().as_sql)


def _is_lock_timeout(exc: sa.exc.DBAPIError) -> bool:
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == _PG_LOCK_NOT_AVAILABLE:
        return True
    args: tuple[object, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] == _MARIADB_LOCK_WAIT_TIMEOUT


def locked(statement: str, *, what: str) -> None:
    """Run ``statement`` in a transaction of its own, under a short lock timeout, retrying.

    Call it inside ``op.get_context().autocommit_block()``, so that the lock is released as
    soon as the statement is done. ``what`` names the step in the error raised when the lock
    could not be taken within ``RELAY_MIGRATE_LOCK_RETRY_SECONDS`` (the table is then unchanged
    by this statement, and running the migration again resumes here).
    """
    if offline():
        op.execute(statement)
        return
    _retrying(op.get_bind(), lambda conn: conn.exec_driver_sql(statement), what=what)


def _retrying(conn: Connection, attempt: Callable[[Connection], object], *, what: str) -> None:
    """``attempt(conn)`` under the migration lock timeout, retried while it times out (see
    ``locked``); the session's lock timeout is reset afterwards."""
    # RELAY_MIGRATE_LOCK_TIMEOUT_MS: how long one attempt may wait (and so make writers wait);
    # RELAY_MIGRATE_LOCK_RETRY_SECONDS: how long it keeps retrying before the migration fails.
    current = settings()
    _set_lock_timeout(conn, current.migrate_lock_timeout_ms)
    deadline = time.monotonic() + current.migrate_lock_retry_seconds
    pause = _FIRST_PAUSE_SECONDS
    try:
        while True:
            try:
                attempt(conn)
                return
            except sa.exc.DBAPIError as exc:
                if not _is_lock_timeout(exc):
                    raise
                if time.monotonic() + pause > deadline:
                    raise LockNotTakenError(
                        f"{what}: relay_outbox stayed locked by other transactions for "
                        f"{current.migrate_lock_retry_seconds:.0f} s; "
                        "run relay migrate again when they end"
                    ) from None
            # Sleeping without a lock, so the writers queued behind the attempt go first.
            time.sleep(pause)
            pause = min(pause * 2, _MAX_PAUSE_SECONDS)
    finally:
        _set_lock_timeout(conn, None)


def _set_lock_timeout(conn: Connection, milliseconds: int | None) -> None:
    name = dialect()
    if name == "postgresql":
        # Session level: the statements run in autocommit mode, each its own transaction.
        value = "DEFAULT" if milliseconds is None else f"'{int(milliseconds)}ms'"
        conn.exec_driver_sql(f"SET lock_timeout = {value}")
    elif name in {"mysql", "mariadb"}:
        # Whole seconds only; 1 is the shortest wait MariaDB takes.
        value = "DEFAULT" if milliseconds is None else str(max(1, -(-int(milliseconds) // 1000)))
        conn.exec_driver_sql(f"SET SESSION lock_wait_timeout = {value}")


# --- PostgreSQL indexes ----------------------------------------------------------------------


def _index_state(name: str) -> tuple[bool, str] | None:
    """``(valid, definition)`` of index ``name`` in the current schema, or None when absent."""
    row = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = :name AND c.relnamespace = current_schema()::regnamespace"
            ),
            {"name": name},
        )
        .one_or_none()
    )
    return None if row is None else (bool(row[0]), str(row[1]))


def _concurrently(statement: str) -> None:
    if offline():
        op.execute(statement)
        return
    conn = op.get_bind()
    # No lock timeout: these statements block no writer while they wait for old
    # transactions, and a timeout in the middle would leave an INVALID index behind.
    conn.exec_driver_sql("SET lock_timeout = 0")
    try:
        conn.exec_driver_sql(statement)
    finally:
        conn.exec_driver_sql("SET lock_timeout = DEFAULT")


def drop_index_concurrently(name: str) -> None:
    """``DROP INDEX CONCURRENTLY IF EXISTS name`` (PostgreSQL; inside an autocommit block)."""
    _concurrently(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


def create_index_concurrently(
    name: str,
    table: str,
    columns: Sequence[str],
    *,
    where: str | None = None,
    using: str | None = None,
) -> None:
    """Build index ``name`` with ``CREATE INDEX CONCURRENTLY`` (PostgreSQL; autocommit block).

    A valid index of that name is kept as it is; an INVALID one (a build that failed or was
    cancelled) is dropped and built again. ``using``: the access method (``hash``), else a
    B-tree.
    """
    if not offline():
        state = _index_state(name)
        if state is not None and state[0]:
            return
        if state is not None:
            drop_index_concurrently(name)
    predicate = f" WHERE {where}" if where else ""
    method = f" USING {using}" if using else ""
    _concurrently(
        f"CREATE INDEX CONCURRENTLY {name} ON {table}{method} ({', '.join(columns)}){predicate}"
    )


def replace_index_concurrently(
    name: str, table: str, columns: Sequence[str], *, where: str | None, marker: str
) -> None:
    """Replace index ``name`` by a new definition, never leaving the table without one.

    The new index is built beside the old one under a temporary name, the old one is dropped,
    and the new one renamed: each step concurrent, or short and under ``locked``. ``marker``
    is a fragment of ``pg_get_indexdef`` found only in the new definition (or, for a new
    definition without a predicate, ``""``: then the absence of ``WHERE`` marks it); an
    index ``name`` that already has it is left alone, so a re-run resumes where it stopped.
    """
    temporary = f"{name}_new"
    if not offline():
        state = _index_state(name)
        if state is not None and state[0] and _has_definition(state[1], marker):
            drop_index_concurrently(temporary)
            return
    create_index_concurrently(temporary, table, columns, where=where)
    drop_index_concurrently(name)
    locked(f"ALTER INDEX {temporary} RENAME TO {name}", what=f"renaming index {name}")


def _has_definition(definition: str, marker: str) -> bool:
    if marker:
        return marker in definition
    return " WHERE " not in definition


# --- MariaDB ---------------------------------------------------------------------------------


def mariadb_alter(table: str, clause: str, *, what: str) -> None:
    """``ALTER TABLE table clause`` in place, without blocking writers (MariaDB).

    Tries ``ALGORITHM=INSTANT`` (metadata only), then ``ALGORITHM=INPLACE, LOCK=NONE``; never
    a table copy: when neither is possible MariaDB refuses the statement and the migration
    fails, rather than lock the table for the length of a copy. Each attempt waits at most
    ``lock_wait_timeout`` for the metadata lock and retries as ``locked`` does.
    """
    try:
        locked(f"ALTER TABLE {table} {clause}, ALGORITHM=INSTANT", what=what)
    except sa.exc.DBAPIError as exc:
        # 1845/1846: the algorithm (or lock level) is not supported for this change.
        code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
        if code not in {1845, 1846}:
            raise
        locked(f"ALTER TABLE {table} {clause}, ALGORITHM=INPLACE, LOCK=NONE", what=what)


@contextmanager
def mariadb_table_locked(table: str, *, what: str) -> Iterator[None]:
    """Hold ``LOCK TABLES table WRITE`` for the body (MariaDB; inside an autocommit block).

    Taking it waits for every transaction that wrote ``table`` to end, and holding it keeps
    any other session from reading or writing it: a check in the body and the change after
    it see the same rows. It is taken as ``locked`` takes a lock (short waits, retried), and
    released (``UNLOCK TABLES``) however the body ends; keep the body short, writers wait.
    """
    conn = op.get_bind()
    _retrying(conn, lambda c: c.exec_driver_sql(f"LOCK TABLES {table} WRITE"), what=what)
    try:
        yield
    finally:
        conn.exec_driver_sql("UNLOCK TABLES")


def mariadb_alter_locked(table: str, clause: str) -> None:
    """``ALTER TABLE table clause`` inside ``mariadb_table_locked``: INSTANT (metadata only)
    where MariaDB can, else INPLACE; never a table copy (MariaDB refuses instead)."""
    conn = op.get_bind()
    try:
        conn.exec_driver_sql(f"ALTER TABLE {table} {clause}, ALGORITHM=INSTANT")
    except sa.exc.DBAPIError as exc:
        code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
        if code not in {1845, 1846}:
            raise
        conn.exec_driver_sql(f"ALTER TABLE {table} {clause}, ALGORITHM=INPLACE")


def index_columns(table: str, name: str) -> list[str] | None:
    """The columns of index ``name`` on ``table`` now (``[]`` when absent), ``None`` offline
    (the DDL is only rendered)."""
    if offline():
        return None
    for index in sa.inspect(op.get_bind()).get_indexes(table):
        if index["name"] == name:
            return [str(c) for c in index["column_names"]]
    return []


def mariadb_replace_index(table: str, name: str, columns: Sequence[str]) -> None:
    """Give index ``name`` on ``table`` these ``columns``: one ``ALTER TABLE ... DROP INDEX,
    ADD INDEX`` in place (:func:`mariadb_alter`); nothing when it already has them."""
    current = index_columns(table, name)
    if current == list(columns):
        return
    drop = f"DROP INDEX {name}, " if current else ""
    mariadb_alter(
        table, f"{drop}ADD INDEX {name} ({', '.join(columns)})", what=f"rebuilding {name}"
    )


# --- SQLite ----------------------------------------------------------------------------------


@contextmanager
def sqlite_write_locked(table: str) -> Iterator[None]:
    """Hold SQLite's write lock for the body (SQLite).

    A check followed by DDL is only safe from a write committed between them while one
    transaction holds the write lock across both: the driver may run each statement in
    autocommit mode (pysqlite's default for DDL, Django's connections), or in a transaction
    begun DEFERRED that has only read so far. Where the driver has no transaction open, one is
    begun IMMEDIATE here and ended here (committed, or rolled back if the body raises), since
    the caller's commit may not reach the driver (a connection borrowed from Django); in an
    open one, a write that changes no row takes the lock until the caller commits (relay's
    engines begin migrations IMMEDIATE already, see migrations/env.py).
    """
    conn = op.get_bind()
    own = not getattr(conn.connection.driver_connection, "in_transaction", True)
    if own:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql(f"UPDATE {table} SET id = id WHERE 0 = 1")  # noqa: S608 - a name
    try:
        yield
    except BaseException:
        if own:
            conn.exec_driver_sql("ROLLBACK")
        raise
    if own:
        conn.exec_driver_sql("COMMIT")


def sqlite_replace_index(table: str, name: str, columns: Sequence[str], *, where: str) -> None:
    """Give index ``name`` on ``table`` these ``columns`` and the predicate ``where`` (dropped
    and created: SQLite's DDL is instant, the build holds the write lock); nothing when it
    already has the columns."""
    if index_columns(table, name) == list(columns):
        return
    op.drop_index(name, table_name=table, if_exists=True)
    op.create_index(name, table, list(columns), sqlite_where=sa.text(where))


def column_exists(table: str, column: str) -> bool:
    """Whether ``table`` has ``column`` (False in offline mode: the DDL is rendered)."""
    if offline():
        return False
    return column in {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}
