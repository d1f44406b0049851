"""PostgreSQL's CPU per row for the relay's claim and its ack, measured alone (no HTTP, one thread).

Per run: a new database with this checkout's schema, ``--events`` pending rows (``VACUUM
ANALYZE`` and ``CHECKPOINT``, as ``drain_process.py`` loads them), then claims of 2,000 rows
(the drain's byte budget and size limit) each acked as delivered, one after the other on one
connection, until nothing is due. Printed: the backend's CPU microseconds per row for the claims
and for the acks (``psutil`` on the connection's server process), and the client's wall time per
row for each. What the database costs per event, without the drain's threads or the stand-in
around it: where a loopback drain's ceiling on two cores comes from.

``--variants`` measures, interleaved run by run: ``shipped`` (the default ack, rows updated to
``delivered``), ``delete`` (the ack of ``RELAY_DELIVERED_RETENTION_HOURS=0``, which deletes the
acked rows: ``mark_claim_delivered(keep=False)``), and experiments that are not relay's schema:

* ``json``: ``properties`` stored as ``json`` instead of ``jsonb``, altered after the load:
  PostgreSQL then stores and returns the text as it came, where ``jsonb`` renders it at each
  read and measure;
* ``history``: delivered rows moved out of the outbox by the ack, one statement
  (``DELETE ... RETURNING`` into an ``INSERT``), into a table with the least a delivered
  history needs: its primary key, a unique ``insert_id`` (``track()``'s duplicate check) and
  ``finished_at`` (retention);
* ``no-finished-index`` and ``no-unique``: the shipped ack without
  ``ix_relay_outbox_state_finished_at``, or without the unique ``insert_id``: what each index
  costs the ack's new row version (neither can be dropped).

    .venv/bin/python bench/claim_ack_cost.py [--events 100000] [--runs 3]
    .venv/bin/python bench/claim_ack_cost.py --variants shipped,json,delete,history
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
import uuid
from typing import Any

import psutil
import sqlalchemy as sa
from _db import ALTER_PROPERTIES, DEFAULT_ADMIN_URL
from _procs import REPO
from _stats import median, print_header
from drain_process import prepare

from relay import _store as store
from relay._database import create_engine

#: The drain's defaults: rows per claim, bytes per request, claims' byte budget in requests.
BATCH = 2000
REQUEST_BYTES = 10_000_000


#: ``--variants``: the two acks relay ships, and the experiments (module docstring).
VARIANTS = ("shipped", "json", "delete", "history", "no-finished-index", "no-unique")

#: What each experiment changes after the load (``{unique}``: the insert_id constraint's name).
_EXPERIMENT_DDL = {
    "json": [ALTER_PROPERTIES.format(type="json")],
    "history": [
        "CREATE TABLE relay_delivered (LIKE relay_outbox INCLUDING DEFAULTS)",
        "ALTER TABLE relay_delivered ADD PRIMARY KEY (id)",
        "CREATE UNIQUE INDEX ON relay_delivered (insert_id)",
        "CREATE INDEX ON relay_delivered (finished_at)",
    ],
    "no-finished-index": ["DROP INDEX ix_relay_outbox_state_finished_at"],
    "no-unique": ["ALTER TABLE relay_outbox DROP CONSTRAINT {unique}"],
}

#: The ``history`` ack: the claim's rows by range and token (as the shipped range ack finds
#: them), moved in one statement; ``{columns}``: the outbox's columns in table order.
_MOVE_TO_HISTORY = (
    "WITH moved AS (DELETE FROM relay_outbox WHERE id BETWEEN :first_id AND :last_id"
    " AND lease_token = :token AND state = 'pending' RETURNING *)"
    " INSERT INTO relay_delivered SELECT {columns} FROM moved"
)
_DELIVERED_COLUMNS = {
    "state": "'delivered'",
    "lease_token": "NULL",
    "lease_expires_at": "NULL",
    "updated_at": ":now",
    "finished_at": ":now",
}


def _experiment(url: str, variant: str) -> sa.TextClause | None:
    """Apply ``variant``'s schema change to the loaded database; the ``history`` ack."""
    altering = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with altering.connect() as conn:
            unique = conn.exec_driver_sql(
                "SELECT conname FROM pg_constraint"
                " WHERE conrelid = 'relay_outbox'::regclass AND contype = 'u'"
            ).scalar_one()
            columns = conn.exec_driver_sql(
                "SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute"
                " WHERE attrelid = 'relay_outbox'::regclass AND attnum > 0"
                " AND NOT attisdropped"
            ).scalar_one()
            for statement in _EXPERIMENT_DDL.get(variant, []):
                conn.exec_driver_sql(statement.format(unique=unique))
            conn.exec_driver_sql("VACUUM ANALYZE")
            conn.exec_driver_sql("CHECKPOINT")
    finally:
        altering.dispose()
    if variant != "history":
        return None
    selected = ", ".join(_DELIVERED_COLUMNS.get(c, c) for c in columns)
    return sa.text(_MOVE_TO_HISTORY.format(columns=selected))


