"""Retention in bounded batches, and gauges that read only the state-leading indexes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from helpers.outbox import row_values
from sqlalchemy.engine import Engine

from relay import _store as store
from relay._config import RelaySettings
from relay._store import maintenance
from relay._store.stats import pending_by_destination
from relay._tables import OutboxState, outbox

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
TIME_MS = 1_767_225_600_000


def _add(engine: Engine, count: int = 1, **overrides: Any) -> None:
    rows = [row_values(at=NOW, time_ms=TIME_MS, **overrides) for _ in range(count)]
    with store.transaction(engine) as conn:
        conn.execute(sa.insert(outbox), rows)


def _finished(state: OutboxState, age: dt.timedelta) -> dict[str, Any]:
    return {"state": state.value, "finished_at": NOW - age, "created_at": NOW - age - HOUR}


def _count(engine: Engine, state: OutboxState) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(outbox).where(outbox.c.state == state)
            ).scalar_one()
        )


# --- retention ------------------------------------------------------------------------------


def test_purge_batch_deletes_at_most_its_limit_of_old_rows_in_one_state(engine: Engine) -> None:
    """One batch deletes no more than its limit, only of the given state, only old enough."""
    _add(engine, 5, **_finished(OutboxState.DELIVERED, 3 * HOUR))
    _add(engine, 2, **_finished(OutboxState.DELIVERED, 1 * HOUR))
    _add(engine, 2, **_finished(OutboxState.DEAD, 3 * HOUR))
    _add(engine, 2, created_at=NOW - 10 * HOUR)  # pending, never purged
    with store.transaction(engine, write=True) as conn:
        deleted = maintenance.purge_finished_batch(
            conn, state=OutboxState.DELIVERED, finished_before=NOW - 2 * HOUR, limit=3
        )
    assert deleted == 3
    assert _count(engine, OutboxState.DELIVERED) == 4
    assert _count(engine, OutboxState.DEAD) == 2
    assert _count(engine, OutboxState.PENDING) == 2


def test_purge_refuses_pending_rows(engine: Engine) -> None:
    """Asking to purge pending rows is a programming error, not a silent data loss."""
    with (
        store.transaction(engine, write=True) as conn,
        pytest.raises(ValueError, match="only delivered or dead"),
    ):
        maintenance.purge_finished_batch(
            conn, state=OutboxState.PENDING, finished_before=NOW, limit=10
        )


def test_purge_finished_runs_batches_until_a_short_one(engine: Engine) -> None:
    """Ten old rows with a batch size of three go in four batches; max_batches caps a run."""
    _add(engine, 10, **_finished(OutboxState.DEAD, 2 * HOUR))
    capped = maintenance.purge_finished(
        engine,
        state=OutboxState.DEAD,
        finished_before=NOW - HOUR,
        batch_size=3,
        max_batches=2,
    )
    assert capped == 6
    rest = maintenance.purge_finished(
        engine, state=OutboxState.DEAD, finished_before=NOW - HOUR, batch_size=3
    )
    assert rest == 4
    assert _count(engine, OutboxState.DEAD) == 0


def test_retention_keeps_dead_rows_longer_than_delivered_ones(engine: Engine) -> None:
    """Delivered rows go after their window, dead rows only after their longer one."""
    _add(engine, 3, **_finished(OutboxState.DELIVERED, 25 * HOUR))
    _add(engine, 1, **_finished(OutboxState.DELIVERED, 23 * HOUR))
    _add(engine, 2, **_finished(OutboxState.DEAD, 25 * HOUR))
    _add(engine, 1, **_finished(OutboxState.DEAD, 49 * HOUR))
    settings = RelaySettings(
        delivered_retention_hours=24, dead_retention_hours=48, purge_batch_size=2
    )
    result = maintenance.run_retention(engine, settings, now=NOW)
    assert (result.delivered_deleted, result.dead_deleted) == (3, 1)
    assert _count(engine, OutboxState.DELIVERED) == 1
    assert _count(engine, OutboxState.DEAD) == 2


# --- gauges ---------------------------------------------------------------------------------


def test_gauges_count_pending_due_inflight_and_dead_rows(engine: Engine) -> None:
    """Each gauge counts its own rows at the given moment."""
    _add(engine, 2, created_at=NOW - 90 * dt.timedelta(seconds=1))  # due
    _add(engine, 1, next_attempt_at=NOW + HOUR, created_at=NOW - dt.timedelta(seconds=30))
    _add(engine, 1, next_attempt_at=NOW + dt.timedelta(seconds=30), lease_token="a" * 32)
    _add(engine, 1, next_attempt_at=NOW - dt.timedelta(seconds=1), lease_token="b" * 32)
    _add(engine, 4, **_finished(OutboxState.DEAD, HOUR))
    _add(engine, 7, **_finished(OutboxState.DELIVERED, HOUR))
    gauges = maintenance.read_gauges(engine, now=NOW)
    assert gauges == maintenance.Gauges(
        pending=5, due=3, inflight=1, dead=4, oldest_pending_age_seconds=90.0
    )


def test_gauges_of_an_empty_outbox_are_zero(engine: Engine) -> None:
    """No rows: every gauge is zero, including the oldest age."""
    assert maintenance.read_gauges(engine, now=NOW) == maintenance.Gauges(
        pending=0, due=0, inflight=0, dead=0, oldest_pending_age_seconds=0.0
    )


# --- plans with many delivered rows -----------------------------------------------------------

DELIVERED_ROWS = 100_000
#: A backlog of a tenth of the table: enough for PostgreSQL's planner to prefer a hash
#: semi-join over a full scan if the claim gave it the chance.
PENDING_ROWS = 10_000
_LONG_AGO = "'2026-01-01 00:00:00'"
#: Within the retention window of the purge below (NOW - 1 hour).
_RECENTLY = "'2026-03-01 11:30:00'"

_ROWS_SQL = {
    "postgresql": "SELECT g AS i FROM generate_series(1, :n) AS g",
    "sqlite": "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < :n) "
    "SELECT i FROM g",
    "mysql": "SELECT seq AS i FROM seq_1_to_100000 WHERE seq <= :n",
}


def _fill(engine: Engine, *, count: int, state: OutboxState) -> None:
    """Insert ``count`` rows in ``state``, created and due long ago, finished (if so) recently."""
    name = "mysql" if engine.dialect.name in ("mysql", "mariadb") else engine.dialect.name
    insert_id = (
        f"'{state.value}-' || i" if name == "sqlite" else f"CONCAT('{state.value}-', i::text)"
    )
    if name == "mysql":
        insert_id = f"CONCAT('{state.value}-', i)"
    finished = "NULL" if state == OutboxState.PENDING else _RECENTLY
    # Only constants of this module are spliced in; the row count is a bound parameter.
    sql = (
        "INSERT INTO relay_outbox (insert_id, event, distinct_id, time_ms, properties, state, "  # noqa: S608 - constants only
        "attempts, next_attempt_at, created_at, updated_at, finished_at) "
        f"SELECT {insert_id}, 'svc.test.bulk', 'u', 0, '{{}}', '{state.value}', 0, "
        f"{_LONG_AGO}, {_LONG_AGO}, {_LONG_AGO}, {finished} FROM ({_ROWS_SQL[name]}) AS numbers"
    )
    with engine.begin() as conn:
        conn.execute(sa.text(sql), {"n": count})


_ANALYZE_SQL = {
    "postgresql": "ANALYZE relay_outbox",
    "sqlite": "ANALYZE",
    "mysql": "ANALYZE TABLE relay_outbox",
}


def _plans(engine: Engine, run: Callable[[], object]) -> list[tuple[str, str]]:
    """Run ``run``; return (statement, plan) for every statement it executed on ``engine``."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
            captured.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    assert captured
    name = "mysql" if engine.dialect.name in ("mysql", "mariadb") else engine.dialect.name
    prefix = "EXPLAIN QUERY PLAN " if name == "sqlite" else "EXPLAIN "
    plans = []
    with engine.connect() as conn:
        for statement, parameters in captured:
            rows = conn.exec_driver_sql(prefix + statement, parameters).all()
            plans.append((statement, "\n".join(" | ".join(str(v) for v in row) for row in rows)))
        conn.rollback()
    return plans


