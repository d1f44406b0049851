"""Tracking many events in one PostgreSQL transaction: track() loop, track_many(), atrack().

The issue-11 targets, each as a ratio against a baseline measured in the same invocation,
the kinds alternated batch by batch so that all see the same machine:

* ``track loop``: one transaction, ``--events`` ``track()`` calls, commit; against ``plain
  loop``: the same transaction with one plain SQLAlchemy Core INSERT per event of an equally
  sized JSON row (into a JSONB column). Target: at most 1.5x per event.
* ``track_many``: one ``track_many()`` call with all the events in one transaction. Targets:
  at least 20,000 events/s, and at least 3x the ``track`` loop per event.
* ``atrack loop``: ``await atrack()`` per event on an ``AsyncSession`` (psycopg's async
  driver), against ``plain async loop``: one ``await session.execute(insert)`` per event.
  Target: at most 1.5x per event.

Validation is included everywhere it happens (``track()`` validates each event; the plain
loops insert already dumped properties). A scratch database migrated with relay's own
migrations, engines from ``relay.create_engine`` (orjson serializer); the outbox is truncated
between batches so that every batch starts from the same table.

    .venv/bin/python bench/track_many.py [--events 1000] [--batches 15] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import time
from typing import Any

import _survey_event  # noqa: F401 - registers the benchmarked event
import sqlalchemy as sa
from _db import DEFAULT_ADMIN_URL, scratch_postgres
from _loaders import survey_properties as properties
from _stats import median, print_header, print_table
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session

from relay import atrack, create_engine, track, track_many
from relay._tracking import prepare_event

EVENT = "svc.surveys.survey_delivered"
TARGETS = {"loop": 1.5, "many_per_s": 20_000, "many_vs_loop": 3.0, "async": 1.5}

bench_metadata = sa.MetaData()
json_rows = sa.Table(
    "bench_json_rows",
    bench_metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
    sa.Column("payload", sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


def distinct_id(n: int) -> str:
    return f"5d1c7a3e-0000-4000-8000-{n % 5000:012d}"


def payloads(events: int) -> list[dict[str, Any]]:
    """Rows the size of what track() stores: dumped properties plus the row's own keys."""
    out = []
    for n in range(events):
        p = prepare_event(event=EVENT, distinct_id=distinct_id(n), properties=properties(n))
        out.append({**p.properties, "$insert_id": p.insert_id, "time": p.time_ms})
    return out


def track_loop(engine: sa.Engine, events: int) -> float:
    started = time.perf_counter()
    with Session(engine) as session, session.begin():
        for n in range(events):
            track(
                session,
                event=EVENT,
                distinct_id=distinct_id(n),
                properties=properties(n),
                strict=True,
            )
    return time.perf_counter() - started


def plain_loop(engine: sa.Engine, rows: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    with Session(engine) as session, session.begin():
        now = dt.datetime.now(dt.UTC)
        for row in rows:
            session.execute(sa.insert(json_rows), {"payload": row, "created_at": now})
    return time.perf_counter() - started


def many(engine: sa.Engine, events: int) -> float:
    started = time.perf_counter()
    items = [
        {"event": EVENT, "distinct_id": distinct_id(n), "properties": properties(n)}
        for n in range(events)
    ]
    with Session(engine) as session, session.begin():
        ids = track_many(session, items, strict=True)
    elapsed = time.perf_counter() - started
    assert all(ids)
    return elapsed


async def atrack_loop(engine: Any, events: int) -> float:
    started = time.perf_counter()
    async with AsyncSession(engine) as session, session.begin():
        for n in range(events):
            await atrack(
                session,
                event=EVENT,
                distinct_id=distinct_id(n),
                properties=properties(n),
                strict=True,
            )
    return time.perf_counter() - started


async def plain_async_loop(engine: Any, rows: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    async with AsyncSession(engine) as session, session.begin():
        now = dt.datetime.now(dt.UTC)
        for row in rows:
            await session.execute(sa.insert(json_rows), {"payload": row, "created_at": now})
    return time.perf_counter() - started


def truncate(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE relay_outbox, bench_json_rows")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="events per transaction")
    parser.add_argument("--batches", type=int, default=15, help="transactions of each kind")
    parser.add_argument("--quick", action="store_true", help="3 batches")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args()
    if args.quick:
        args.batches = 3
    print_header()
    rows = payloads(args.events)
    times: dict[str, list[float]] = {
        k: [] for k in ("track", "plain", "many", "atrack", "plain_async")
    }
    with scratch_postgres(args.admin_url) as url:
        engine = create_engine(url)
        aengine = create_async_engine(
            sa.make_url(url), json_serializer=engine.dialect._json_serializer
        )
        loop = asyncio.new_event_loop()
        try:
            bench_metadata.create_all(engine)
            kinds = [
                ("track", lambda: track_loop(engine, args.events)),
                ("plain", lambda: plain_loop(engine, rows)),
                ("many", lambda: many(engine, args.events)),
                ("atrack", lambda: loop.run_until_complete(atrack_loop(aengine, args.events))),
                (
                    "plain_async",
                    lambda: loop.run_until_complete(plain_async_loop(aengine, rows)),
                ),
            ]
            for _, run in kinds:  # warm-up: connections, statement caches, the registry
                run()
                truncate(engine)
            for batch in range(args.batches):
                shift = batch % len(kinds)
                for kind, run in kinds[shift:] + kinds[:shift]:
                    times[kind].append(run())
                    truncate(engine)
        finally:
            loop.run_until_complete(aengine.dispose())
            loop.close()
            engine.dispose()
    per_event = {k: median(v) / args.events * 1e3 for k, v in times.items()}  # ms per event
    many_per_s = args.events / median(times["many"])
    ratios = {
        "loop": per_event["track"] / per_event["plain"],
        "many_vs_loop": per_event["track"] / per_event["many"],
        "async": per_event["atrack"] / per_event["plain_async"],
    }
    print()
    print_table(
        [f"median of {args.batches} x {args.events} events", "ms per event", "events/s"],
        [
            [label, f"{per_event[k]:.4f}", f"{1e3 / per_event[k]:,.0f}"]
            for label, k in [
                ("track() loop, one transaction", "track"),
                ("plain Core insert loop", "plain"),
                ("track_many(), one call", "many"),
                ("atrack() loop (psycopg async)", "atrack"),
                ("plain async insert loop", "plain_async"),
            ]
        ],
    )
    checks = [
        (
            "track() loop / plain loop",
            ratios["loop"],
            f"<= {TARGETS['loop']}",
            ratios["loop"] <= TARGETS["loop"],
        ),
        (
            "track_many events/s",
            many_per_s,
            f">= {TARGETS['many_per_s']:,}",
            many_per_s >= TARGETS["many_per_s"],
        ),
        (
            "track_many vs track() loop",
            ratios["many_vs_loop"],
            f">= {TARGETS['many_vs_loop']}",
            ratios["many_vs_loop"] >= TARGETS["many_vs_loop"],
        ),
        (
            "atrack() loop / plain async loop",
            ratios["async"],
            f"<= {TARGETS['async']}",
            ratios["async"] <= TARGETS["async"],
        ),
    ]
    print()
    print_table(
        ["target", "measured", "wanted", ""],
        [
            [name, f"{value:,.2f}", want, "met" if ok else "missed"]
            for name, value, want, ok in checks
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