def one_run(admin: sa.Engine, events: int, variant: str = "shipped") -> dict[str, float]:
    """Claim and ack ``events`` rows in a fresh database; microseconds per row."""
    name = "relay_bench_cost_" + uuid.uuid4().hex[:8]
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
        prepare(REPO, url, events, {**env, "RELAY_DATABASE_URL": url})
        move = _experiment(url, variant) if variant in _EXPERIMENT_DDL else None
        engine = create_engine(url, pool_size=1, max_overflow=0)
        with engine.connect() as conn:
            backend = psutil.Process(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())

        def cpu() -> float:
            times = backend.cpu_times()
            return float(times.user + times.system)

        totals = {"claim_cpu": 0.0, "ack_cpu": 0.0, "claim_wall": 0.0, "ack_wall": 0.0}
        rows, due_from = 0, None
        while True:
            now = dt.datetime.now(dt.UTC)
            cpu0, wall0 = cpu(), time.perf_counter()
            with store.transaction(engine, write=True, durable=False) as conn:
                claim = store.claim(
                    conn,
                    now=now,
                    limit=BATCH,
                    lease_seconds=60.0,
                    due_from=due_from,
                    max_bytes=REQUEST_BYTES,
                    row_max_bytes=REQUEST_BYTES,
                )
            cpu1, wall1 = cpu(), time.perf_counter()
            if not claim.events:
                break
            due_from = claim.last_due
            with store.transaction(engine, write=True, durable=False) as conn:
                if move is not None:
                    ids = [event.id for event in claim.events]
                    bounds = {"first_id": min(ids), "last_id": max(ids)}
                    params = {**bounds, "token": claim.token, "now": now}
                    acked = conn.execute(move, params).rowcount
                else:
                    acked = store.mark_claim_delivered(
                        conn, claim=claim, now=now, keep=variant != "delete"
                    )
            if acked != len(claim.events):
                raise SystemExit(f"acked {acked} of {len(claim.events)} claimed rows")
            cpu2, wall2 = cpu(), time.perf_counter()
            totals["claim_cpu"] += cpu1 - cpu0
            totals["ack_cpu"] += cpu2 - cpu1
            totals["claim_wall"] += wall1 - wall0
            totals["ack_wall"] += wall2 - wall1
            rows += len(claim.events)
        engine.dispose()
        if rows != events:
            raise SystemExit(f"claimed {rows} of {events} rows")
        return {key: value / rows * 1e6 for key, value in totals.items()}
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--variants",
        default="shipped",
        help=f"comma-separated, interleaved run by run: {', '.join(VARIANTS)}",
    )
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or not variants:
        parser.error(f"--variants: unknown {', '.join(unknown) or '(none given)'}")
    print_header()
    admin = sa.create_engine(DEFAULT_ADMIN_URL, isolation_level="AUTOCOMMIT")
    results: dict[str, list[dict[str, Any]]] = {variant: [] for variant in variants}
    for run in range(1, args.runs + 1):
        for variant in variants:
            result = one_run(admin, args.events, variant)
            results[variant].append(result)
            print(
                f"run {run} {variant}: claim {result['claim_cpu']:.1f} us/row backend CPU "
                f"({result['claim_wall']:.1f} us wall), ack {result['ack_cpu']:.1f} us/row "
                f"({result['ack_wall']:.1f} us wall)",
                flush=True,
            )
    for variant, runs in results.items():
        print(f"\n{variant}")
        for key, label in (
            ("claim_cpu", "claim, backend CPU"),
            ("ack_cpu", "ack, backend CPU"),
            ("claim_wall", "claim, client wall"),
            ("ack_wall", "ack, client wall"),
        ):
            values = [r[key] for r in runs]
            print(
                f"{label:20} median {median(values):6.1f} us/row "
                f"({min(values):.1f}-{max(values):.1f})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
