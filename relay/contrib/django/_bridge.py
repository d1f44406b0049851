"""A SQLAlchemy ``Connection`` on Django's own live DBAPI connection, leaving its transaction be.

relay's core (``track()``, the test capture, Alembic) speaks SQLAlchemy; a Django project's
writes go through Django's connection, in Django's transaction. To put an event in *that*
transaction, relay lends SQLAlchemy the very DBAPI connection Django holds, through an engine
whose dialect is a "borrowed" subclass of the usual one:

- ``do_begin``, ``do_commit``, ``do_rollback``, ``do_close`` and ``do_terminate`` do nothing, so
  nothing SQLAlchemy does (autobegin, closing the ``Connection``, the first-connect rollback,
  invalidation after a disconnect) begins, ends or closes Django's transaction. SAVEPOINTs are
  plain SQL and pass through: ``track()`` writes inside one, so a failed insert rolls back alone;
- ``on_connect`` is ``None``: the dialect registers nothing on Django's connection (no notice
  handlers, JSON loaders or hstore adapters that would change what Django's own queries return);
- the isolation level can only be "changed" to ``AUTOCOMMIT`` while Django's connection already
  is in autocommit (what Alembic asks for around ``CREATE INDEX CONCURRENTLY`` during ``migrate``),
  or "set" to the level it has; any other change raises, and resetting it does nothing.

The pool is a ``NullPool`` whose creator hands out ``connections[alias].connection`` of the
calling thread, so every checkout is the thread's current Django connection, whatever Django
did to it since (``CONN_MAX_AGE`` reconnects included). The dialect is initialised once per
alias, on Django's connection, inside a Django savepoint (``atomic``), so even a failing
version query cannot abort the caller's transaction.

SQL sent this way bypasses Django's cursor wrappers: it is not in ``connection.queries`` and
``execute_wrapper`` hooks do not see it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import sqlalchemy as sa
from django.db import connections, transaction
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.mysql.mysqldb import MySQLDialect_mysqldb
from sqlalchemy.dialects.mysql.pymysql import MySQLDialect_pymysql
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.dialects.postgresql.psycopg2 import PGDialect_psycopg2
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from relay._errors import StoreError

_AUTOCOMMIT = "AUTOCOMMIT"


class _Borrowed:
    """Mixin for a SQLAlchemy dialect whose DBAPI connections belong to Django."""

    def on_connect(self) -> None:
        return None

    def on_connect_url(self, url: sa.URL) -> None:
        return None

    def do_begin(self, dbapi_connection: Any) -> None:
        """Django begins transactions (``atomic``); the DBAPI's implicit one is Django's."""

    def do_commit(self, dbapi_connection: Any) -> None:
        """Django commits, when its outermost ``atomic`` block exits."""

    def do_rollback(self, dbapi_connection: Any) -> None:
        """Django rolls back; SAVEPOINT rollbacks are SQL and still happen."""

    def do_close(self, dbapi_connection: Any) -> None:
        """Django closes its connection."""

    def do_terminate(self, dbapi_connection: Any) -> None:
        """Django closes its connection, also after a disconnect."""

    def set_isolation_level(self, dbapi_connection: Any, level: str) -> None:
        """Allowed only where it changes nothing: AUTOCOMMIT in autocommit, or the current level.

        (Alembic asks for AUTOCOMMIT around ``CREATE INDEX CONCURRENTLY``, then restores the
        level it read before.)
        """
        if level == _AUTOCOMMIT and _in_autocommit(dbapi_connection):
            return
        current = super().get_isolation_level(dbapi_connection)  # type: ignore[misc]
        if str(current).upper().replace("_", " ") == level.upper().replace("_", " "):
            return
        raise StoreError(
            f"relay does not change the isolation level of Django's connection (to {level})"
        )

    def reset_isolation_level(self, dbapi_connection: Any) -> None:
        """Nothing was changed (see ``set_isolation_level``)."""


def _in_autocommit(dbapi_connection: Any) -> bool:
    for wrapper in connections.all(initialized_only=True):
        if wrapper.connection is dbapi_connection:
            return bool(wrapper.get_autocommit())
    return False


class BorrowedPsycopg(_Borrowed, PGDialect_psycopg):  # type: ignore[misc,unused-ignore]
    """PostgreSQL through psycopg 3, on Django's connection."""

    supports_statement_cache = True


