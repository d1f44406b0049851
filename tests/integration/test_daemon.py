"""The relay daemon as a real process: wake-ups, signals, health, auth failures, outages.

Each test starts ``python -m relay._daemon.daemon`` against a scratch database and the Mixpanel
stand-in, and waits on the daemon's own JSON log lines (read as they are written), never on
a sleep.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from helpers.network import free_port
from sqlalchemy.engine import Engine

from relay import _store as store
from relay._tables import OutboxState, metadata, outbox
from relay.testing.mixpanel_standin import MixpanelStandin

#: Generous bound for anything the daemon should do "at once"; hitting it fails the test.
WAIT_SECONDS = 20.0

LogLine = dict[str, Any]


class DaemonProcess:
    """``python -m relay._daemon.daemon`` in a subprocess, its log lines parsed as they come."""

    def __init__(self, env: dict[str, str]) -> None:
        self.metrics_port = int(env["RELAY_METRICS_PORT"])
        base = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "relay._daemon.daemon"],
            env={**base, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[LogLine] = []
        self._queue: queue.Queue[LogLine | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                line = {"event": "unparsed", "raw": raw.rstrip()}
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(
        self, event: str, where: Callable[[LogLine], bool] = lambda _line: True
    ) -> LogLine:
        """Block until the daemon logs ``event`` (matching ``where``); fail after a bound."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(remaining, 0.0))
            except queue.Empty:
                pytest.fail(f"daemon never logged {event!r}; log so far: {self.lines}")
            if line is None:
                pytest.fail(f"daemon exited before logging {event!r}; log: {self.lines}")
            self.lines.append(line)
            if line.get("event") == event and where(line):
                return line

    def get(self, path: str) -> tuple[int, bytes]:
        """GET ``path`` from the daemon's metrics server."""
        url = f"http://127.0.0.1:{self.metrics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return int(exc.code), bytes(exc.read())

    def terminate_and_wait(self) -> int:
        """SIGTERM, then the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=WAIT_SECONDS)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join()
        assert self.proc.stderr is not None
        self.proc.stderr.close()


StartDaemon = Callable[..., DaemonProcess]


@pytest.fixture
def start_daemon(standin: MixpanelStandin) -> Iterator[StartDaemon]:
    """Start daemons against the stand-in; each is killed at the end if still running."""
    started: list[DaemonProcess] = []

    def start(database_url: str, **overrides: str) -> DaemonProcess:
        env = {
            "RELAY_DATABASE_URL": database_url,
            "RELAY_METRICS_PORT": str(free_port()),
            "RELAY_LOG_LEVEL": "DEBUG",
            "RELAY_LOG_FORMAT": "json",
            "RELAY_AUTH_FAILURE_PAUSE_SECONDS": "600",
            **standin.settings_env(),
            **overrides,
        }
        daemon = DaemonProcess(env)
        started.append(daemon)
        daemon.wait_for("daemon_started")
        return daemon

    yield start
    for daemon in started:
        daemon.close()


def _insert(engine: Engine, **overrides: Any) -> str:
    """Commit one due row the way track() does (an INSERT, nothing else); returns its insert_id."""
    now = dt.datetime.now(dt.UTC)
    values: dict[str, Any] = {
        "insert_id": str(uuid.uuid4()),
        "event": "svc.test.thing_done",
        "distinct_id": "user-1",
        "time_ms": int(now.timestamp() * 1000),
        "properties": {"organization_id": "org-1"},
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
    values.update(overrides)
    with engine.begin() as conn:
        store.insert_event(conn, values=values)
    return str(values["insert_id"])


def _row(engine: Engine, insert_id: str) -> sa.Row[Any]:
    with engine.connect() as conn:
        return conn.execute(sa.select(outbox).where(outbox.c.insert_id == insert_id)).one()


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _delivered(count: int) -> Callable[[LogLine], bool]:
    return lambda line: line.get("delivered") == count


def _completed_a_tick(daemon: DaemonProcess) -> bool:
    """Whether the daemon's /metrics shows a drain tick that completed."""
    status, body = daemon.get("/metrics")
    return status == 200 and any(
        line.startswith("relay_last_success_timestamp_seconds ") and float(line.split()[1]) > 0
        for line in body.decode().splitlines()
    )


