"""A replay killed with SIGKILL between batches leaves every row replayed or untouched."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from relay import _store as store
from relay._tables import OutboxState, audit, outbox
from relay.admin._audit import UNFINISHED

RELAY = str(Path(sys.executable).with_name("relay"))
ROWS = 350
BATCH = 100
OLD = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
#: The pipe buffer the replay's stderr gets (one page): filled before the replay starts.
PIPE_SIZE = 4096


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


def _full_pipe() -> tuple[int, int]:
    """A pipe whose buffer is already full: the next write to it blocks until it is read."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    os.set_blocking(write_end, False)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(write_end, b"x" * PIPE_SIZE)
    os.set_blocking(write_end, True)
    return read_end, write_end


def _audited(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.coalesce(sa.func.sum(audit.c.count), 0))).scalar()
        )


def test_replay_killed_between_batches_leaves_no_row_half_changed(engine: Engine) -> None:
    """After SIGKILL between batches each row is fully replayed or untouched, and audited exactly.

    The replay's stderr is a pipe that is already full, so its ``--progress`` line after the
    first committed batch blocks in ``write(2)``: the process stands between batch 1 and batch
    2 (no test hook in the relay) when the test sees batch 1 in the audit trail and kills it.
    """
    _dead_rows(engine)
    url = engine.url.render_as_string(hide_password=False)
    command = [RELAY, "--database-url", url, "replay", "--all", "--yes", "--progress"]
    command += ["--batch-size", str(BATCH)]
    read_end, write_end = _full_pipe()
    try:
        with subprocess.Popen(command, stderr=write_end, stdout=subprocess.DEVNULL) as proc:
            deadline = time.monotonic() + 60
            while _audited(engine) < BATCH and proc.poll() is None:
                assert time.monotonic() < deadline, "batch 1 never committed"
                time.sleep(0.05)
            assert proc.poll() is None, "the replay did not block on its progress line"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        os.set_blocking(read_end, False)
        with contextlib.suppress(BlockingIOError):
            while os.read(read_end, PIPE_SIZE):
                pass
    finally:
        os.close(read_end)
        os.close(write_end)
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
