"""Engines for the outbox database, with each dialect set up the way the relay relies on.

SQLite needs two fixes that SQLAlchemy documents for pysqlite: the driver's own transaction
handling is switched off so that SAVEPOINT works and so that the relay can ``BEGIN IMMEDIATE``
(taking the write lock up front instead of failing to upgrade a read lock mid-claim). WAL mode
lets the application write while a relay reads.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

SQLITE_BUSY_TIMEOUT_MS = 30_000
_SQLITE_BEGIN_OPTION = "relay_sqlite_begin"


def _json_serializer(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` set up for relay (and fine for the host application too).

    Extra keyword arguments go to :func:`sqlalchemy.create_engine`.
    """
    kwargs.setdefault("json_serializer", _json_serializer)
    kwargs.setdefault("json_deserializer", orjson.loads)
    kwargs.setdefault("pool_pre_ping", True)
    engine = sa.create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        configure_sqlite(engine)
    return engine


def configure_sqlite(engine: Engine) -> None:
    """Apply SQLAlchemy's pysqlite recipe: explicit BEGIN, working SAVEPOINT, WAL, busy timeout.

    A host application on SQLite that passes its own engine's sessions to ``track()`` should
    call this on that engine (``relay.database.create_engine`` does it already).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver must not BEGIN on its own
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if engine.url.database not in (None, "", ":memory:"):
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get(_SQLITE_BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def immediate(conn: sa.Connection) -> sa.Connection:
    """Mark ``conn`` so that its next transaction on SQLite takes the write lock at BEGIN."""
    return conn.execution_options(**{_SQLITE_BEGIN_OPTION: "IMMEDIATE"})