def test_committed_event_is_delivered_by_the_watcher_long_before_the_next_poll(
    pg_engine: Engine, standin: MixpanelStandin, start_daemon: StartDaemon
) -> None:
    """With the next poll an hour away, a commit without any NOTIFY gets the event delivered:
    once the start-up tick has run, only the watcher's look at the newest row can wake it."""
    daemon = start_daemon(
        _url(pg_engine), RELAY_POLL_MIN_SECONDS="3600", RELAY_POLL_MAX_SECONDS="3600"
    )
    daemon.wait_for("watching")
    deadline = time.monotonic() + WAIT_SECONDS
    while not _completed_a_tick(daemon):
        assert time.monotonic() < deadline, "the daemon never completed its start-up tick"
        time.sleep(0.05)
    insert_id = _insert(pg_engine)
    daemon.wait_for("drain_tick", _delivered(1))

    assert [e["properties"]["$insert_id"] for e in standin.accepted_events()] == [insert_id]
    assert _row(pg_engine, insert_id).state == OutboxState.DELIVERED
    assert daemon.terminate_and_wait() == 0


def test_the_daemon_logs_a_delivery_summary_at_info(
    sqlite_engine: Engine, standin: MixpanelStandin, start_daemon: StartDaemon
) -> None:
    """At INFO, where routine drain ticks are silent, a stopping relay logs one
    ``delivery_summary`` line counting what it delivered since the last one."""
    daemon = start_daemon(_url(sqlite_engine), RELAY_LOG_LEVEL="INFO")
    _insert(sqlite_engine)
    _insert(sqlite_engine)
    deadline = time.monotonic() + WAIT_SECONDS
    while standin.stats().unique < 2:
        assert time.monotonic() < deadline, "the daemon never delivered the two events"
        time.sleep(0.05)

    assert daemon.terminate_and_wait() == 0
    daemon.wait_for("daemon_stopped")
    summaries = [line for line in daemon.lines if line.get("event") == "delivery_summary"]
    assert summaries
    assert {line["level"] for line in summaries} == {"info"}
    assert sum(line["delivered"] for line in summaries) == 2
    assert sum(line["dead"] for line in summaries) == 0


def test_sigterm_with_a_batch_in_flight_exits_zero_and_leaves_no_row_leased(
    pg_engine: Engine, standin: MixpanelStandin, start_daemon: StartDaemon
) -> None:
    """SIGTERM while Mixpanel is slow to answer: the batch is finished, the process exits 0."""
    daemon = start_daemon(_url(pg_engine))
    daemon.wait_for("watching")
    standin.delay_next(2.0)
    insert_id = _insert(pg_engine)
    daemon.wait_for("batch_claimed")

    assert daemon.terminate_and_wait() == 0

    row = _row(pg_engine, insert_id)
    assert row.lease_token is None
    assert row.state in (OutboxState.DELIVERED, OutboxState.PENDING)
    if row.state == OutboxState.DELIVERED:
        assert standin.stats().unique == 1
    daemon.wait_for("daemon_stopped")


def test_healthz_and_metrics_answer_while_the_relay_delivers(
    pg_engine: Engine, start_daemon: StartDaemon
) -> None:
    """/healthz says ok after a successful tick and /metrics exports the relay's series."""
    daemon = start_daemon(_url(pg_engine))
    daemon.wait_for("watching")
    _insert(pg_engine)
    daemon.wait_for("drain_tick", _delivered(1))

    status, body = daemon.get("/healthz")
    assert status == 200
    assert json.loads(body)["status"] == "ok"
    status, body = daemon.get("/metrics")
    assert status == 200
    text = body.decode()
    assert 'relay_delivered_total{destination="default"} 1.0' in text
    for name in (
        "relay_pending_events",
        "relay_oldest_pending_age_seconds",
        "relay_dead_events",
        "relay_inflight_events",
        "relay_retried_total",
        "relay_dead_total",
        "relay_send_seconds_bucket",
        "relay_last_success_timestamp_seconds",
        'relay_auth_failing{destination="default"} 0.0',
    ):
        assert name in text
    assert daemon.get("/nothing-here")[0] == 404
    assert daemon.terminate_and_wait() == 0


def test_rejected_credentials_are_logged_loudly_and_fail_healthz_without_touching_rows(
    pg_engine: Engine, standin: MixpanelStandin, start_daemon: StartDaemon
) -> None:
    """A 401 is logged critical, sets relay_auth_failing and fails /healthz; rows stay put."""
    daemon = start_daemon(_url(pg_engine), RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET="wrong")
    daemon.wait_for("watching")
    insert_id = _insert(pg_engine)
    line = daemon.wait_for("mixpanel_auth_failed")

    assert line["level"] == "critical"
    assert "401" in line["error"]
    assert "wrong" not in json.dumps(daemon.lines)  # the secret never reaches the log
    status, body = daemon.get("/healthz")
    assert status == 503
    assert "401" in json.loads(body)["auth_error"]
    assert 'relay_auth_failing{destination="default"} 1.0' in daemon.get("/metrics")[1].decode()
    row = _row(pg_engine, insert_id)
    assert (row.state, row.attempts, row.lease_token) == (OutboxState.PENDING, 0, None)
    assert standin.stats().by_status == {401: 1}
    assert daemon.terminate_and_wait() == 0


