"""Scratch databases for the benchmarks and what is done to them between runs.

The databases come from :mod:`relay.testing.scratch`, the test suite's own helper, migrated to
head with ``relay migrate``'s code. :func:`retry_if_restarted` repeats a run that a PostgreSQL
restart interrupted, which it tells from the server's start time, not from error messages.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from _procs import WorkerError
from sqlalchemy.engine import Engine

from relay.testing import scratch

_T = TypeVar("_T")
DEFAULT_ADMIN_URL = scratch.POSTGRES_ADMIN_URL
PREFIX = "relay_bench_"
#: The ``json`` experiments (not relay's schema): ``properties`` as ``json`` (or back, ``jsonb``).
ALTER_PROPERTIES = (
    "ALTER TABLE relay_outbox ALTER COLUMN properties TYPE {type} USING properties::{type}"
)


@contextlib.contextmanager
def scratch_postgres(admin_url: str = DEFAULT_ADMIN_URL) -> Iterator[str]:
    """A fresh PostgreSQL database migrated to head with ``relay migrate``'s code; dropped after."""
    with scratch.scratch_database(admin_url, prefix=PREFIX) as url:
        scratch.migrate(url)
        yield url


@contextlib.contextmanager
def scratch_sqlite(directory: Path | None = None) -> Iterator[str]:
    """A fresh SQLite file migrated to head; deleted after."""
    with scratch.scratch_sqlite(directory, prefix=PREFIX) as url:
        scratch.migrate(url)
        yield url


def server_version(engine: Engine) -> str:
    """The database server's version string."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            return "PostgreSQL " + str(conn.exec_driver_sql("SHOW server_version").scalar_one())
        if engine.dialect.name == "sqlite":
            return "SQLite " + str(conn.exec_driver_sql("select sqlite_version()").scalar_one())
        return str(conn.exec_driver_sql("select version()").scalar_one())


def settle(engine: Engine) -> None:
    """VACUUM ANALYZE and, on PostgreSQL, CHECKPOINT: every run starts from the same state."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("VACUUM ANALYZE relay_outbox")
            conn.exec_driver_sql("CHECKPOINT")
        else:
            conn.exec_driver_sql("ANALYZE")
    if engine.dialect.name == "sqlite":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").all()


def truncate(engine: Engine) -> None:
    """Empty the outbox and the pauses (a shared throttle left by the previous run's relay)."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM relay_pause")
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("TRUNCATE relay_outbox RESTART IDENTITY")
        else:
            conn.exec_driver_sql("DELETE FROM relay_outbox")


def count_by_state(engine: Engine) -> dict[str, int]:
    """Rows per state."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT state, count(*) FROM relay_outbox GROUP BY state")
        return {str(state): int(n) for state, n in rows}


# --- a PostgreSQL restart under a run ---------------------------------------------------------


def server_started_at(server_url: str = DEFAULT_ADMIN_URL, timeout: float = 120.0) -> dt.datetime:
    """When the PostgreSQL server last started (``pg_postmaster_start_time()``), waiting up to
    ``timeout`` seconds for it to accept connections."""
    deadline = time.monotonic() + timeout
    while True:
        engine = sa.create_engine(server_url)
        try:
            with engine.connect() as conn:
                started = conn.exec_driver_sql("SELECT pg_postmaster_start_time()").scalar_one()
            assert isinstance(started, dt.datetime)
            return started
        except sa.exc.OperationalError:  # not accepting connections (yet)
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)
        finally:
            engine.dispose()


def retry_if_restarted(
    run: Callable[[], _T], *, server_url: str = DEFAULT_ADMIN_URL, attempts: int = 3
) -> _T:
    """``run()``, again (up to ``attempts`` times) when PostgreSQL was restarted under it.

    A run that failed with a database error (:class:`sqlalchemy.exc.OperationalError`) or a
    failed worker (:class:`_procs.WorkerError`) is repeated only when the server's start time
    changed meanwhile, that is when it was restarted: a run it interrupted measures nothing.
    Any other failure, or the same failure on a server that stayed up, is raised. The
    repetition is reported.
    """
    for attempt in range(1, attempts + 1):
        started = server_started_at(server_url)
        try:
            return run()
        except (sa.exc.OperationalError, WorkerError) as exc:
            if attempt == attempts or server_started_at(server_url) == started:
                raise
            print(f"  PostgreSQL restarted under the run ({type(exc).__name__}); repeating it")
    raise AssertionError("unreachable")
