"""Database restart: PostgreSQL restarts mid-drain and the running relay carries on by itself.

The restart cuts every session of the shared cluster, so this test is marked ``runs_last``
(moved to the end of the session by the fault suite's conftest) and the file name sorts last.
The stand-in holds each request briefly, so the drain is still under way when the cluster goes
down; requests in flight then cannot be acked and come back after their lease. Events tracked
after the restart check that the relay's LISTEN connection came back too.
"""

from __future__ import annotations

import gc
import os
import subprocess
import time

import psycopg
import pytest
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

from relay.models import OutboxState
from relay.testing.mixpanel_standin import MixpanelStandin
from relay.tracking import track

EVENTS = 10_000
BATCH = 250
HOLD_SECONDS = 0.2  # per request: the drain lasts several seconds, long enough to restart in it
AFTER_RESTART = 200
LEASE_SECONDS = 5.0
RESTART_SECONDS = 120.0


def _restart_postgresql() -> None:
    (version,) = os.listdir("/etc/postgresql")
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        timeout=RESTART_SECONDS,
        capture_output=True,
    )


def _drop_stale_pools() -> None:
    """Dispose of every engine's pool in this process: the restart closed all their connections.

    The session's own engines (the scratch-database admin engine of ``tests/conftest.py`` has
    no pre-ping) would otherwise hand a dead connection to their next user, at teardown.
    """
    for engine in [obj for obj in gc.get_objects() if isinstance(obj, Engine)]:
        engine.dispose()


def _accepts_connections(engine: Engine) -> bool:
    url = engine.url.set(drivername="postgresql")
    try:
        with psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


@pytest.mark.runs_last
def test_relay_survives_a_postgresql_restart_mid_drain_without_being_restarted(
    pg_engine: Engine, standin: MixpanelStandin, relays: RelayLauncher
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
    _restart_postgresql()
    wait_until(
        lambda: _accepts_connections(pg_engine),
        timeout=RESTART_SECONDS,
        what="PostgreSQL to accept connections again",
        context=relays.diagnosis,
    )
    restart_took = time.monotonic() - restart_started
    _drop_stale_pools()
    pending_after_restart = pending_count(pg_engine)

    with Session(pg_engine) as session:  # business goes on: tracked and woken through LISTEN
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
