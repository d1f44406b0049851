"""How long ``relay.admin.stats`` takes with 1,000,000 delivered rows present, and its plans.

Creates a scratch PostgreSQL database, bulk-loads it with ``INSERT ... SELECT
generate_series`` (delivered rows spread over the last seven days, the default retention
window, plus pending rows, some leased, and a few dead letters), runs ``VACUUM ANALYZE``, then
times ``relay.admin.stats`` (median of ``--runs`` after one warm-up) and prints ``EXPLAIN
(ANALYZE, BUFFERS)`` of every statement it ran, as PostgreSQL plans them on its own. For
contrast it also times the full-table ``count(*)`` that stats avoids. Exits 1 if any stats
statement scans ``relay_outbox`` sequentially. The scratch database is dropped at the end.

    .venv/bin/python bench/stats_scale.py [--delivered 1000000] [--pending 1000] [--runs 15]
        [--admin-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from _db import DEFAULT_ADMIN_URL, PREFIX
from sqlalchemy import event
from sqlalchemy.engine import Engine

from relay import admin
from relay._database import create_engine
from relay._tables import metadata
from relay.testing.scratch import scratch_database

EVENTS = (
    "svc.surveys.survey_delivered",
    "svc.surveys.survey_answered",
    "svc.auth.user.logged_in",
    "svc.risk.assessment.completed",
    "svc.map.view.opened",
)
DEAD_REASONS = (
    "properties.plan: bad plan",
    "HTTP 400: 'time' is more than 1 hour in the future",
    "max attempts (30) reached: HTTP 503",
)
WEEK = 7 * 24 * 3600  # seconds


_COLUMNS = """
    INSERT INTO relay_outbox (insert_id, event, distinct_id, time_ms, properties, state,
        attempts, next_attempt_at, lease_token, last_error, created_at, updated_at, finished_at)
    SELECT 'b' || g, (CAST(:events AS text[]))[1 + g % cardinality(CAST(:events AS text[]))],
        'user-' || (g % 5000), (extract(epoch from :now) * 1000)::bigint - g,
        jsonb_build_object('organization_id', 'org-' || (g % 40), 'is_cron_job', false,
                           'survey_id', 'survey-' || (g % 300)),
"""
#: Delivered rows finished over the last week (the default retention window).
_DELIVERED = (
    _COLUMNS
    + """
        'delivered', 1, :now - (g % :week) * interval '1 second', NULL, NULL,
        :now - (g % :week + 2) * interval '1 second', :now - (g % :week) * interval '1 second',
        :now - (g % :week) * interval '1 second'
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g
"""
)
#: Pending rows, one in ten leased by a relay right now.
_PENDING = (
    _COLUMNS
    + """
        'pending', g % 3,
        CASE WHEN g % 10 = 0 THEN :now + interval '30 seconds'
             ELSE :now - (g % 3600) * interval '1 second' END,
        CASE WHEN g % 10 = 0 THEN md5(g::text) END, NULL,
        :now - (g % 3600) * interval '1 second', :now, NULL
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g
"""
)
#: Dead letters of a few reasons, died over the last day.
_DEAD = (
    _COLUMNS
    + """
        'dead', 3, :now, NULL,
        (CAST(:reasons AS text[]))[1 + g % cardinality(CAST(:reasons AS text[]))],
        :now - interval '1 day', :now, :now - (g % 86400) * interval '1 second'
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g
"""
)


def load(engine: Engine, *, delivered: int, pending: int, dead: int, now: dt.datetime) -> None:
    """Bulk-load the outbox in three INSERT ... SELECT statements, then VACUUM ANALYZE."""
    common = {"now": now, "events": list(EVENTS), "reasons": list(DEAD_REASONS), "week": WEEK}
    first = 1
    with engine.begin() as conn:
        for sql, n in ((_DELIVERED, delivered), (_PENDING, pending), (_DEAD, dead)):
            conn.execute(sa.text(sql), {**common, "first": first, "last": first + n - 1})
            first += n
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE relay_outbox")


@contextmanager
def recorded_selects(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every SELECT the engine sends while the block runs, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def seq_scans(plan: dict[str, Any]) -> list[str]:
    """Relations a plan scans sequentially."""
    found = [plan.get("Relation Name", "?")] if plan.get("Node Type") == "Seq Scan" else []
    for child in plan.get("Plans", []):
        found.extend(seq_scans(child))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delivered", type=int, default=1_000_000)
    parser.add_argument("--pending", type=int, default=1_000)
    parser.add_argument("--dead", type=int, default=300)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args()

    now = dt.datetime.now(dt.UTC)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    with scratch_database(args.admin_url, prefix=PREFIX) as url:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                print(f"server: {conn.exec_driver_sql('SHOW server_version').scalar_one()}")
            metadata.create_all(engine)
            started = time.perf_counter()
            load(engine, delivered=args.delivered, pending=args.pending, dead=args.dead, now=now)
            print(
                f"loaded {args.delivered:,} delivered + {args.pending:,} pending + {args.dead:,} "
                f"dead rows in {time.perf_counter() - started:.1f} s (incl. VACUUM ANALYZE)"
            )

            admin.stats(engine, now=now)  # warm-up: connection, plan and buffer caches
            timings = []
            for _ in range(args.runs):
                started = time.perf_counter()
                result = admin.stats(engine, now=now)
                timings.append((time.perf_counter() - started) * 1000)
            median = statistics.median(timings)
            print(
                f"\nrelay.admin.stats over {args.runs} runs: median {median:.2f} ms, "
                f"min {min(timings):.2f} ms, max {max(timings):.2f} ms"
            )
            print(
                f"  pending {result.pending}, due {result.due}, in flight {result.inflight}, "
                f"dead {result.dead}, delivered last hour {result.delivered_last_hour:,}, "
                f"last day {result.delivered_last_day:,}"
            )

            with engine.connect() as conn:
                started = time.perf_counter()
                total = conn.exec_driver_sql("SELECT count(*) FROM relay_outbox").scalar_one()
                full = (time.perf_counter() - started) * 1000
            print(f"for contrast, a full count(*) of relay_outbox ({total:,} rows): {full:.1f} ms")

            with recorded_selects(engine) as statements:
                admin.stats(engine, now=now)
            bad = []
            with engine.connect() as conn:
                for statement, parameters in statements:
                    print("\n" + statement.strip())
                    plan = conn.exec_driver_sql(
                        f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}", parameters
                    ).scalar_one()[0]
                    if "relay_outbox" in seq_scans(plan["Plan"]):
                        bad.append(statement)
                    for (line,) in conn.exec_driver_sql(
                        f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters
                    ):
                        print("    " + line)
        finally:
            engine.dispose()
    if bad:
        print(
            f"\nFAIL: {len(bad)} stats statements scan relay_outbox sequentially", file=sys.stderr
        )
        return 1
    print("\nno stats statement scans relay_outbox sequentially")
    return 0


if __name__ == "__main__":
    sys.exit(main())
