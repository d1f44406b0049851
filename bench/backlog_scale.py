"""Does the drain slow down with millions of delivered rows kept for replay, and does the relay's
memory stay flat over a long drain? On PostgreSQL.

Part 1, drain rate: two scratch databases, one empty and one holding ``--delivered`` delivered
rows (finished over the last week, the default retention window, bulk-loaded with ``INSERT ...
SELECT generate_series``). Each run loads ``--pending`` pending rows into both (``VACUUM
ANALYZE`` and ``CHECKPOINT`` after) and drains them with one ``relay drain`` process; runs
alternate between the two databases. The rows a run delivers are deleted before the next.

Part 2, memory: one ``relay drain`` process drains ``--rss-events`` pending rows; its RSS is
sampled every 0.25 s. Reported: peak, and the median RSS of the second and of the last tenth of
the run (the first holds the start-up; flat: the two within 10 MB).

    .venv/bin/python bench/backlog_scale.py [--delivered 5000000] [--pending 100000]
        [--rss-events 1000000] [--runs 3] [--random-insert-ids] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from _db import DEFAULT_ADMIN_URL, retry_if_restarted, scratch_postgres, settle
from _loaders import load_rows, new_tag
from _procs import RssSampler, start_worker
from _standin import Standin, relay_env
from _stats import median, print_header, print_table

from relay._database import create_engine

TARGET_SHARE = 0.90
TARGET_RSS_MB = 200


def drain_pending(
    url: str,
    standin: Standin,
    *,
    pending: int,
    log_dir: Path,
    sample_every: float | None = None,
    ordered_ids: bool = True,
) -> tuple[float, list[tuple[float, int]], int]:
    """Load ``pending`` rows, drain them with one relay; (events/s, RSS samples, peak RSS)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            floor = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM relay_outbox")).scalar()
        load_rows(engine, count=pending, tag=new_tag(), ordered_ids=ordered_ids)
        settle(engine)
        standin.reset()
        worker = start_worker("relay-drain", env=relay_env(url, standin), log_dir=log_dir)
        sampler = RssSampler(worker.process.pid, interval=sample_every) if sample_every else None
        started = time.perf_counter()
        worker.go()
        result = worker.wait(timeout=1800)
        elapsed = time.perf_counter() - started
        if sampler is not None:
            sampler.stop()
        stats = standin.stats()
        with engine.connect() as conn:
            delivered = conn.execute(
                sa.text(
                    "SELECT count(*) FROM relay_outbox WHERE id > :floor AND state = 'delivered'"
                ),
                {"floor": floor},
            ).scalar_one()
        with engine.begin() as conn:  # the table goes back to its size for the next run
            conn.execute(sa.text("DELETE FROM relay_outbox WHERE id > :floor"), {"floor": floor})
    finally:
        engine.dispose()
    if stats["unique"] != pending or delivered != pending:
        raise SystemExit(f"lost or duplicated: stand-in {stats}, delivered {delivered}")
    samples = sampler.samples if sampler is not None else []
    return pending / elapsed, samples, int(result["maxrss_bytes"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delivered", type=int, default=5_000_000)
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--rss-events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--random-insert-ids",
        action="store_true",
        help="pending rows get uuid4-like $insert_ids instead of time-ordered ones like "
        "track()'s UUIDv7s",
    )
    parser.add_argument(
        "--quick", action="store_true", help="500k delivered, 20k pending, 100k for RSS, 1 run"
    )
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args()
    if args.quick:
        args.delivered, args.pending, args.rss_events, args.runs = 500_000, 20_000, 100_000, 1

    print_header()
    rates: dict[str, list[float]] = {"empty": [], "full": []}
    with contextlib.ExitStack() as stack:
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="relay_bench_")))
        standin = stack.enter_context(Standin())
        empty_url = stack.enter_context(scratch_postgres(args.admin_url))
        full_url = stack.enter_context(scratch_postgres(args.admin_url))
        engine = create_engine(full_url)
        started = time.perf_counter()
        now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        load_rows(
            engine,
            count=args.delivered,
            state="delivered",
            tag=new_tag(),
            base_ms=now_ms,
            ordered_ids=not args.random_insert_ids,
        )
        settle(engine)
        with engine.connect() as conn:
            size = conn.execute(
                sa.text("SELECT pg_size_pretty(pg_total_relation_size('relay_outbox'))")
            ).scalar_one()
        engine.dispose()
        print(
            f"loaded {args.delivered:,} delivered rows in {time.perf_counter() - started:.0f} s "
            f"(table with indexes: {size}); {args.pending:,} pending per run, "
            f"{'uuid4-like' if args.random_insert_ids else 'time-ordered'} $insert_ids"
        )
        for run in range(1, args.runs + 1):
            for name, url in (("empty", empty_url), ("full", full_url)):
                rate, _, _ = retry_if_restarted(
                    functools.partial(
                        drain_pending,
                        url,
                        standin,
                        pending=args.pending,
                        log_dir=log_dir,
                        ordered_ids=not args.random_insert_ids,
                    ),
                    server_url=args.admin_url,
                )
                rates[name].append(rate)
                print(f"run {run} {name:<5} {rate:9,.0f} events/s", flush=True)

        print(f"\nmemory: draining {args.rss_events:,} events with one relay")
        _, samples, maxrss = retry_if_restarted(
            functools.partial(
                drain_pending,
                empty_url,
                standin,
                pending=args.rss_events,
                log_dir=log_dir,
                sample_every=0.25,
            ),
            server_url=args.admin_url,
        )

    empty = median(rates["empty"])
    full = median(rates["full"])
    share = full / empty
    print()
    print_table(
        [f"median of {args.runs}", "events/s", "min-max"],
        [
            [
                "empty table",
                f"{empty:,.0f}",
                f"{min(rates['empty']):,.0f}-{max(rates['empty']):,.0f}",
            ],
            [
                f"{args.delivered:,} delivered rows",
                f"{full:,.0f}",
                f"{min(rates['full']):,.0f}-{max(rates['full']):,.0f}",
            ],
        ],
    )
    tenth = max(1, len(samples) // 10)
    # The second tenth: the first holds the start (imports done, first batches allocating).
    first = median([rss for _, rss in samples[tenth : 2 * tenth]]) / 2**20
    last = median([rss for _, rss in samples[-tenth:]]) / 2**20
    peak = maxrss / 2**20
    print(
        f"\nRSS while draining {args.rss_events:,}: peak {peak:.0f} MB (VmHWM), median of the "
        f"second tenth {first:.0f} MB, of the last tenth {last:.0f} MB "
        f"({len(samples)} samples over {samples[-1][0] if samples else 0:.0f} s)"
    )
    print(
        f"\ntargets: with delivered rows >= {TARGET_SHARE:.0%} of the empty-table rate: "
        f"{share:.0%} ({'met' if share >= TARGET_SHARE else 'missed'}); peak RSS <= "
        f"{TARGET_RSS_MB} MB and flat: {peak:.0f} MB, {last - first:+.0f} MB second to last "
        f"tenth ({'met' if peak <= TARGET_RSS_MB and abs(last - first) < 10 else 'missed'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
