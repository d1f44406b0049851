"""Does a claim stay cheap through a long drain on PostgreSQL? From the start vs from a cursor.

Every delivered row leaves a dead entry in the partial index of pending rows
(``ix_relay_outbox_pending_due``) until VACUUM removes it. A claim that reads the index from its
oldest entry walks all of them; a claim that starts at the previous claim's ``last_due``
(``due_from``, what :class:`relay._delivery.drain.ClaimCursor` passes) does not. This script drains
``--events`` pending rows in this process with the store's own claim and ack (2,000 rows per
claim, no HTTP, autovacuum off for the table so that every run meets the same dead entries) in
two modes, alternated run by run on freshly loaded scratch databases:

* ``from start``: every claim reads the index from its oldest entry (the code before the cursor);
* ``cursor``: every claim starts at the previous claim's ``last_due``.

Reported per mode: the median claim time over the first and the last tenth of the drain, the
index pages a claim reads there (``pg_stat_get_xact_blocks_fetched``), and events/s of the
claim + ack loop.

    .venv/bin/python bench/claim_scan.py [--events 1000000] [--runs 2] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import sqlalchemy as sa
from _db import DEFAULT_ADMIN_URL, scratch_postgres, settle
from _loaders import load_rows, new_tag
from _stats import median, print_header, print_table

from relay import _store as store
from relay._database import create_engine

BATCH = 2000
MODES = ("from start", "cursor")
_PAGES = sa.text("SELECT pg_stat_get_xact_blocks_fetched('ix_relay_outbox_pending_due'::regclass)")


def drain(url: str, *, events: int, cursor: bool) -> dict[str, float]:
    """Load ``events`` pending rows and claim + ack them all; this run's figures."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE relay_outbox SET (autovacuum_enabled = false)"))
        load_rows(engine, count=events, tag=new_tag())
        settle(engine)
        claims: list[tuple[float, int]] = []
        due_from: dt.datetime | None = None
        started = time.perf_counter()
        while True:
            now = dt.datetime.now(dt.UTC)
            t0 = time.perf_counter()
            with store.transaction(engine, write=True, durable=False) as conn:
                before = conn.execute(_PAGES).scalar_one()
                claim = store.claim(conn, now=now, limit=BATCH, lease_seconds=60, due_from=due_from)
                pages = conn.execute(_PAGES).scalar_one() - before
            claim_seconds = time.perf_counter() - t0
            if not claim.events:
                break
            claims.append((claim_seconds, pages))
            if cursor:
                due_from = claim.last_due
            with store.transaction(engine, write=True, durable=False) as conn:
                store.mark_claim_delivered(conn, claim=claim, now=now)
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    tenth = max(1, len(claims) // 10)
    first, last = claims[:tenth], claims[-tenth:]
    return {
        "events_per_second": events / seconds,
        "first_ms": median([c[0] for c in first]) * 1e3,
        "last_ms": median([c[0] for c in last]) * 1e3,
        "first_pages": median([c[1] for c in first]),
        "last_pages": median([c[1] for c in last]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="200,000 events, 1 run")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args()
    if args.quick:
        args.events, args.runs = 200_000, 1

    print_header()
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for run in range(1, args.runs + 1):
        for mode in MODES:
            with scratch_postgres(args.admin_url) as url:
                figures = drain(url, events=args.events, cursor=mode == "cursor")
            results[mode].append(figures)
            print(
                f"run {run} {mode:<10} {figures['events_per_second']:8,.0f} events/s  claim "
                f"{figures['first_ms']:6.1f} ms -> {figures['last_ms']:6.1f} ms  index pages "
                f"{figures['first_pages']:,.0f} -> {figures['last_pages']:,.0f}",
                flush=True,
            )
    print()
    print_table(
        [
            f"median of {args.runs} x {args.events:,}",
            "events/s",
            "claim ms, first tenth",
            "claim ms, last tenth",
            "index pages, first tenth",
            "index pages, last tenth",
        ],
        [
            [
                mode,
                f"{median([r['events_per_second'] for r in results[mode]]):,.0f}",
                f"{median([r['first_ms'] for r in results[mode]]):.1f}",
                f"{median([r['last_ms'] for r in results[mode]]):.1f}",
                f"{median([r['first_pages'] for r in results[mode]]):,.0f}",
                f"{median([r['last_pages'] for r in results[mode]]):,.0f}",
            ]
            for mode in MODES
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
