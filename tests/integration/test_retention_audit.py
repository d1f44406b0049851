"""Automatic retention is audited: one entry per run that deleted something, with its counts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from helpers.outbox import row_values
from sqlalchemy.engine import Engine

from relay import _store as store
from relay._config import RelaySettings
from relay._store import maintenance
from relay._tables import OutboxState, audit, outbox

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
SETTINGS = RelaySettings(delivered_retention_hours=24, dead_retention_hours=48, purge_batch_size=2)


def _add(engine: Engine, count: int, state: OutboxState, age: dt.timedelta) -> None:
    finished_at = None if state is OutboxState.PENDING else NOW - age
    rows = [
        row_values(
            at=NOW - age, time_ms=1_767_225_600_000, state=state.value, finished_at=finished_at
        )
        for _ in range(count)
    ]
    with store.transaction(engine) as conn:
        conn.execute(sa.insert(outbox), rows)


def _entries(engine: Engine) -> list[sa.Row[Any]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(audit).order_by(audit.c.id)))


def test_a_retention_run_writes_one_audit_entry_with_its_counts(engine: Engine) -> None:
    """A run over several batches writes one `retention` entry counting every row it deleted,
    per state, naming its cut-offs; pending rows are kept."""
    _add(engine, 5, OutboxState.DELIVERED, 30 * HOUR)
    _add(engine, 3, OutboxState.DEAD, 50 * HOUR)
    _add(engine, 2, OutboxState.PENDING, 100 * HOUR)
    result = maintenance.run_retention(engine, SETTINGS, now=NOW)
    entries = _entries(engine)
    assert len(entries) == 1
    entry = entries[0]
    assert (entry.action, entry.actor, entry.count) == ("retention", maintenance.RETENTION_ACTOR, 8)
    assert entry.detail == "automatic: 5 delivered deleted, 3 dead deleted"
    assert entry.filter == {
        "delivered_finished_before": (NOW - 24 * HOUR).isoformat(),
        "dead_finished_before": (NOW - 48 * HOUR).isoformat(),
    }
    assert result.audit_id == entry.id


def test_a_retention_run_that_deletes_nothing_writes_no_audit_entry(engine: Engine) -> None:
    """The trail grows with deletions, not with the schedule: an idle run writes nothing."""
    _add(engine, 2, OutboxState.DELIVERED, HOUR)
    for _ in range(3):
        assert maintenance.run_retention(engine, SETTINGS, now=NOW).audit_id is None
    assert _entries(engine) == []


def test_each_deleting_run_gets_its_own_entry(engine: Engine) -> None:
    """Two runs that each delete something write two entries, each with its own count."""
    _add(engine, 3, OutboxState.DEAD, 50 * HOUR)
    maintenance.run_retention(engine, SETTINGS, now=NOW, max_batches=1)
    maintenance.run_retention(engine, SETTINGS, now=NOW)
    assert [e.count for e in _entries(engine)] == [2, 1]
