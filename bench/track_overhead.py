"""What ``track()`` adds to a business transaction on PostgreSQL.

Two transactions, alternated one for one so that both see the same machine:

* ``track``: insert one business row, call ``track()`` once (validation against the
  registered schema, then SAVEPOINT, INSERT into the outbox, ``pg_notify`` and RELEASE, sent
  as one query through psycopg), commit;
* ``plain``: insert the same business row plus a plain SQLAlchemy Core INSERT of an equally
  sized JSON row (the properties ``track()`` stores, into a JSONB column), commit.

Both run through a SQLAlchemy ``Session`` on an engine from ``relay.database.create_engine``
(orjson serializer), as a host application would, against a scratch database migrated with
relay's own migrations. The median per-transaction time of each, and their ratio, are printed
per run; the final table shows the medians over runs.

    .venv/bin/python bench/track_overhead.py [--transactions 2000] [--runs 3] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import uuid
from typing import Any

import sqlalchemy as sa
from _common import DEFAULT_ADMIN_URL, machine, median, print_table, scratch_postgres
from sqlalchemy.orm import Session

import relay.catalog  # noqa: F401 - registers the catalog's events
from relay.database import create_engine
from relay.tracking import prepare_event, track

TARGET_RATIO = 1.3
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


def properties(n: int) -> dict[str, Any]:
    """The survey-delivered properties of transaction ``n`` (what a catalog helper passes)."""
    return {
        "employee_id": f"5d1c7a3e-0000-4000-8000-{n % 5000:012d}",
        "organization_id": "8a0e8d1c-1111-4222-8333-944455556666",
        "organization_name": "Example Org",
        "role": "admin",
        "impersonation": False,
        "survey_id": f"0c6f4a8e-2222-4333-8444-{n % 300:012d}",
        "survey_run_id": f"1d7a5b9f-3333-4444-8555-{n % 900:012d}",
        "survey_type": "pulse",
        "channel": "email",
        "question_count": n % 40,
        "is_reminder": n % 7 == 0,
    }


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
            properties=properties(n),
            strict=True,
        )
    elapsed = time.perf_counter() - started
    assert inserted is not None
    return elapsed


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
        properties=properties(n),
    )
    return {
        **prepared.properties,
        "$insert_id": str(uuid.uuid4()),
        "event": EVENT,
        "distinct_id": prepared.distinct_id,
        "time": prepared.time_ms,
    }


def one_run(engine: sa.Engine, transactions: int) -> tuple[float, float, float]:
    """(median track ms, median plain ms, median validation-only ms) of one run."""
    tracked: list[float] = []
    plain: list[float] = []
    validation: list[float] = []
    for n in range(transactions):
        payload = stored_payload(n)
        if n % 2:  # alternate which goes first, so neither always follows the other
            tracked.append(with_track(engine, n))
            plain.append(with_plain_insert(engine, n, payload))
        else:
            plain.append(with_plain_insert(engine, n, payload))
            tracked.append(with_track(engine, n))
        started = time.perf_counter()
        prepare_event(
            event=EVENT,
            distinct_id=f"5d1c7a3e-0000-4000-8000-{n % 5000:012d}",
            properties=properties(n),
        )
        validation.append(time.perf_counter() - started)
    return median(tracked) * 1e3, median(plain) * 1e3, median(validation) * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=2000, help="of each kind, per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="300 transactions, 1 run")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args()
    if args.quick:
        args.transactions, args.runs = 300, 1

    print(f"machine: {machine()}")
    print(f"date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"command: {' '.join(sys.argv)}")
    results = []
    with scratch_postgres(args.admin_url) as url:
        engine = create_engine(url)
        try:
            bench_metadata.create_all(engine)
            one_run(engine, 100)  # warm-up: connections, statement caches, the registry
            for run in range(1, args.runs + 1):
                tracked, plain, validation = one_run(engine, args.transactions)
                results.append((tracked, plain, validation))
                print(
                    f"run {run}: track {tracked:.3f} ms, plain {plain:.3f} ms, "
                    f"ratio {tracked / plain:.2f} (validation alone {validation:.3f} ms)",
                    flush=True,
                )
        finally:
            engine.dispose()
    tracked = median([r[0] for r in results])
    plain = median([r[1] for r in results])
    validation = median([r[2] for r in results])
    print()
    print_table(
        [f"median of {args.runs} runs x {args.transactions}", "ms per transaction"],
        [
            ["business row + track()", f"{tracked:.3f}"],
            ["business row + plain JSON insert", f"{plain:.3f}"],
            ["(track's validation alone, no I/O)", f"{validation:.3f}"],
            ["ratio track / plain", f"{tracked / plain:.2f}"],
        ],
    )
    ratio = tracked / plain
    print(
        f"\ntarget ratio <= {TARGET_RATIO}: {ratio:.2f} "
        f"({'met' if ratio <= TARGET_RATIO else 'missed'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
