"""What one drain cycle costs at a low rate: round trips, and CPU per cycle, in the relay and in
PostgreSQL.

At 1,000 events/s from many connections the daemon wakes every probe interval (20 ms) and
drains a few dozen events per cycle: the fixed cost of a cycle (its transactions, statements
and round trips), not the per-row cost, is then what the relay and the database spend, and
each round trip is one more moment the relay's thread must be scheduled again on a busy
machine (commit-to-accepted latency). This bench counts that cost without a clock-sensitive
harness.

Per run: a scratch PostgreSQL database, the stand-in in a process of its own, and a drainer
built as ``relay run`` builds it (``open_drainer``, paced: the adaptive limiter); then
``--cycles`` times: ``--events`` pending rows are bulk-loaded (outside the measure) and one
``drain_until_idle()`` delivers them. Reported per cycle (median over the cycles, then the
median of the runs): the statements the relay's engine executed, the transactions it began
(each two more round trips: ``BEGIN`` and ``COMMIT``), the pool checkouts (each a pre-ping
round trip), the wall time; and, as a mean per cycle (CPU times tick in 10 ms), the relay's
CPU (this process: its drain threads; the loader is idle meanwhile) and PostgreSQL's (every
server process of the scratch database except the loader's).

    .venv/bin/python bench/drain_cycle_cost.py [--events 20] [--cycles 300] [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import time
from collections.abc import Iterator
from typing import Any

import psutil
import sqlalchemy as sa
from _db import scratch_postgres
from _loaders import load_rows, new_tag
from _standin import Standin
from _stats import median, print_header

from relay._config import RelaySettings, load_settings
from relay._database import create_engine
from relay._delivery.wiring import open_drainer
from relay._logging import configure_logging


class _Counter:
    """Statements, transactions and checkouts of one engine, counted by its events."""

    def __init__(self, engine: sa.Engine) -> None:
        self.statements = 0
        self.begins = 0
        self.checkouts = 0
        sa.event.listen(engine, "before_cursor_execute", self._statement)
        sa.event.listen(engine, "begin", self._begin)
        sa.event.listen(engine.pool, "checkout", self._checkout)

    def _statement(self, *_: Any) -> None:
        self.statements += 1

    def _begin(self, *_: Any) -> None:
        self.begins += 1

    def _checkout(self, *_: Any) -> None:
        self.checkouts += 1

    def snapshot(self) -> tuple[int, int, int]:
        return self.statements, self.begins, self.checkouts


def _backend_pids(engine: sa.Engine, database: str, loader_pid: int) -> list[int]:
    with engine.connect() as conn:
        return [
            int(pid)
            for pid in conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = :d AND pid <> :me "
                    "AND pid <> pg_backend_pid()"
                ),
                {"d": database, "me": loader_pid},
            ).scalars()
        ]


def _cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


@contextlib.contextmanager
def _environment(url: str, standin: Standin) -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("RELAY_")}
    for key in saved:
        del os.environ[key]
    os.environ.update({**standin.env(), "RELAY_DATABASE_URL": url, "RELAY_LOG_LEVEL": "WARNING"})
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith("RELAY_")]:
            del os.environ[key]
        os.environ.update(saved)


def one_run(events: int, cycles: int, warm_up: int = 5) -> dict[str, float]:
    """Median cost per cycle of ``cycles`` cycles of ``events`` events each."""
    standin = Standin()
    try:
        with scratch_postgres() as url, _environment(url, standin):
            settings = load_settings()
            configure_logging(settings)
            return _cycles(url, settings, events=events, cycles=cycles, warm_up=warm_up)
    finally:
        standin.close()


def _cycles(
    url: str, settings: RelaySettings, *, events: int, cycles: int, warm_up: int
) -> dict[str, float]:
    engine = create_engine(url)
    loader = sa.create_engine(url, pool_size=1)
    counter = _Counter(engine)
    me = psutil.Process()
    database = sa.make_url(url).database or ""
    per: dict[str, list[float]] = {key: [] for key, _, _ in _COLUMNS}
    cpu = {"relay_us": 0.0, "postgres_us": 0.0}
    try:
        with loader.connect() as conn:
            loader_pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        with open_drainer(engine, settings, paced=True) as drainer:
            for cycle in range(warm_up + cycles):
                load_rows(loader, count=events, tag=new_tag(), first=cycle * events + 1)
                backends = _backends(loader, database, loader_pid)
                before = counter.snapshot()
                relay0, wall0 = _cpu([me]), time.perf_counter()
                pg0 = {pid: _cpu([p]) for pid, p in backends.items()}
                result = drainer.drain_until_idle(clock=_utc_now)
                wall1, relay1 = time.perf_counter(), _cpu([me])
                backends.update(_backends(loader, database, loader_pid))
                pg = sum(_cpu([p]) - pg0.get(pid, 0.0) for pid, p in backends.items())
                if result.delivered != events:
                    raise SystemExit(f"cycle {cycle}: delivered {result.delivered} of {events}")
                if cycle < warm_up:
                    continue  # connections, the limiter's first answers
                after = counter.snapshot()
                counted = ("statements", "begins", "checkouts")
                for key, b, a in zip(counted, before, after, strict=True):
                    per[key].append(a - b)
                cpu["relay_us"] += (relay1 - relay0) * 1e6
                cpu["postgres_us"] += pg * 1e6
                per["wall_ms"].append((wall1 - wall0) * 1e3)
    finally:
        engine.dispose()
        loader.dispose()
    # CPU times tick in 10 ms: summed over the cycles, then divided, not a median of ticks.
    medians = {key: median(values) for key, values in per.items() if values}
    return {**medians, **{key: total / cycles for key, total in cpu.items()}}


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _backends(engine: sa.Engine, database: str, loader_pid: int) -> dict[int, psutil.Process]:
    found: dict[int, psutil.Process] = {}
    for pid in _backend_pids(engine, database, loader_pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            found[pid] = psutil.Process(pid)
    return found


_COLUMNS = (
    ("statements", "statements", "{:.0f}"),
    ("begins", "transactions", "{:.0f}"),
    ("checkouts", "checkouts", "{:.0f}"),
    ("relay_us", "relay CPU us", "{:,.0f}"),
    ("postgres_us", "postgres CPU us", "{:,.0f}"),
    ("wall_ms", "wall ms", "{:.2f}"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20, help="events per cycle")
    parser.add_argument("--cycles", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print_header()
    print(f"{args.events} events per cycle, {args.cycles} cycles per run (after 5 to warm up)")
    runs = []
    for run in range(1, args.runs + 1):
        result = one_run(args.events, args.cycles)
        runs.append(result)
        cells = ", ".join(f"{label} {fmt.format(result[key])}" for key, label, fmt in _COLUMNS)
        print(f"run {run}: per cycle: {cells}", flush=True)
    print()
    print("per cycle, median of runs (min-max):")
    for key, label, fmt in _COLUMNS:
        values = [r[key] for r in runs]
        print(
            f"  {label:16} {fmt.format(median(values)):>8}"
            f"  ({fmt.format(min(values))}-{fmt.format(max(values))})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
