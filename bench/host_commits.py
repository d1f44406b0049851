"""How many business transactions per second the host commits with relay's write, on PostgreSQL.

Issue 20: a ``NOTIFY`` in a transaction makes its commit wait for PostgreSQL's global notify
lock, held by every notifying commit until its WAL is flushed, so notifying commits queue one
behind another. relay now writes the outbox row alone and its relays look for new rows
themselves (``relay._daemon.watcher``). Two harnesses, each alternating its variants run by
run in one invocation (the baseline is always measured beside what it is compared with):

* ``pgbench`` (``-M extended``, the protocol relay's insert uses) with relay's own SQL: a
  business INSERT and the outbox INSERT ... ON CONFLICT DO NOTHING, committed, from 8 and 32
  clients. Variants: ``baseline`` (the outbox row written, no wake-up of any kind), ``relay``
  (the same transaction, with relay's wake-up running beside it: a watcher thread probing
  the newest row id every ``RELAY_WAKE_PROBE_SECONDS``), ``notify`` (the transaction plus
  ``pg_notify``, what ``track()`` sent until issue 20).
* Python host processes (``multiprocessing``, one connection each, 8 and 32 of them), each
  committing a ``Session`` with a business row and one event. Variants: ``track`` (``track()``,
  watcher running), ``by-hand`` (the event validated the same way, ``prepare_event``, then its
  outbox row written by hand with a Core INSERT: no wake-up), ``by-hand+notify`` (plus
  ``pg_notify``).

Target: ``relay`` and ``track`` at >= 90 % of their baseline. The outbox is emptied and the
server checkpointed before every run.

    .venv/bin/python bench/host_commits.py [--seconds 10] [--runs 3] [--clients 8,32] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing
import re
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _survey_event  # noqa: F401 - registers the benchmarked event
import sqlalchemy as sa
from _db import DEFAULT_ADMIN_URL, scratch_postgres, settle, truncate
from _loaders import survey_properties
from _stats import median, print_header, print_table
from sqlalchemy.orm import Session

from relay._config import WAKE_PROBE_SECONDS
from relay._daemon.watcher import OutboxWatcher
from relay._database import create_engine
from relay._tables import outbox
from relay._tracking import prepare_event, track

TARGET_SHARE = 0.90
EVENT = "svc.surveys.survey_delivered"
BUSINESS_DDL = (
    "CREATE TABLE IF NOT EXISTS bench_orders (id bigserial PRIMARY KEY, "
    "customer_id text NOT NULL, amount_cents integer NOT NULL, created_at timestamptz NOT NULL)"
)


# --- pgbench ---------------------------------------------------------------------------------


def pgbench_script(*, notify: bool) -> str:
    """One transaction as relay writes it (plus ``pg_notify`` for the old way)."""
    prepared = prepare_event(
        event=EVENT,
        distinct_id="5d1c7a3e-0000-4000-8000-000000000001",
        properties=survey_properties(1),
    )
    # ": " (with a space): pgbench would take ":name" inside the JSON for one of its variables.
    properties = json.dumps(prepared.properties).replace("'", "''")
    lines = [
        r"\set n random(1, 1000000)",
        "BEGIN;",
        "INSERT INTO bench_orders (customer_id, amount_cents, created_at) "
        "VALUES ('customer-' || :n, 100 + :n % 5000, now());",
        "INSERT INTO relay_outbox (insert_id, event, distinct_id, time_ms, properties, state, "  # noqa: S608 - a bench script of constants
        "attempts, next_attempt_at, created_at, updated_at) VALUES (gen_random_uuid()::text, "
        f"'{EVENT}', 'user-' || :n, {prepared.time_ms}, CAST('{properties}' AS jsonb), "
        "'pending', 0, now(), now(), now()) ON CONFLICT (insert_id) DO NOTHING;",
    ]
    if notify:
        lines.append("SELECT pg_notify('relay_outbox', '');")
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def watching(url: str, interval: float) -> Iterator[None]:
    """relay's wake-up, as ``relay run`` runs it, beside the load (its wake-ups go nowhere)."""
    engine = create_engine(url, pool_size=1)
    stop = threading.Event()
    watcher = OutboxWatcher(engine, interval=interval, wake=lambda: None, stop=stop)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
        engine.dispose()


