"""Live latency during a large replay: the fair lane against the old single ordering.

Each run starts from a fresh PostgreSQL database holding ``--replayed`` pending rows, all due
now, as ``relay replay`` leaves them. The relay daemon (``relay run``'s code, in a process of its
own) starts draining them while producer threads in this process commit live events at
``--rate`` events/s (open loop, what ``track()`` writes: the row alone) for
``--seconds``. The stand-in (another process) reports when each ``$insert_id`` arrived; both
sides read CLOCK_MONOTONIC, so latency = arrival - return of commit, for live events only.

Two modes, same code, same invocation, alternating:

* ``fair``: the replayed rows are in the bulk lane (``lane = 1``), as ``relay replay`` now
  writes them; claims serve live rows first, with 1/8 of each claim kept for the replay.
* ``old``: the replayed rows are in the live lane (``lane = 0``), so the claim orders every row
  by ``(next_attempt_at, id)`` alone: exactly the ordering before the lanes existed. Live events
  then queue behind the whole replay.

A run ends when every live event and every replayed row has arrived; "replay drained" is the
time from the daemon's start until no row is pending.

    .venv/bin/python bench/replay_fairness.py [--replayed 200000] [--rate 100] [--seconds 20]
        [--runs 1] [--modes fair,old]
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from _db import DEFAULT_ADMIN_URL, scratch_postgres, settle
from _loaders import load_rows, new_tag
from _procs import start_worker
from _standin import STANDIN_PROJECT_ID, STANDIN_SECRET, STANDIN_USERNAME
from _stats import median, print_header, print_table
from latency import Producers, inserted_sender, latencies, percentile, start_standin, stop_standin

from relay._database import create_engine

#: How long a run may take, at most, to drain everything after the producers stopped.
DRAIN_TIMEOUT_SECONDS = 900.0


def _pending(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.exec_driver_sql(
                "SELECT count(*) FROM relay_outbox WHERE state = 'pending'"
            ).scalar_one()
        )


def run(mode: str, args: argparse.Namespace, log_dir: Path) -> dict[str, float]:
    """One run in ``mode`` on a fresh database; returns live latency figures in ms."""
    with scratch_postgres(args.admin_url) as url:
        engine = create_engine(url, pool_size=args.producers + 2)
        try:
            load_rows(engine, count=args.replayed, tag=new_tag())
            lane = 1 if mode == "fair" else 0
            with engine.begin() as conn:
                conn.execute(sa.text("UPDATE relay_outbox SET lane = :lane"), {"lane": lane})
            settle(engine)
            standin, standin_url = start_standin(log_dir)
            env = {
                "RELAY_DATABASE_URL": url,
                "RELAY_MIXPANEL_API_URL": standin_url,
                "RELAY_MIXPANEL_PROJECT_ID": STANDIN_PROJECT_ID,
                "RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME": STANDIN_USERNAME,
                "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET": STANDIN_SECRET,
                "RELAY_METRICS_PORT": "0",
                "RELAY_LOG_LEVEL": "WARNING",
            }
            daemon = start_worker("relay-daemon", env=env, log_dir=log_dir)
            try:
                k = args.events_per_transaction
                producers = Producers(
                    args.rate, args.seconds, inserted_sender(engine, k), args.producers, k
                )
                started = time.monotonic()
                daemon.go()
                producers.run()
                deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
                while _pending(engine) and time.monotonic() < deadline:
                    time.sleep(0.25)
                drained = time.monotonic() - started
                time.sleep(1.0)  # the last acks reach the stand-in's log
            finally:
                daemon.process.send_signal(signal.SIGTERM)
                daemon.wait(timeout=120)
                arrivals = stop_standin(standin)
        finally:
            engine.dispose()
    values, missing = latencies(producers.committed, arrivals)
    if missing:
        raise SystemExit(f"{mode}: {missing} live events never reached the stand-in")
    replayed = len(arrivals) - len(values)
    return {
        "live": len(values),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values),
        "replayed": replayed,
        "drained": drained,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replayed", type=int, default=200_000, help="rows replayed (1M: 1e6)")
    parser.add_argument("--rate", type=float, default=100.0, help="live events per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long live events flow")
    parser.add_argument("--runs", type=int, default=1, help="runs per mode")
    parser.add_argument("--modes", default="fair,old", help="comma-separated: fair, old")
    parser.add_argument("--producers", type=int, default=2, help="producer threads")
    parser.add_argument("--events-per-transaction", type=int, default=1)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in ("fair", "old") for m in modes):
        parser.error("--modes takes fair and/or old")

    print_header()
    print(
        f"{args.replayed:,} replayed rows due at once; live {args.rate:,.0f} events/s for "
        f"{args.seconds:.0f} s; {args.runs} run(s) per mode"
    )
    results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="relay_bench_") as tmp:
        for number in range(1, args.runs + 1):
            for mode in modes:
                figures = run(mode, args, Path(tmp))
                results[mode].append(figures)
                print(
                    f"run {number} {mode:<4}  live {figures['live']:.0f}  "
                    f"p50 {figures['p50']:8.1f} ms  p99 {figures['p99']:8.1f} ms  "
                    f"max {figures['max']:8.1f} ms  replay drained in {figures['drained']:.1f} s",
                    flush=True,
                )
    rows = []
    for mode in modes:
        r = results[mode]
        label = "fair lane (replay in bulk lane)" if mode == "fair" else "old ordering (one lane)"
        rows.append(
            [
                label,
                f"{median([x['p50'] for x in r]):,.1f}",
                f"{median([x['p99'] for x in r]):,.1f}",
                f"{median([x['max'] for x in r]):,.1f}",
                f"{median([x['drained'] for x in r]):,.1f}",
            ]
        )
    print()
    print_table(
        [f"median of {args.runs}", "live p50 ms", "live p99 ms", "live max ms", "drained s"],
        rows,
    )
    if set(modes) == {"fair", "old"}:
        fair = median([x["p99"] for x in results["fair"]])
        old = median([x["p99"] for x in results["old"]])
        print(f"\nlive p99, old / fair: {old / fair:,.1f}x")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
