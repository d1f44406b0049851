"""PostgreSQL through psycopg 3: one event's INSERT as one statement on the driver connection.

The fast path under :func:`relay._store.outbox.write_event`; any other dialect or driver gets
``None`` back and takes the portable path there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection

from relay._store._base import INSERT_HINT, store_error
from relay._tables import outbox


def _pg_insert_sql(columns: tuple[str, ...]) -> str:
    """``INSERT INTO relay_outbox (columns) VALUES (...) ON CONFLICT (insert_id) DO NOTHING``.

    With psycopg named placeholders. The columns are those of the values given, each of which
    must be a column of the table (``KeyError`` otherwise), which also keeps anything but
    column names out of the SQL.
    """
    names = [outbox.c[column].name for column in columns]
    placeholders = [
        f"CAST(%({name})s AS jsonb)" if name == "properties" else f"%({name})s" for name in names
    ]
    return (
        f"INSERT INTO {outbox.name} ({', '.join(names)}) "  # noqa: S608 - column names only
        f"VALUES ({', '.join(placeholders)}) ON CONFLICT (insert_id) DO NOTHING"
    )


def insert_in_one_round_trip(conn: Connection, *, values: Mapping[str, Any]) -> bool | None:
    """On PostgreSQL through psycopg 3: INSERT ... ON CONFLICT DO NOTHING, one round trip.

    ``values`` as :func:`pending_row` makes them (the properties as JSON text). Returns whether
    the row was written (``False``: its ``insert_id`` was already there), or ``None``, having
    done nothing, on any other dialect or driver (asyncpg, psycopg's async connection) or on
    a connection in autocommit mode, where the caller takes the portable path. The statement
    goes out with the extended protocol (values as bind parameters, so a server log of a
    failed statement shows placeholders, not property values) and is never prepared on the
    server (``prepare=False``), whatever the
    host's ``prepare_threshold``: behind a transaction-pooling PgBouncer the next transaction
    may run on another server connection, where a prepared statement does not exist. A failure
    raises a typed :class:`StoreError`, unchained; as there is no savepoint, a failure the
    server reports leaves the caller's transaction aborted. SQLAlchemy's statement hooks
    (``before_cursor_execute``) do not see this statement.

    Lock and guard: as :func:`insert_rows`.
    """
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "psycopg":
        return None
    import psycopg  # the driver of this dialect: installed  # noqa: PLC0415

    driver = conn.connection.driver_connection
    if not isinstance(driver, psycopg.Connection) or driver.autocommit:
        return None
    with driver.cursor() as insert:
        try:
            insert.execute(_pg_insert_sql(tuple(values)), values, prepare=False)
        except psycopg.Error as exc:
            raise store_error(exc, "outbox insert", hint=INSERT_HINT) from None
        return insert.rowcount > 0