def run_pgbench(url: str, script: Path, clients: int, seconds: float) -> float:
    """Transactions per second pgbench reports (without the initial connection time)."""
    u = sa.make_url(url)
    done = subprocess.run(
        [
            "pgbench",
            "-n",
            "-M",
            "extended",
            "-h",
            u.host or "127.0.0.1",
            "-p",
            str(u.port or 5432),
            "-U",
            u.username or "postgres",
            "-c",
            str(clients),
            "-j",
            "2",
            "-T",
            str(int(seconds)),
            "-f",
            str(script),
            u.database or "postgres",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", done.stdout)
    if found is None:
        raise SystemExit(f"pgbench printed no tps:\n{done.stdout}\n{done.stderr}")
    return float(found.group(1))


# --- Python host processes ----------------------------------------------------------------------


def _host_process(
    url: str, variant: str, window: tuple[float, float], results: Any, index: int
) -> None:
    """One host process: commit business transactions with one event each in ``window``."""
    start, stop = window
    engine = create_engine(url, pool_size=1)
    count = 0
    n = index * 1_000_000
    while time.time() < start:
        time.sleep(0.001)
    while time.time() < stop:
        n += 1
        with Session(engine) as session, session.begin():
            session.execute(
                sa.text(
                    "INSERT INTO bench_orders (customer_id, amount_cents, created_at) "
                    "VALUES (:c, :a, now())"
                ),
                {"c": f"customer-{n % 1000}", "a": 100 + n % 5000},
            )
            distinct_id = f"5d1c7a3e-0000-4000-8000-{n % 5000:012d}"
            if variant == "track":
                assert track(
                    session, event=EVENT, distinct_id=distinct_id, properties=survey_properties(n)
                )
            else:
                prepared = prepare_event(
                    event=EVENT, distinct_id=distinct_id, properties=survey_properties(n)
                )
                now = dt.datetime.now(dt.UTC)
                session.execute(
                    sa.insert(outbox),
                    {
                        "insert_id": str(uuid.uuid4()),
                        "event": prepared.event,
                        "distinct_id": prepared.distinct_id,
                        "time_ms": prepared.time_ms,
                        "properties": prepared.properties,
                        "state": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
                if variant == "by-hand+notify":
                    session.execute(sa.select(sa.func.pg_notify("relay_outbox", "")))
        count += 1
    engine.dispose()
    results[index] = count


def run_hosts(url: str, variant: str, processes: int, seconds: float) -> float:
    """Commits per second of ``processes`` host processes running together for ``seconds``."""
    ctx = multiprocessing.get_context("fork")
    results = ctx.Array("q", processes)
    start = time.time() + 1.0 + processes * 0.05  # every process connected first
    stop = start + seconds
    procs = [
        ctx.Process(target=_host_process, args=(url, variant, (start, stop), results, k))
        for k in range(processes)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"a host process failed (exit {p.exitcode})")
    return sum(results) / seconds


# --- main ----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", default="8,32", help="concurrent connections, comma-separated")
    parser.add_argument("--probe-seconds", type=float, default=WAKE_PROBE_SECONDS)
    parser.add_argument("--harness", choices=("both", "pgbench", "python"), default="both")
    parser.add_argument("--quick", action="store_true", help="5 s runs, 1 run")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.runs = 5.0, 1
    clients = [int(c) for c in args.clients.split(",")]

    print_header()
    print(f"{args.seconds:.0f} s per run, {args.runs} runs, watcher every {args.probe_seconds} s")
    harnesses = {
        "pgbench": ("baseline", "relay", "notify"),
        "python": ("by-hand", "track", "by-hand+notify"),
    }
    if args.harness != "both":
        harnesses = {args.harness: harnesses[args.harness]}
    results: dict[tuple[str, int, str], list[float]] = {}
    with scratch_postgres(args.admin_url) as url, tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql(BUSINESS_DDL)
        scripts = {}
        for name, notify in (("plain", False), ("notify", True)):
            scripts[name] = Path(tmp) / f"{name}.sql"
            scripts[name].write_text(pgbench_script(notify=notify))
        for run in range(1, args.runs + 1):
            for harness, variants in harnesses.items():
                for c in clients:
                    shift = run % len(variants)
                    for variant in variants[shift:] + variants[:shift]:
                        truncate(engine)
                        with engine.begin() as conn:
                            conn.exec_driver_sql("TRUNCATE bench_orders")
                        settle(engine)
                        watch = variant in ("relay", "track")
                        with (
                            watching(url, args.probe_seconds) if watch else contextlib.nullcontext()
                        ):
                            if harness == "pgbench":
                                script = scripts["notify" if variant == "notify" else "plain"]
                                rate = run_pgbench(url, script, c, args.seconds)
                            else:
                                rate = run_hosts(url, variant, c, args.seconds)
                        results.setdefault((harness, c, variant), []).append(rate)
                        print(
                            f"run {run} {harness:<7} {c:>2} connections {variant:<15} "
                            f"{rate:8,.0f} commits/s",
                            flush=True,
                        )
        engine.dispose()
    print()
    rows = []
    verdicts = []
    for harness, variants in harnesses.items():
        for c in clients:
            base = median(results[(harness, c, variants[0])])
            for variant in variants:
                m = median(results[(harness, c, variant)])
                low, high = min(results[(harness, c, variant)]), max(results[(harness, c, variant)])
                rows.append(
                    [
                        f"{harness} {c} conn. {variant}",
                        f"{m:,.0f}",
                        f"{low:,.0f}-{high:,.0f}",
                        f"{m / base:.0%}",
                    ]
                )
            share = median(results[(harness, c, variants[1])]) / base
            verdicts.append(f"{harness} {c}: {share:.0%}")
    print_table([f"median of {args.runs}", "commits/s", "min-max", "/ baseline"], rows)
    print(f"\ntarget >= {TARGET_SHARE:.0%} of the baseline: " + "; ".join(verdicts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
