"""A whole ``relay drain`` process (start-up included) draining a PostgreSQL backlog, per tree.

For issue 20's "loopback drain lost a third": the same measurement on several checkouts of relay
(``git worktree add /tmp/t <commit>``), interleaved run by run against one stand-in process (this
checkout's), so that a bisect compares trees on the same machine state. Per tree and run: a new
database with that tree's schema (``relay migrate``; for a tree whose migrations this
environment's Alembic cannot run, its tables are created and stamped at its newest revision),
``--events`` pending rows, ``VACUUM ANALYZE`` and ``CHECKPOINT``, then the tree's ``relay
drain`` timed from spawn to exit. Printed: events/s, and the CPU seconds of the relay process,
of the database backends (``_procs.PostgresCpu``) and of the stand-in; on a shared machine the
CPU seconds are the steadier figure. A tree's ``relay.migrations`` must resolve to its own
``migrations/`` (``ln -s ../migrations <tree>/relay/migrations`` in an old worktree, which
would otherwise import this checkout's through the editable install).

    .venv/bin/python bench/drain_process.py [--events 100000] [--runs 2] [TREE ...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from _db import DEFAULT_ADMIN_URL
from _loaders import _PG_LOAD
from _procs import PYTHON, REPO, PostgresCpu
from _standin import Standin
from _stats import median, print_header

_CLI = "import sys; from relay.cli import main; sys.exit(main())"
_CREATE = (
    "import sqlalchemy as sa, sys\n"
    "try:\n    from relay._tables import metadata\n"
    "except ImportError:\n    from relay.models import metadata\n"
    "metadata.create_all(sa.create_engine(sys.argv[1]))\n"
)


def _env(tree: Path, url: str, standin: Standin) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    return {
        **base,
        **standin.env(),
        "PYTHONPATH": str(tree),
        "RELAY_DATABASE_URL": url,
        "RELAY_METRICS_PORT": "0",
        "RELAY_LOG_LEVEL": "WARNING",
    }


def prepare(tree: Path, url: str, events: int, env: dict[str, str]) -> None:
    """``tree``'s schema in the database at ``url``, then ``events`` pending rows."""
    migrated = subprocess.run(
        [PYTHON, "-c", _CLI, "migrate"], env=env, cwd=tree, capture_output=True, check=False
    )
    if migrated.returncode != 0:
        names = [p.name for p in (tree / "migrations" / "versions").glob("0*.py")]
        head = max(m.group(1) for n in names if (m := re.match(r"(\d{4})_", n)))
        subprocess.run([PYTHON, "-c", _CREATE, url], env=env, cwd=tree, check=True)
        with sa.create_engine(url).begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE IF NOT EXISTS relay_alembic_version "
                "(version_num varchar(32) PRIMARY KEY)"
            )
            conn.exec_driver_sql("DELETE FROM relay_alembic_version")
            conn.execute(sa.text("INSERT INTO relay_alembic_version VALUES (:h)"), {"h": head})
    engine = sa.create_engine(url)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.text(_PG_LOAD),
            {
                "tag": "0badcafe",
                "base_ms": int(now.timestamp() * 1000),
                "state": "pending",
                "now": now,
                "first": 1,
                "last": events,
                "newest": events,
                "ordered": True,
            },
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE relay_outbox")
        conn.exec_driver_sql("CHECKPOINT")
    engine.dispose()


def one_run(tree: Path, admin: sa.Engine, standin: Standin, events: int) -> dict[str, float]:
    """Drain ``events`` rows with ``tree``'s relay; its figures."""
    name = "relay_bench_proc_" + uuid.uuid4().hex[:8]
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        env = _env(tree, url, standin)
        prepare(tree, url, events, env)
        standin.reset()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        standin_before = sum(standin.psutil.cpu_times()[:2])
        database = PostgresCpu(name).start()
        started = time.perf_counter()
        done = subprocess.run(
            [PYTHON, "-c", _CLI, "drain"], env=env, cwd=tree, capture_output=True, check=False
        )
        wall = time.perf_counter() - started
        database.stop()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            delivered = conn.exec_driver_sql(
                "SELECT count(*) FROM relay_outbox WHERE state = 'delivered'"
            ).scalar_one()
        engine.dispose()
        if done.returncode != 0 or delivered != events:
            raise SystemExit(f"{tree}: exit {done.returncode}, delivered {delivered}")
        return {
            "rate": events / wall,
            "wall": wall,
            "relay": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "database": database.by_kind().get("backend", 0.0),
            "standin": sum(standin.psutil.cpu_times()[:2]) - standin_before,
        }
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*", type=Path, default=[REPO])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args()
    print_header()
    admin = sa.create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    standin = Standin()
    results: dict[Path, list[dict[str, float]]] = {tree: [] for tree in args.trees}
    try:
        for run in range(1, args.runs + 1):
            for tree in args.trees:
                r = one_run(tree, admin, standin, args.events)
                results[tree].append(r)
                print(
                    f"run {run} {tree}: {r['rate']:8,.0f} events/s ({r['wall']:.2f} s); CPU s "
                    f"relay {r['relay']:.2f}, database {r['database']:.2f}, "
                    f"stand-in {r['standin']:.2f}",
                    flush=True,
                )
    finally:
        standin.close()
        admin.dispose()
    print()
    for tree, runs in results.items():
        print(
            f"{tree}: median {median([r['rate'] for r in runs]):,.0f} events/s, CPU s relay "
            f"{median([r['relay'] for r in runs]):.2f}, database "
            f"{median([r['database'] for r in runs]):.2f}, stand-in "
            f"{median([r['standin'] for r in runs]):.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
