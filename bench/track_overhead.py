"""What ``track()`` adds to a business transaction on PostgreSQL.

Two transactions, alternated one for one so that both see the same machine:

* ``track``: insert one business row, call ``track()`` once (validation against the
  registered schema, then INSERT ... ON CONFLICT DO NOTHING into the outbox, sent in one round
  trip on the psycopg connection; no SAVEPOINT, no NOTIFY), commit;
* ``plain``: insert the same business row plus a plain SQLAlchemy Core INSERT of an equally
  sized JSON row (the properties ``track()`` stores, into a JSONB column), commit;
* ``portable`` (for contrast): ``track`` with the one-round-trip write switched off, so that
  ``track()`` takes the path of other drivers (asyncpg, psycopg2): INSERT ... RETURNING through
  SQLAlchemy;
* ``routed``: ``track`` with a trivial router registered (``relay.set_router``: every event to
  destination ``eu``), so the cost of routing at ``track()`` time shows against ``track``
  (which runs without a router, as every host without data residency does).

Both run through a SQLAlchemy ``Session`` on an engine from ``relay._database.create_engine``
(orjson serializer), as a host application would, against a scratch database migrated with
relay's own migrations. The median per-transaction time of each, and their ratio, are printed
per run; the final table shows the medians over runs.

    .venv/bin/python bench/track_overhead.py [--transactions 2000] [--runs 3] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import time
import uuid
from typing import Any

import _survey_event  # noqa: F401 - registers the benchmarked event
import sqlalchemy as sa
from _db import DEFAULT_ADMIN_URL, scratch_postgres
from _loaders import survey_properties
from _stats import median, print_header, print_table
from sqlalchemy.orm import Session

import relay._store.outbox
from relay._database import create_engine
from relay._tracking import prepare_event, track
from relay._tracking.routing import Route, set_router

TARGET_RATIO = 1.2  # issue 11: one event per transaction, at most 1.2x a plain insert
EVENT = "svc.surveys.survey_delivered"

bench_metadata = sa.MetaData()
orders = sa.Table(
    "bench_orders",
    bench_metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("amount_cents", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
json_rows = sa.Table(
    "bench_json_rows",
    bench_metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
    sa.Column("payload", sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


def business_row(session: Session, n: int) -> None:
    session.execute(
        sa.insert(orders),
        {
            "customer_id": f"customer-{n % 1000}",
            "amount_cents": 100 + n % 5000,
            "created_at": dt.datetime.now(dt.UTC),
        },
    )


def with_track(engine: sa.Engine, n: int) -> float:
    started = time.perf_counter()
    with Session(engine) as session, session.begin():
        business_row(session, n)
        inserted = track(
            session,
            event=EVENT,
            distinct_id=f"5d1c7a3e-0000-4000-8000-{n % 5000:012d}",
            properties=survey_properties(n),
            strict=True,
        )
    elapsed = time.perf_counter() - started
    assert inserted is not None
    return elapsed


def to_eu(route: Route) -> str:
    """The trivial router: every row to ``eu``."""
    return "eu"


def with_routed_track(engine: sa.Engine, n: int) -> float:
    """``with_track`` with the trivial router registered."""
    set_router(to_eu, destinations=("default", "eu"))
    try:
        return with_track(engine, n)
    finally:
        set_router(None, destinations=("default",))


def _not_applicable(*_: object, **__: object) -> None:
    return None


def with_portable_track(engine: sa.Engine, n: int) -> float:
    """``with_track`` on the portable path: the one-round-trip write reports "not applicable"."""
    one_query = relay._store.outbox.insert_in_one_round_trip
    relay._store.outbox.insert_in_one_round_trip = _not_applicable
    try:
        return with_track(engine, n)
    finally:
        relay._store.outbox.insert_in_one_round_trip = one_query


def with_plain_insert(engine: sa.Engine, n: int, stored: dict[str, Any]) -> float:
    started = time.perf_counter()
    with Session(engine) as session, session.begin():
        business_row(session, n)
        session.execute(
            sa.insert(json_rows), {"payload": stored, "created_at": dt.datetime.now(dt.UTC)}
        )
    return time.perf_counter() - started


def stored_payload(n: int) -> dict[str, Any]:
    """A JSON row the size of the outbox row ``track()`` writes: its properties plus its keys."""
    prepared = prepare_event(
        event=EVENT,
        distinct_id=f"5d1c7a3e-0000-4000-8000-{n % 5000:012d}",
        properties=survey_properties(n),
    )
    return {
        **prepared.properties,
        "$insert_id": str(uuid.uuid4()),
        "event": EVENT,
        "distinct_id": prepared.distinct_id,
        "time": prepared.time_ms,
    }


def validation_time(n: int, *, routed: bool) -> float:
    """Seconds ``prepare_event`` takes for event ``n`` (with the trivial router if ``routed``)."""
    if routed:
        set_router(to_eu, destinations=("default", "eu"))
    try:
        started = time.perf_counter()
        prepare_event(
            event=EVENT,
            distinct_id=f"5d1c7a3e-0000-4000-8000-{n % 5000:012d}",
            properties=survey_properties(n),
        )
        return time.perf_counter() - started
    finally:
        set_router(None, destinations=("default",))


def one_run(engine: sa.Engine, transactions: int) -> dict[str, float]:
    """Median ms of each kind of transaction, and of the validation alone, over one run."""
    times: dict[str, list[float]] = {
        "track": [],
        "routed": [],
        "portable": [],
        "plain": [],
        "validation": [],
        "validation_routed": [],
    }
    for n in range(transactions):
        payload = stored_payload(n)
        kinds = [
            ("track", functools.partial(with_track, engine, n)),
            ("routed", functools.partial(with_routed_track, engine, n)),
            ("portable", functools.partial(with_portable_track, engine, n)),
            ("plain", functools.partial(with_plain_insert, engine, n, payload)),
        ]
        # Rotate the order, so that no kind always follows another.
        shift = n % len(kinds)
        for kind, run in kinds[shift:] + kinds[:shift]:
            times[kind].append(run())
        # Validation alone, with and without the router, in alternating order (the second
        # call of a pair finds warmer caches).
        pair = [("validation", False), ("validation_routed", True)]
        for kind, routed in pair if n % 2 else pair[::-1]:
            times[kind].append(validation_time(n, routed=routed))
    return {kind: median(values) * 1e3 for kind, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=2000, help="of each kind, per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="300 transactions, 1 run")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args()
    if args.quick:
        args.transactions, args.runs = 300, 1

    print_header()
    results = []
    with scratch_postgres(args.admin_url) as url:
        engine = create_engine(url)
        try:
            bench_metadata.create_all(engine)
            one_run(engine, 100)  # warm-up: connections, statement caches, the registry
            for run in range(1, args.runs + 1):
                r = one_run(engine, args.transactions)
                results.append(r)
                print(
                    f"run {run}: track {r['track']:.3f} ms, routed {r['routed']:.3f} ms "
                    f"({r['routed'] / r['track']:.3f}x), portable {r['portable']:.3f} ms, "
                    f"plain {r['plain']:.3f} ms, ratio {r['track'] / r['plain']:.2f} "
                    f"(portable {r['portable'] / r['plain']:.2f}; validation alone "
                    f"{r['validation']:.3f} ms)",
                    flush=True,
                )
        finally:
            engine.dispose()
    m = {kind: median([r[kind] for r in results]) for kind in results[0]}
    print()
    print_table(
        [f"median of {args.runs} runs x {args.transactions}", "ms per transaction", "/ plain"],
        [
            ["business row + track()", f"{m['track']:.3f}", f"{m['track'] / m['plain']:.2f}"],
            [
                "business row + track(), trivial router",
                f"{m['routed']:.3f}",
                f"{m['routed'] / m['plain']:.2f}",
            ],
            [
                "business row + track(), portable path",
                f"{m['portable']:.3f}",
                f"{m['portable'] / m['plain']:.2f}",
            ],
            ["business row + plain JSON insert", f"{m['plain']:.3f}", "1.00"],
            ["(track's validation alone, no I/O)", f"{m['validation']:.3f}", ""],
            ["(the same, trivial router)", f"{m['validation_routed']:.3f}", ""],
        ],
    )
    ratio = m["track"] / m["plain"]
    print(
        f"\ntarget ratio <= {TARGET_RATIO}: {ratio:.2f} "
        f"({'met' if ratio <= TARGET_RATIO else 'missed'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
