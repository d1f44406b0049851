"""Database restart: PostgreSQL restarts mid-drain and the running relay carries on by itself.

The test starts a PostgreSQL cluster of its own (``initdb`` into a temporary directory, its own
port, run as the ``postgres`` user when the tests run as root) and restarts that one, so the
shared service and every other test's sessions are left alone. The stand-in holds each request
briefly, so the drain is still under way when the cluster goes down; requests in flight then
cannot be acked and come back after their lease. Events tracked after the restart check that
the relay's watcher connection came back too.
"""

from __future__ import annotations

import contextlib
import gc
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from helpers.network import free_port
from ledger import Ledger
from rig import (
    RelayLauncher,
    SurveyEvents,
    commit_backlog,
    pending_count,
    state_counts,
    wait_until,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from relay import _migrations
from relay._database import create_engine
from relay._tables import OutboxState
from relay._tracking import track
from relay.testing.mixpanel_standin import MixpanelStandin

EVENTS = 10_000
BATCH = 250
HOLD_SECONDS = 0.2  # per request: the drain lasts several seconds, long enough to restart in it
AFTER_RESTART = 200
LEASE_SECONDS = 5.0
RESTART_SECONDS = 120.0


@dataclass(frozen=True)
class PrivateCluster:
    """A PostgreSQL cluster of this test's own: data directory, port, how to run its tools."""

    data: Path
    port: int
    bin_dir: Path

    @property
    def log(self) -> Path:
        """The server's log file (beside the data directory)."""
        return self.data.parent / "server.log"

    def ctl(self, *args: str, timeout: float = RESTART_SECONDS) -> None:
        """Run ``pg_ctl`` on this cluster (as ``postgres`` when this process is root)."""
        _as_owner([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), *args], timeout=timeout)

    def url(self, database: str) -> str:
        """SQLAlchemy URL of ``database`` on this cluster."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"


def _as_owner(command: list[str], *, timeout: float) -> None:
    # initdb and the server refuse to run as root.
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(prefix + command, check=True, timeout=timeout, capture_output=True)


@pytest.fixture
def private_cluster() -> Iterator[PrivateCluster]:
    """Start a throwaway PostgreSQL cluster from the installed binaries; removed afterwards."""
    (bin_dir,) = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1:]
    folder = Path(tempfile.mkdtemp(prefix="relay-pg-restart-"))
    if os.geteuid() == 0:
        shutil.chown(folder, user="postgres", group="postgres")
    cluster = PrivateCluster(data=folder / "data", port=free_port(), bin_dir=Path(bin_dir))
    try:
        _as_owner(
            [
                str(cluster.bin_dir / "initdb"),
                "-D",
                str(cluster.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
            timeout=RESTART_SECONDS,
        )
        options = f"-p {cluster.port} -c listen_addresses=127.0.0.1 -k {folder} -c fsync=off"
        cluster.ctl("-o", options, "-l", str(cluster.log), "-w", "start")
        yield cluster
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            cluster.ctl("-m", "immediate", "-w", "stop", timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_engine(private_cluster: PrivateCluster) -> Iterator[Engine]:
    """An engine on a database of the private cluster, migrated to head.

    It overrides the suite's ``pg_engine`` in this module, so ``relays`` start on it too.
    """
    admin = create_engine(private_cluster.url("postgres"))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("CREATE DATABASE relay_restart")
    admin.dispose()
    engine = create_engine(private_cluster.url("relay_restart"))
    _migrations.upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def _drop_stale_pools() -> None:
    """Dispose of every engine's pool in this process: the restart closed the private cluster's.

    Engines on the shared servers are disposed of too, harmlessly (they just reconnect); an
    engine on the private cluster would otherwise hand a dead connection to its next user.
    """
    # type(), not isinstance(): isinstance asks a lazy object (Django's unconfigured settings,
    # imported by other tests of the session) for its __class__, which sets it up and raises.
    for engine in [obj for obj in gc.get_objects() if issubclass(type(obj), Engine)]:
        engine.dispose()


def _accepts_connections(engine: Engine) -> bool:
    url = engine.url.set(drivername="postgresql")
    try:
        with psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def test_relay_survives_a_postgresql_restart_mid_drain_without_being_restarted(
    private_cluster: PrivateCluster,
    pg_engine: Engine,
    standin: MixpanelStandin,
    relays: RelayLauncher,
) -> None:
    """PostgreSQL restarts while the relay drains; the same relay process delivers everything."""
    ledger = Ledger(f"database restart: {EVENTS:,} events, then {AFTER_RESTART} more")
    events = SurveyEvents()
    commit_backlog(pg_engine, ledger, events, EVENTS)
    standin.delay_next(HOLD_SECONDS, times=2 * EVENTS // BATCH)
    relay = relays.start(batch_max_events=str(BATCH), lease_seconds=str(LEASE_SECONDS))
    wait_until(
        lambda: standin.stats().unique >= EVENTS // 5,
        timeout=60,
        what="a fifth of the backlog to be delivered",
        context=relays.diagnosis,
    )
    delivered_before = standin.stats().unique
    restart_started = time.monotonic()
    private_cluster.ctl("-m", "fast", "-l", str(private_cluster.log), "-w", "restart")
    wait_until(
        lambda: _accepts_connections(pg_engine),
        timeout=RESTART_SECONDS,
        what="PostgreSQL to accept connections again",
        context=relays.diagnosis,
    )
    restart_took = time.monotonic() - restart_started
    _drop_stale_pools()
    pending_after_restart = pending_count(pg_engine)

    with Session(pg_engine) as session:  # business goes on: tracked, and found by the watcher
        committed = []
        for _ in range(AFTER_RESTART):
            call = events.next()
            insert_id = track(
                session,
                event=call.event,
                distinct_id=call.distinct_id,
                properties=call.properties,
                occurred_at=call.occurred_at,
                strict=True,
            )
            assert insert_id is not None
            committed.append((insert_id, call))
        session.commit()
    for insert_id, call in committed:
        ledger.record_committed(
            insert_id, event=call.event, distinct_id=call.distinct_id, time_ms=call.time_ms
        )

    wait_until(
        lambda: pending_count(pg_engine) == 0 or not relay.alive,
        timeout=180,
        what="the relay to drain everything after the restart",
        context=relays.diagnosis,
    )
    still_running = relay.alive
    exit_code = relay.stop()
    report = ledger.reconcile(
        standin.accepted_events(),
        notes={
            "delivered before the restart": delivered_before,
            "pending after the restart": pending_after_restart,
            "restart took": f"{restart_took:.1f} s",
            "relay processes started": len(relays.started),
            "requests by status": standin.stats().by_status,
            "outbox states": state_counts(pg_engine),
        },
    )
    print(f"\n{report}")
    context = f"\n{report}\n" + "\n".join(relays.logs())
    report.assert_clean()
    assert still_running, context
    assert relays.started == [relay], context
    assert exit_code == 0, context
    assert pending_after_restart > 0, context  # the restart did land mid-drain
    assert state_counts(pg_engine) == {OutboxState.DELIVERED.value: EVENTS + AFTER_RESTART}, context
    assert standin.stats().rejected == 0, context
