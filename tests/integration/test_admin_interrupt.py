"""A replay killed with SIGKILL between batches leaves every row replayed or untouched."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from relay import _store as store
from relay._tables import OutboxState, audit, outbox
from relay.admin.audit import UNFINISHED

RELAY = str(Path(sys.executable).with_name("relay"))
ROWS = 350
BATCH = 100
OLD = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _dead_rows(engine: Engine) -> None:
    rows: list[dict[str, Any]] = [
        {
            "insert_id": str(uuid.uuid4()),
            "event": "svc.test.thing_done",
            "distinct_id": f"user-{i}",
            "time_ms": 1_767_225_600_000 + i,
            "properties": {"organization_id": "org-1"},
            "state": OutboxState.DEAD.value,
            "attempts": 3,
            "next_attempt_at": OLD,
            "lease_token": None,
            "last_error": "HTTP 400: refused",
            "created_at": OLD,
            "updated_at": OLD,
            "finished_at": OLD,
        }
        for i in range(ROWS)
    ]
    with store.transaction(engine) as conn:
        conn.execute(sa.insert(outbox), rows)


def test_replay_killed_between_batches_leaves_no_row_half_changed(engine: Engine) -> None:
    """After SIGKILL between batches each row is fully replayed or untouched, and audited exactly.

    The hidden ``--pause-after-batch`` makes the subprocess wait after each committed batch,
    so the kill lands between batches every time.
    """
    _dead_rows(engine)
    url = engine.url.render_as_string(hide_password=False)
    command = [RELAY, "--database-url", url, "replay", "--all", "--yes", "--progress"]
    command += ["--batch-size", str(BATCH), "--pause-after-batch", "60"]
    with subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    ) as proc:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # blocks until batch 1 has committed
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert "batch 1 committed" in first
    assert proc.returncode == -signal.SIGKILL

    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox).order_by(outbox.c.id)).all()
        (entry,) = conn.execute(sa.select(audit)).all()
    replayed = untouched = 0
    for row in rows:
        fields = (row.state, row.attempts, row.last_error, row.finished_at, row.lease_token)
        if fields == (OutboxState.PENDING, 0, None, None, None):
            assert row.next_attempt_at > OLD
            assert row.updated_at == row.next_attempt_at
            replayed += 1
        else:
            assert fields == (OutboxState.DEAD, 3, "HTTP 400: refused", OLD, None)
            assert (row.next_attempt_at, row.updated_at) == (OLD, OLD)
            untouched += 1
    assert (replayed, untouched) == (BATCH, ROWS - BATCH)
    # The first batch in id order, no other row.
    assert all(row.state == OutboxState.PENDING for row in rows[:BATCH])
    assert (entry.action, entry._mapping["count"], entry.detail) == ("replay", BATCH, UNFINISHED)
