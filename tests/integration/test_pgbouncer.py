"""relay behind a real PgBouncer in transaction pooling mode: track(), relay drain, relay run.

In transaction mode each transaction may run on another server connection, so nothing may
depend on session state: no server-side prepared statement (psycopg prepares a statement after
its fifth execution on a connection; the next transaction on another server connection fails
with ``prepared statement ... does not exist`` or ``DuplicatePreparedStatement``), and no
``LISTEN``. The pooler is Debian's ``pgbouncer`` package, started privately by the fixture on a
free port in front of the test server, with a pool of two server connections so that client
connections keep changing server connections. ``.ci/run`` installs the package; in CI
(``CI=true``) its absence fails the tests, elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from helpers.network import free_port
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from relay import _store as store
from relay._database import create_engine
from relay._event.properties import MixpanelSuperEventPropertiesSchema, SystemRole
from relay._event.registry import register_event
from relay._tables import OutboxState, outbox
from relay._tracking import track
from relay.testing.mixpanel_standin import MixpanelStandin

EVENT = "svc.tests.pooled_widget_shipped"


class PooledWidgetShippedSchema(MixpanelSuperEventPropertiesSchema):
    """Test event: a widget left the warehouse (tracked through the pooler)."""

    widget_id: str


register_event(EVENT, PooledWidgetShippedSchema)
#: Generous bound for anything that should happen "at once"; hitting it fails the test.
WAIT_SECONDS = 60.0
RELAY = Path(sys.executable).parent / "relay"


def _pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("pgbouncer is not installed (Debian's pgbouncer package; .ci/run installs it)")
    pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)")


@pytest.fixture(scope="module")
def pgbouncer(postgresql_url: str) -> Iterator[str]:
    """A private PgBouncer in transaction mode in front of the test server; yields host:port."""
    binary = _pgbouncer_binary()
    server = sa.make_url(postgresql_url)
    port = free_port()
    # PgBouncer refuses to run as root; as root it is told to switch to "nobody", who must be
    # able to read its files.
    directory = Path(tempfile.mkdtemp(prefix="relay_pgbouncer_"))
    directory.chmod(0o755)
    users = directory / "users.txt"
    users.write_text(f'"{server.username}" ""\n')
    config = directory / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"* = host={server.host or '127.0.0.1'} port={server.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {users}\n"
        "pool_mode = transaction\ndefault_pool_size = 2\nmin_pool_size = 0\n"
        "max_client_conn = 200\nignore_startup_parameters = extra_float_digits\n"
    )
    for path in (users, config):
        path.chmod(0o644)
    command = [binary, str(config)]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "nobody"]
    proc = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                output = proc.stdout.read().decode() if proc.stdout else ""
                proc.kill()
                pytest.fail(f"pgbouncer did not start: {output[-2000:]}")
            time.sleep(0.05)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        shutil.rmtree(directory, ignore_errors=True)


def _through(pg_engine: Engine, pgbouncer: str) -> str:
    """The test database's URL, through the pooler."""
    host, port = pgbouncer.split(":")
    return pg_engine.url.set(host=host, port=int(port)).render_as_string(hide_password=False)


def _commit_rows(engine: Engine, count: int) -> list[str]:
    """Commit ``count`` due rows straight to the server; returns their insert ids."""
    now = dt.datetime.now(dt.UTC)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    rows = [
        {
            "insert_id": insert_id,
            "event": "svc.test.thing_done",
            "distinct_id": "user-1",
            "time_ms": int(now.timestamp() * 1000),
            "properties": '{"organization_id": "org-1"}',
            "now": now,
        }
        for insert_id in ids
    ]
    with engine.begin() as conn:
        store.insert_rows(
            conn,
            [
                store.pending_row(
                    insert_id=r["insert_id"],
                    event=r["event"],
                    distinct_id=r["distinct_id"],
                    time_ms=r["time_ms"],
                    properties_json=r["properties"].encode(),
                    now=r["now"],
                )
                for r in rows
            ],
        )
    return ids


def _states(engine: Engine, ids: list[str]) -> dict[str, int]:
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(outbox.c.state, sa.func.count())
            .where(outbox.c.insert_id.in_(ids))
            .group_by(outbox.c.state)
        ).all()
    return {str(state): int(n) for state, n in found}


