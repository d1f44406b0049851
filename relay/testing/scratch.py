"""Throwaway databases on a real server, for relay's test suite and its benchmarks.

:func:`scratch_database` creates a database of its own on a PostgreSQL or MariaDB server
(``CREATE DATABASE <prefix><random>``), yields its URL and drops it on the way out, so
concurrent runs never see each other's rows. :func:`scratch_sqlite` does the same with a SQLite
file in a temporary directory. :func:`fresh_tables` gives an engine on empty relay tables
(dropped and created from :data:`relay._tables.metadata`, stamped at head so that ``relay run``
and ``relay drain`` pass their schema check); :func:`migrate` runs ``relay migrate``'s code.

The admin URLs default to the services of this project's machines and can be pointed
elsewhere with ``RELAY_TEST_POSTGRES_URL`` and ``RELAY_TEST_MARIADB_URL``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from relay import create_engine, metadata, stamp_schema, upgrade_schema
from relay._migrations import _stored_revisions, heads

#: The PostgreSQL server scratch databases are made on (its ``postgres``-like admin database).
POSTGRES_ADMIN_URL = os.environ.get(
    "RELAY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
#: The MariaDB server scratch databases are made on. Without ``ssl_disabled`` PyMySQL (1.2)
#: prepares TLS for every connection, loading the system's CA certificates (40 ms a connection
#: on this project's machines, hundreds of connections a test run), although the service
#: there has TLS disabled and the connection stays plain.
MARIADB_ADMIN_URL = os.environ.get(
    "RELAY_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test?ssl_disabled=true"
)
#: How long :func:`scratch_database` keeps trying to drop its database while the server is
#: unreachable (restarted, say) before it gives up and raises.
DROP_PATIENCE_SECONDS = 60.0

_PREFIX = re.compile(r"[a-z][a-z0-9_]{0,30}")


@contextlib.contextmanager
def scratch_database(admin_url: str, *, prefix: str = "relay_t_") -> Iterator[str]:
    """A new, empty database on ``admin_url``'s server named ``<prefix><12 hex digits>``;
    yields its URL (password included) and drops it afterwards, even after an error.

    The drop uses ``WITH (FORCE)`` on PostgreSQL, so sessions a test left open do not keep the
    database alive, and is retried for :data:`DROP_PATIENCE_SECONDS` while the server does not
    accept connections.
    """
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"prefix must be a lower-case SQL identifier, got {prefix!r}")
    name = f"{prefix}{secrets.token_hex(6)}"
    # Pre-ping: a server restarted meanwhile leaves dead connections in the pool.
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            _drop_database(admin, name)
    finally:
        admin.dispose()


def _drop_database(admin: Engine, name: str) -> None:
    force = " WITH (FORCE)" if admin.dialect.name == "postgresql" else ""
    deadline = time.monotonic() + DROP_PATIENCE_SECONDS
    while True:
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
        except sa.exc.OperationalError:  # the server does not accept connections (yet)
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)
        else:
            return


@contextlib.contextmanager
def scratch_sqlite(directory: Path | None = None, *, prefix: str = "relay_t_") -> Iterator[str]:
    """The URL of a SQLite file (not created yet) in a new temporary directory, which is
    deleted afterwards with everything in it."""
    with tempfile.TemporaryDirectory(dir=directory, prefix=prefix) as tmp:
        yield f"sqlite:///{tmp}/relay.db"


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade relay's tables in ``url``'s database to ``revision`` (``relay migrate``'s code)."""
    engine = create_engine(url)
    try:
        upgrade_schema(engine, revision)
    finally:
        engine.dispose()


#: URLs whose relay tables this process created (with :func:`fresh_tables`) and may empty
#: instead of recreating.
_CREATED: set[str] = set()


@contextlib.contextmanager
def fresh_tables(url: str) -> Iterator[Engine]:
    """An engine on ``url`` with relay's tables empty and stamped at head; disposed of afterwards.

    The first call for a URL in a process drops and creates the tables (0.1-0.8 s a time, most
    of the test suite's time when it was done for every test); later calls empty them in one
    transaction, which is 10-50 times cheaper. A test that dropped or broke a relay table (the
    ``DELETE`` fails) or left the schema at another revision gets the tables recreated.
    """
    engine = create_engine(url)
    try:
        if url not in _CREATED or not _emptied(engine):
            metadata.drop_all(engine)
            metadata.create_all(engine)
            stamp_schema(engine)  # so that `relay run`/`drain` pass their schema check
            _CREATED.add(url)
        yield engine
    finally:
        engine.dispose()


@functools.cache
def _head() -> list[str]:
    return heads()


def _emptied(engine: Engine) -> bool:
    """Delete every row of relay's tables; ``False`` (nothing changed) when one is missing or
    the schema is not stamped at head, so the caller recreates them."""
    try:
        if _stored_revisions(engine) != _head():
            return False
        _empty_tables(engine)
    except sa.exc.DBAPIError:
        return False
    return True


def _empty_tables(engine: Engine) -> None:
    """Delete every row and restart the ids at 1 (tests read the ids they expect)."""
    tables = [table.name for table in reversed(metadata.sorted_tables)]
    quote = engine.dialect.identifier_preparer.quote
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(quote(name) for name in tables)
            conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        elif engine.dialect.name == "sqlite":
            for name in tables:
                conn.exec_driver_sql(f"DELETE FROM {quote(name)}")  # noqa: S608 - relay's own names
            has_sequence = conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"
            ).first()
            if has_sequence:
                conn.exec_driver_sql("DELETE FROM sqlite_sequence")
        else:  # MariaDB/MySQL: TRUNCATE restarts AUTO_INCREMENT; foreign keys would refuse it
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
            try:
                for name in tables:
                    conn.exec_driver_sql(f"TRUNCATE TABLE {quote(name)}")
            finally:
                conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")