def _full_scans(engine: Engine, plan: str) -> list[str]:
    """Lines of ``plan`` that read the outbox table without an index."""
    name = engine.dialect.name
    lines = plan.splitlines()
    if name == "postgresql":
        return [line for line in lines if "Seq Scan on relay_outbox" in line]
    if name == "sqlite":
        return [
            line for line in lines if "SCAN relay_outbox" in line and "INDEX" not in line.upper()
        ]
    # MySQL/MariaDB EXPLAIN: id | select_type | table | type | ...; type ALL is a full scan.
    return [line for line in lines if " | relay_outbox | ALL | " in line]


def test_gauges_and_retention_read_indexes_only_with_many_delivered_rows(
    engine: Engine,
) -> None:
    """With a big table and a backlog, no gauge, purge or claim statement scans the table, nor
    the start-up read of the rows waiting for destinations that are not configured."""
    name = "mysql" if engine.dialect.name in ("mysql", "mariadb") else engine.dialect.name
    _fill(engine, count=DELIVERED_ROWS, state=OutboxState.DELIVERED)
    _fill(engine, count=PENDING_ROWS, state=OutboxState.PENDING)
    _add(engine, 50, **_finished(OutboxState.DELIVERED, 2 * HOUR))
    _add(engine, 5, **_finished(OutboxState.DEAD, HOUR))
    with engine.connect() as conn:
        conn.exec_driver_sql(_ANALYZE_SQL[name])
        conn.commit()

    def claim() -> None:
        with store.transaction(engine, write=True) as conn:
            store.claim(conn, now=NOW, limit=2000, lease_seconds=60)
            conn.rollback()

    def purge() -> None:
        with store.transaction(engine, write=True) as conn:
            maintenance.purge_finished_batch(
                conn, state=OutboxState.DELIVERED, finished_before=NOW - HOUR, limit=1000
            )
            conn.rollback()

    def unconfigured() -> None:
        with store.transaction(engine) as conn:
            pending_by_destination(conn, excluding=("eu",))

    for run in (lambda: maintenance.read_gauges(engine, now=NOW), claim, purge, unconfigured):
        for statement, plan in _plans(engine, run):
            assert _full_scans(engine, plan) == [], f"{statement}\n{plan}"
