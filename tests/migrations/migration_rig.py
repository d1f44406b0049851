"""Online-migration test pieces: a timed ``track()`` writer, ``relay migrate`` as a process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from hr_catalog import MixPanelEvent
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from relay import create_engine
from relay._tracking import track

RELAY_EXECUTABLE = Path(sys.executable).with_name("relay")
POLL_SECONDS = 0.02


def survey_properties(employee: str, seq: int) -> dict[str, object]:
    """Valid properties of ``svc.surveys.survey_delivered``."""
    return {
        "employee_id": employee,
        "organization_id": "0b6a3a7e-0000-4000-8000-000000000001",
        "organization_name": "Migration Rig",
        "role": "employee",
        "impersonation": False,
        "survey_id": str(uuid.uuid4()),
        "survey_run_id": f"run-{seq}",
        "survey_type": "pulse",
        "channel": "slack",
        "question_count": seq % 40,
        "is_reminder": False,
    }


def track_one(session: Session, seq: int) -> str:
    """Track one event with the real ``track()`` in ``session``'s transaction (not committed)."""
    employee = str(uuid.uuid4())
    insert_id = track(
        session,
        event=MixPanelEvent.SURVEY_DELIVERED,
        distinct_id=employee,
        properties=survey_properties(employee, seq),
        strict=True,
    )
    assert insert_id is not None
    return insert_id


class TrackingWriter(threading.Thread):
    """The host: one ``track()`` per transaction, in a loop, timing each transaction.

    ``lock_wait_bound`` (seconds) is enforced by the database server on the writer's own
    connections (PostgreSQL ``lock_timeout``, MariaDB ``lock_wait_timeout`` and
    ``innodb_lock_wait_timeout``, whole seconds): a write that waits longer for a lock fails,
    and :meth:`stop` re-raises that. A lock wait is what a migration can impose on the host;
    a slow CPU on a shared machine is not, and does not count against the bound.
    """

    def __init__(self, engine: Engine, *, lock_wait_bound: float | None = None) -> None:
        super().__init__(daemon=True)
        self._engine = engine if lock_wait_bound is None else _bounded(engine, lock_wait_bound)
        self._owns_engine = lock_wait_bound is not None
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self._timings: list[tuple[float, float]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        seq = 0
        try:
            with Session(self._engine) as session:
                while not self._halt.is_set():
                    seq += 1
                    started = time.monotonic()
                    track_one(session, seq)
                    session.commit()
                    with self._lock:
                        self._timings.append((started, time.monotonic() - started))
        except BaseException as exc:  # noqa: BLE001 - re-raised by stop()
            self.error = exc

    @property
    def commits(self) -> int:
        """Transactions committed so far."""
        with self._lock:
            return len(self._timings)

    def timings(self) -> list[tuple[float, float]]:
        """``(start, seconds)`` of every committed transaction."""
        with self._lock:
            return list(self._timings)

    def stop(self) -> list[tuple[float, float]]:
        """Stop after the transaction in flight; re-raise what the writer raised."""
        self._halt.set()
        self.join(timeout=60)
        assert not self.is_alive(), "the writer is stuck in a transaction"
        if self._owns_engine:
            self._engine.dispose()
        if self.error is not None:
            raise self.error
        return self.timings()


def _bounded(engine: Engine, seconds: float) -> Engine:
    """An engine on ``engine``'s database whose connections stop a lock wait after ``seconds``."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "postgresql":
        connect_args = {"options": f"-c lock_timeout={round(seconds * 1000)}"}
    else:
        whole = max(1, round(seconds))
        connect_args = {
            "init_command": (
                f"SET SESSION lock_wait_timeout = {whole}, innodb_lock_wait_timeout = {whole}"
            )
        }
    return create_engine(url, connect_args=connect_args)


def start_migrate(url: str, **env: str) -> subprocess.Popen[str]:
    """``relay migrate`` (to head) in a process of its own."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    return subprocess.Popen(
        [str(RELAY_EXECUTABLE), "--database-url", url, "migrate"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**base, "RELAY_LOG_LEVEL": "WARNING", **env},
    )


def wait_until(predicate: Callable[[], object], *, timeout: float, what: str) -> None:
    """Poll ``predicate`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL_SECONDS)


def revision(engine: Engine) -> str:
    """The revision in relay's version table."""
    with engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT version_num FROM relay_alembic_version")).scalar())


def drop_relay_tables(engine: Engine) -> None:
    """Drop relay's tables and version table, whatever revision they are at."""
    with engine.begin() as conn:
        for table in ("relay_pause", "relay_audit", "relay_outbox", "relay_alembic_version"):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