def test_relay_backs_off_as_a_whole_while_mixpanel_fails_and_delivers_after(
    pg_engine: Engine, standin: MixpanelStandin, start_daemon: StartDaemon
) -> None:
    """A 503 pauses all sending for 2 s plus jitter; then the event goes through."""
    daemon = start_daemon(_url(pg_engine))
    daemon.wait_for("watching")
    standin.fail_next(503)
    insert_id = _insert(pg_engine)
    backoff = daemon.wait_for("mixpanel_failing_backing_off")
    assert 3.0 <= backoff["seconds"] <= 7.0
    other_id = _insert(pg_engine)  # a wake-up during the pause sends nothing
    delivered = 0
    while delivered < 2:
        delivered += daemon.wait_for("drain_tick")["delivered"]
    statuses = [r.status for r in standin.request_log()]
    assert statuses[0] == 503
    assert set(statuses[1:]) == {200}
    assert standin.request_log()[1].at - standin.request_log()[0].at >= 3.0
    assert _row(pg_engine, insert_id).state == OutboxState.DELIVERED
    assert _row(pg_engine, other_id).state == OutboxState.DELIVERED
    assert daemon.terminate_and_wait() == 0


def test_relay_tries_again_after_the_auth_pause_and_recovers(
    pg_engine: Engine, standin: MixpanelStandin, start_daemon: StartDaemon
) -> None:
    """After the pause the relay sends again; once Mixpanel accepts, health is restored."""
    daemon = start_daemon(_url(pg_engine), RELAY_AUTH_FAILURE_PAUSE_SECONDS="1")
    daemon.wait_for("watching")
    standin.fail_next(401)
    insert_id = _insert(pg_engine)
    daemon.wait_for("mixpanel_auth_failed")
    daemon.wait_for("drain_tick", _delivered(1))
    daemon.wait_for("mixpanel_auth_recovered")

    assert daemon.get("/healthz")[0] == 200
    assert 'relay_auth_failing{destination="default"} 0.0' in daemon.get("/metrics")[1].decode()
    row = _row(pg_engine, insert_id)
    assert (row.state, row.attempts) == (OutboxState.DELIVERED, 1)
    assert daemon.terminate_and_wait() == 0


def test_daemon_survives_its_database_connections_being_killed(
    pg_engine: Engine, start_daemon: StartDaemon
) -> None:
    """After every daemon connection is terminated (as in a restart) it reconnects and delivers."""
    daemon = start_daemon(_url(pg_engine), RELAY_POLL_MAX_SECONDS="0.5")
    daemon.wait_for("watching")
    with pg_engine.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        conn.commit()
    daemon.wait_for("watch_connection_failed")
    daemon.wait_for("watching")
    insert_id = _insert(pg_engine)
    daemon.wait_for("drain_tick", _delivered(1))
    assert _row(pg_engine, insert_id).state == OutboxState.DELIVERED
    assert daemon.terminate_and_wait() == 0


def test_failing_ticks_are_logged_and_retried_until_the_database_works(
    sqlite_engine: Engine, standin: MixpanelStandin, start_daemon: StartDaemon
) -> None:
    """On SQLite with the table missing, ticks fail with a traceback naming the store's typed
    error (an OutboxTablesMissingError, a StoreError); once the table exists, rows flow."""
    metadata.drop_all(sqlite_engine)
    daemon = start_daemon(
        _url(sqlite_engine), RELAY_POLL_MIN_SECONDS="0.05", RELAY_POLL_MAX_SECONDS="0.2"
    )
    failure = daemon.wait_for("drain_tick_failed")
    assert failure["level"] == "error"
    assert failure["error_type"] == "OutboxTablesMissingError"
    assert "exception" in failure  # the traceback is logged
    daemon.wait_for("drain_tick_failed")  # and the next tick tries again
    status, body = daemon.get("/healthz")
    assert status == 503
    assert json.loads(body)["last_error"] == "OutboxTablesMissingError"

    metadata.create_all(sqlite_engine)
    insert_id = _insert(sqlite_engine)
    daemon.wait_for("drain_tick", _delivered(1))

    assert _row(sqlite_engine, insert_id).state == OutboxState.DELIVERED
    assert [e["properties"]["$insert_id"] for e in standin.accepted_events()] == [insert_id]
    assert daemon.get("/healthz")[0] == 200
    assert daemon.terminate_and_wait() == 0