class BorrowedPsycopg2(_Borrowed, PGDialect_psycopg2):  # type: ignore[misc,unused-ignore]
    """PostgreSQL through psycopg2, on Django's connection."""

    supports_statement_cache = True


class BorrowedPysqlite(_Borrowed, SQLiteDialect_pysqlite):  # type: ignore[misc,unused-ignore]
    """SQLite through the standard library's sqlite3, on Django's connection."""

    supports_statement_cache = True


class BorrowedPymysql(_Borrowed, MySQLDialect_pymysql):  # type: ignore[misc,unused-ignore]
    """MySQL/MariaDB through PyMySQL (``pymysql.install_as_MySQLdb()``), on Django's connection."""

    supports_statement_cache = True


class BorrowedMysqldb(_Borrowed, MySQLDialect_mysqldb):  # type: ignore[misc,unused-ignore]
    """MySQL/MariaDB through mysqlclient, on Django's connection."""

    supports_statement_cache = True


_DIALECTS = {
    ("postgresql", "psycopg"): "BorrowedPsycopg",
    ("postgresql", "psycopg2"): "BorrowedPsycopg2",
    ("sqlite", "pysqlite"): "BorrowedPysqlite",
    ("mysql", "pymysql"): "BorrowedPymysql",
    ("mysql", "mysqldb"): "BorrowedMysqldb",
}
for (_backend, _driver), _name in _DIALECTS.items():
    registry.register(f"{_backend}.relay_django_{_driver}", __name__, _name)

_engines: dict[tuple[str, str, str], Engine] = {}
_engines_lock = threading.Lock()


def sqlalchemy_backend(alias: str) -> tuple[str, str]:
    """SQLAlchemy's (dialect, driver) names for Django's database ``alias``."""
    wrapper = connections[alias]
    vendor = wrapper.vendor
    if vendor == "postgresql":
        from django.db.backends.postgresql.psycopg_any import is_psycopg3  # noqa: PLC0415

        return "postgresql", "psycopg" if is_psycopg3 else "psycopg2"
    if vendor == "sqlite":
        return "sqlite", "pysqlite"
    if vendor == "mysql":
        module = type(wrapper.connection).__module__ if wrapper.connection else ""
        if not module:
            import MySQLdb  # Django's MySQL backend imported it already  # noqa: PLC0415

            module = MySQLdb.__name__
        return "mysql", "pymysql" if module.startswith("pymysql") else "mysqldb"
    raise StoreError(f"relay supports Django's postgresql, sqlite and mysql backends, not {vendor}")


def _engine(alias: str) -> Engine:
    backend, driver = sqlalchemy_backend(alias)
    key = (alias, backend, driver)
    engine = _engines.get(key)
    if engine is not None:
        return engine
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            options: dict[str, Any] = {}
            if backend == "postgresql":
                options["use_native_hstore"] = False  # would register adapters on Django's conn
            engine = sa.create_engine(
                f"{backend}+relay_django_{driver}://",
                creator=lambda: connections[alias].connection,
                poolclass=NullPool,
                pool_reset_on_return=None,
                json_serializer=lambda value: orjson.dumps(value).decode(),
                json_deserializer=orjson.loads,
                **options,
            )
            # The first checkout initialises the dialect (server version, ...) on Django's
            # connection: inside a savepoint, so a failure cannot abort the caller's block.
            with transaction.atomic(using=alias), engine.connect():
                pass
            _engines[key] = engine
    return engine


@contextlib.contextmanager
def borrowed_connection(using: str = "default") -> Iterator[sa.Connection]:
    """A SQLAlchemy ``Connection`` on Django's current connection for ``using``.

    It sees and writes in Django's transaction; closing it leaves that transaction alone.
    Outside any ``atomic`` block Django's connection is in autocommit mode, so each statement
    commits at once; wrap the block in ``atomic()`` to make several statements one unit.
    """
    wrapper = connections[using]
    wrapper.ensure_connection()
    with _engine(using).connect() as conn:
        yield conn