def _relay_env(url: str, standin: MixpanelStandin, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    return {
        **base,
        "RELAY_DATABASE_URL": url,
        "RELAY_METRICS_PORT": "0",
        "RELAY_LOG_FORMAT": "json",
        **standin.settings_env(),
        **extra,
    }


def test_track_through_pgbouncer_commits_every_event(pg_engine: Engine, pgbouncer: str) -> None:
    """Host transactions calling track() through the pooler, on an engine with psycopg's default
    settings (statements prepared after five runs), all commit: relay's INSERT is never
    prepared on the server, so no transaction finds it missing on another server connection."""
    host_engine = sa.create_engine(_through(pg_engine, pgbouncer), pool_size=4)
    errors: list[BaseException] = []
    written: list[str] = []
    lock = threading.Lock()

    def host(worker: int) -> None:
        try:
            for n in range(30):
                with Session(host_engine) as session, session.begin():
                    insert_id = track(
                        session,
                        event=EVENT,
                        distinct_id=f"emp-{worker}-{n}",
                        properties={
                            "employee_id": "6f1c7a0e-1b2c-4d5e-8f90-123456789abc",
                            "organization_id": "0b6a8a4e-8f55-4f8e-9a53-3f1f4f1c2d10",
                            "organization_name": "Acme",
                            "role": SystemRole.MANAGER,
                            "impersonation": False,
                            "widget_id": f"w-{n}",
                        },
                        strict=True,
                    )
                with lock:
                    written.append(str(insert_id))
        except BaseException as exc:  # noqa: BLE001 - reported below, failing the test
            errors.append(exc)

    threads = [threading.Thread(target=host, args=(k,)) for k in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        host_engine.dispose()
    assert errors == []
    assert _states(pg_engine, written) == {OutboxState.PENDING.value: 120}


def test_relay_drain_through_pgbouncer_delivers_everything(
    pg_engine: Engine, pgbouncer: str
) -> None:
    """relay drain with its database URL at the pooler claims and acks in 60 small batches
    (each statement run far more than five times) and delivers every row once, exit 0."""
    ids = _commit_rows(pg_engine, 600)
    with MixpanelStandin() as standin:
        done = subprocess.run(
            [str(RELAY), "drain"],
            env=_relay_env(_through(pg_engine, pgbouncer), standin, RELAY_BATCH_MAX_EVENTS="10"),
            capture_output=True,
            text=True,
            timeout=WAIT_SECONDS * 3,
            check=False,
        )
        accepted = [e["properties"]["$insert_id"] for e in standin.accepted_events()]
    assert done.returncode == 0, done.stderr[-3000:]
    assert "PreparedStatement" not in done.stderr
    assert _states(pg_engine, ids) == {OutboxState.DELIVERED.value: 600}
    assert sorted(accepted) == sorted(ids)


def _wait_until_delivered(engine: Engine, ids: list[str], proc: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while _states(engine, ids) != {OutboxState.DELIVERED.value: len(ids)}:
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"relay run did not deliver: {_states(engine, ids)}")
        time.sleep(0.1)


def test_relay_run_through_pgbouncer_is_woken_and_never_fails_a_tick(
    pg_engine: Engine, pgbouncer: str
) -> None:
    """relay run through the pooler, its polls an hour apart: rows committed in several rounds
    are each found by the watcher (no LISTEN needed) and delivered, and no drain tick fails."""
    with MixpanelStandin() as standin:
        proc = subprocess.Popen(
            [str(RELAY), "run"],
            env=_relay_env(
                _through(pg_engine, pgbouncer),
                standin,
                RELAY_BATCH_MAX_EVENTS="10",
                RELAY_POLL_MIN_SECONDS="3600",
                RELAY_POLL_MAX_SECONDS="3600",
                RELAY_LOG_LEVEL="INFO",
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            delivered: list[str] = []
            for _ in range(4):
                ids = _commit_rows(pg_engine, 100)
                _wait_until_delivered(pg_engine, ids, proc)
                delivered += ids
            proc.send_signal(signal.SIGTERM)
            _, log = proc.communicate(timeout=WAIT_SECONDS)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        accepted = [e["properties"]["$insert_id"] for e in standin.accepted_events()]
    assert proc.returncode == 0, log[-3000:]
    assert "drain_tick_failed" not in log
    assert "PreparedStatement" not in log
    assert sorted(accepted) == sorted(delivered)


def test_relays_engines_never_prepare_statements_on_the_server(pg_engine: Engine) -> None:
    """relay.create_engine gives psycopg connections prepare_threshold=None, so no statement
    of relay's (claims, acks, stats) is ever prepared server-side, even run 50 times."""
    url = pg_engine.url.render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.connection.driver_connection.prepare_threshold is None
            for _ in range(50):
                conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()
            prepared = conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements")
            assert prepared.scalar_one() == 0
    finally:
        engine.dispose()
