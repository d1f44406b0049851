"""Write latency of the host's ``track()`` while ``relay migrate`` upgrades a big outbox.

A fresh PostgreSQL database is migrated to revision 0001 and bulk-loaded with ``--rows`` rows
(``--pending`` of them pending, the rest delivered), then settled (VACUUM ANALYZE, CHECKPOINT).
A writer thread tracks one real event per transaction with ``track()`` and times each
transaction (track + commit), while ``relay migrate`` runs in a process of its own from 0001
to head. Printed: how long the migration took, how many transactions committed meanwhile, and
their p50 / p99 / max latency.

``--old`` runs, instead of ``relay migrate``, the statements revision 0002 ran before it was
made online, in one transaction (ADD COLUMN, DROP INDEX, CREATE INDEX, fill factor), for the
comparison.

    .venv/bin/python bench/online_migration.py                   # 1,000,000 rows
    .venv/bin/python bench/online_migration.py --old
    .venv/bin/python bench/online_migration.py --rows 200000 --json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _db import DEFAULT_ADMIN_URL, PREFIX, settle
from _loaders import load_rows, new_tag, survey_properties
from _stats import machine
from _survey_event import SURVEY_DELIVERED

from relay._database import create_engine
from relay._tracking import track
from relay.testing import scratch

RELAY = Path(sys.executable).parent / "relay"

#: What revision 0002 ran before it was made online, in the migration's one transaction.
OLD_0002 = [
    "ALTER TABLE relay_outbox ADD COLUMN lease_expires_at TIMESTAMP WITH TIME ZONE",
    "COMMENT ON COLUMN relay_outbox.lease_expires_at IS "
    "'until when lease_token holds the row; NULL when no relay holds it'",
    "DROP INDEX ix_relay_outbox_state_finished_at",
    "CREATE INDEX ix_relay_outbox_state_finished_at ON relay_outbox (state, finished_at) "
    "WHERE state <> 'pending'",
    "ALTER TABLE relay_outbox SET (fillfactor = 50)",
    "UPDATE relay_alembic_version SET version_num='0002' WHERE version_num = '0001'",
]


@dataclass
class Result:
    """One run's figures (seconds)."""

    rows: int
    migration: str
    migration_seconds: float
    writes_during_migration: int
    p50_seconds: float
    p99_seconds: float
    max_seconds: float


class Writer(threading.Thread):
    """Tracks one event per transaction until stopped, timing each transaction."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(daemon=True)
        self.engine = engine
        self.stop_event = threading.Event()
        #: (monotonic start, seconds) per committed transaction.
        self.timings: list[tuple[float, float]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        seq = 0
        try:
            with Session(self.engine) as session:
                while not self.stop_event.is_set():
                    seq += 1
                    employee = str(uuid.uuid4())
                    started = time.monotonic()
                    track(
                        session,
                        event=SURVEY_DELIVERED,
                        distinct_id=employee,
                        properties={**survey_properties(seq), "employee_id": employee},
                        strict=True,
                    )
                    session.commit()
                    self.timings.append((started, time.monotonic() - started))
        except BaseException as exc:  # noqa: BLE001 - re-raised by the main thread
            self.error = exc


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(fraction * len(ordered) + 0.5) - 1))]


@contextlib.contextmanager
def scratch_at_0001(admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database with relay's tables at revision 0001; dropped afterwards."""
    with scratch.scratch_database(admin_url, prefix=PREFIX) as url:
        scratch.migrate(url, "0001")
        yield url


def migrate_online(url: str) -> None:
    """``relay migrate`` in a process of its own (0001 to head)."""
    subprocess.run(
        [str(RELAY), "--database-url", url, "migrate"],
        check=True,
        capture_output=True,
        env={**os.environ, "RELAY_LOG_LEVEL": "WARNING"},
    )


def migrate_old(url: str) -> None:
    """The former revision 0002, in one transaction."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in OLD_0002:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def measure(*, url: str, rows: int, pending: int, old: bool) -> Result:
    """Load, settle, then time the writer's transactions while the migration runs."""
    engine = create_engine(url)
    try:
        tag = new_tag()
        load_rows(engine, count=rows - pending, state="delivered", tag=tag)
        load_rows(engine, count=pending, state="pending", tag=tag, first=rows - pending + 1)
        settle(engine)
        writer = Writer(engine)
        writer.start()
        while not writer.timings and writer.error is None:  # warmed up: first commit done
            time.sleep(0.01)
        started = time.monotonic()
        (migrate_old if old else migrate_online)(url)
        finished = time.monotonic()
        writer.stop_event.set()
        writer.join(timeout=60)
        if writer.error is not None:
            raise writer.error
        during = [
            seconds
            for (start, seconds) in writer.timings
            if start + seconds >= started and start <= finished
        ]
        return Result(
            rows=rows,
            migration="old 0002 (one transaction)" if old else "relay migrate (online)",
            migration_seconds=round(finished - started, 3),
            writes_during_migration=len(during),
            p50_seconds=round(percentile(during, 0.50), 4),
            p99_seconds=round(percentile(during, 0.99), 4),
            max_seconds=round(max(during), 4),
        )
    finally:
        engine.dispose()


def main() -> int:
    """Parse the options, run once, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pending", type=int, default=10_000, help="of --rows, left pending")
    parser.add_argument("--old", action="store_true", help="the former, blocking 0002")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with scratch_at_0001(args.admin_url) as url:
        result = measure(url=url, rows=args.rows, pending=args.pending, old=args.old)
    if args.json:
        print(orjson.dumps(asdict(result)).decode())
        return 0
    print(f"{machine()}, {dt.datetime.now(dt.UTC):%Y-%m-%d}")
    print(
        f"{result.migration}: {result.rows:,} rows, took {result.migration_seconds:.2f} s; "
        f"{result.writes_during_migration} track() transactions meanwhile: "
        f"p50 {result.p50_seconds * 1000:.1f} ms, p99 {result.p99_seconds * 1000:.1f} ms, "
        f"max {result.max_seconds * 1000:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
