"""``relay.admin.stats`` numbers on every database, and its index use on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from relay import _store as store
from relay import admin
from relay._store.stats import pending_by_destination
from relay._store.throttle import record_throttle
from relay._tables import OutboxState, outbox

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


def _add(engine: Engine, count: int = 1, **overrides: Any) -> None:
    rows = [
        {
            "insert_id": str(uuid.uuid4()),
            "event": "svc.test.thing_done",
            "distinct_id": "user-1",
            "time_ms": 1_767_225_600_000,
            "properties": {"organization_id": "org-1"},
            "next_attempt_at": NOW,
            "created_at": NOW,
            "updated_at": NOW,
            **overrides,
        }
        for _ in range(count)
    ]
    with store.transaction(engine) as conn:
        conn.execute(sa.insert(outbox), rows)


def _finished(state: OutboxState, ago: dt.timedelta, **more: Any) -> dict[str, Any]:
    return {"state": state.value, "finished_at": NOW - ago, **more}


def test_stats_counts_pending_due_inflight_dead_and_recent_deliveries(engine: Engine) -> None:
    """Each number counts exactly its rows at the given now."""
    _add(engine, 2, created_at=NOW - 90 * MINUTE)  # due
    _add(engine, 1, next_attempt_at=NOW + MINUTE, event="svc.test.other_done")  # retry later
    _add(engine, 1, lease_token="a" * 32, next_attempt_at=NOW + MINUTE)  # in flight
    _add(engine, 3, **_finished(OutboxState.DEAD, MINUTE, last_error="cause A"))
    _add(engine, 1, **_finished(OutboxState.DEAD, MINUTE, last_error="cause B"))
    _add(engine, 2, **_finished(OutboxState.DELIVERED, 30 * MINUTE))
    _add(engine, 1, **_finished(OutboxState.DELIVERED, 60 * MINUTE))  # the hour's first instant
    _add(engine, 4, **_finished(OutboxState.DELIVERED, 5 * 60 * MINUTE))
    _add(engine, 5, **_finished(OutboxState.DELIVERED, 25 * 60 * MINUTE))

    s = admin.stats(engine, now=NOW)

    assert (s.pending, s.due, s.inflight) == (4, 2, 1)
    assert s.oldest_pending_age_seconds == 90 * 60
    assert (s.dead, s.dead_by_reason) == (4, {"cause A": 3, "cause B": 1})
    assert (s.delivered_last_hour, s.delivered_last_day) == (3, 7)
    assert s.pending_by_event == {"svc.test.thing_done": 3, "svc.test.other_done": 1}


def test_stats_of_an_empty_outbox_are_zero(engine: Engine) -> None:
    """With no rows every count is zero and there is no oldest pending age."""
    s = admin.stats(engine, now=NOW)

    assert (s.pending, s.due, s.inflight, s.dead) == (0, 0, 0, 0)
    assert s.oldest_pending_age_seconds is None
    assert (s.dead_by_reason, s.pending_by_event) == ({}, {})


@contextmanager
def _recorded_selects(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _seq_scans(plan: dict[str, Any]) -> list[str]:
    found = []
    if plan.get("Node Type") == "Seq Scan":
        found.append(plan.get("Relation Name", "?"))
    for child in plan.get("Plans", []):
        found.extend(_seq_scans(child))
    return found


def test_every_stats_query_can_be_answered_from_an_index_on_postgresql(pg_engine: Engine) -> None:
    """With sequential scans priced out, no stats query scans relay_outbox sequentially.

    ``enable_seqscan = off`` leaves a Seq Scan in a plan only where no index can serve the
    query, so a clean plan proves each statement is index-backed (the benchmark shows the
    plans PostgreSQL picks on its own at 1,000,000 rows).
    """
    _add(pg_engine, 5, **_finished(OutboxState.DELIVERED, MINUTE))
    _add(pg_engine, 5)
    with _recorded_selects(pg_engine) as statements:
        admin.stats(pg_engine, now=NOW)

        admin.stats(pg_engine, now=NOW, destination="eu")

    # Four reads of relay_outbox, three more for the per-destination breakdown, and two of
    # relay_pause (a handful of rows: the operators' pauses, and Mixpanel's throttle by
    # primary key); then the same for one destination, without the breakdown.
    assert len(statements) == 9 + 6
    with pg_engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in statements:
            (plan,) = conn.exec_driver_sql(
                f"EXPLAIN (FORMAT JSON) {statement}", parameters
            ).scalar_one()
            assert "relay_outbox" not in _seq_scans(plan["Plan"]), statement


def test_pending_rows_per_destination_are_read_from_the_pending_index_on_postgresql(
    pg_engine: Engine,
) -> None:
    """The start-up read of rows waiting for unconfigured destinations (one grouped read, the
    configured ones left out) is served by ix_relay_outbox_pending_due, never a table scan."""
    _add(pg_engine, 5, **_finished(OutboxState.DELIVERED, MINUTE))
    _add(pg_engine, 3, destination="gone")
    _add(pg_engine, 2)
    with _recorded_selects(pg_engine) as statements, store.transaction(pg_engine) as conn:
        assert pending_by_destination(conn, excluding=("default", "eu")) == {"gone": 3}
    ((statement, parameters),) = statements
    with pg_engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        (plan,) = conn.exec_driver_sql(
            f"EXPLAIN (FORMAT JSON) {statement}", parameters
        ).scalar_one()
    assert "relay_outbox" not in _seq_scans(plan["Plan"]), statement
    assert "ix_relay_outbox_pending_due" in str(plan), plan


def test_stats_show_the_delivery_rate_and_mixpanels_throttle(engine: Engine) -> None:
    """The last minute's deliveries give the rate; the throttle the relays share is shown."""
    _add(engine, 6, **_finished(OutboxState.DELIVERED, dt.timedelta(seconds=30)))
    _add(engine, 4, **_finished(OutboxState.DELIVERED, dt.timedelta(minutes=5)))
    with store.transaction(engine) as conn:
        record_throttle(conn, now=NOW, delay=lambda _level: 30.0, actor="relay@host:1")
    s = admin.stats(engine, now=NOW)
    assert s.delivered_last_minute == 6
    assert s.delivery_rate == 0.1
    assert s.throttle is not None
    assert (s.throttle.level, s.throttle.actor) == (1, "relay@host:1")
    assert s.to_json()["throttle"] == {
        "level": 1,
        "until": (NOW + dt.timedelta(seconds=30)).isoformat(),
        "actor": "relay@host:1",
    }
    assert s.paused == []  # the throttle is no operator's pause
