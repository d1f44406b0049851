"""Secrets never leave the process: a real ``relay run`` and the CLI, searched for what they hold.

Each scenario gives the relay a database URL carrying a password made up for the test (in the
``user:PW@`` and the ``?password=PW`` forms) and a wrong Mixpanel secret, also made up, then
searches every byte the process printed (stdout and stderr), ``/metrics`` and ``/healthz``, and,
when the database was reachable, every column of the outbox and of ``relay_audit``. Each ends by
checking that nothing was lost: the committed events are still pending, untouched.

PostgreSQL here trusts 127.0.0.1, so the password of the role the test creates is not checked,
but it is in the URL the relay is given, which is what matters.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from helpers.network import free_port
from ledger import Ledger
from rig import RELAY_EXECUTABLE, STOP_SECONDS, SurveyEvents, commit_backlog, wait_until
from sqlalchemy.engine import Engine

from relay import _store as store
from relay._tables import OutboxState, audit, outbox
from relay.testing.mixpanel_standin import MixpanelStandin

#: How long a scenario may wait for the relay to have shown each behaviour it must show.
SCENARIO_SECONDS = 45.0
#: Every job failing or succeeding several times within a scenario.
FAST_JOBS = {
    "RELAY_LOG_LEVEL": "INFO",
    "RELAY_LOG_FORMAT": "json",
    "RELAY_POLL_MIN_SECONDS": "0.1",
    "RELAY_POLL_MAX_SECONDS": "0.3",
    "RELAY_GAUGE_INTERVAL_SECONDS": "0.5",
    "RELAY_RETENTION_INTERVAL_SECONDS": "0.5",
    "RELAY_CONNECT_TIMEOUT_SECONDS": "2",
    "RELAY_AUTH_FAILURE_PAUSE_SECONDS": "1",
}
#: Log events the outage scenario must have seen, each with a traceback.
OUTAGE_EVENTS = (
    "drain_tick_failed",
    "gauges_failed",
    "retention_failed",
    "watch_connection_failed",
)
PENDING_EVENTS = 12


def _unique(prefix: str) -> str:
    """A made-up secret that occurs nowhere else (URL-safe, so it is spelled once)."""
    return f"{prefix}{secrets.token_hex(12)}"


@dataclass
class Secrets:
    """The made-up secrets of one scenario."""

    password: str
    mixpanel_secret: str

    def found_in(self, text: str) -> list[str]:
        """Which of the secrets ``text`` contains (by name)."""
        return [
            name
            for name, value in (("password", self.password), ("mixpanel", self.mixpanel_secret))
            if value in text
        ]


@pytest.fixture
def made_up() -> Secrets:
    """Fresh secrets for one scenario."""
    return Secrets(password=_unique("dbpw"), mixpanel_secret=_unique("mpsecret"))


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A loopback port held bound but never listening: every connection is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def _url(form: str, *, user: str, password: str, port: int, database: str) -> str:
    if form == "userinfo":
        return f"postgresql+psycopg://{user}:{password}@127.0.0.1:{port}/{database}"
    return f"postgresql+psycopg://{user}@127.0.0.1:{port}/{database}?password={password}"


class Daemon:
    """One ``relay run`` with stdout and stderr each in a file of their own."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.stdout_path = folder / "relay.stdout"
        self.stderr_path = folder / "relay.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [str(RELAY_EXECUTABLE), "run"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )

    def printed(self) -> str:
        """Every byte the process printed so far, stdout then stderr."""
        return (self.stdout_path.read_bytes() + self.stderr_path.read_bytes()).decode(
            errors="replace"
        )

    def metrics_port(self) -> int | None:
        """The port of /metrics, once the daemon logged it."""
        found = re.search(r'"event":"metrics_server_started"[^\n]*"port":(\d+)', self.printed())
        if found is None:
            found = re.search(r'"port":(\d+)[^\n]*"event":"metrics_server_started"', self.printed())
        return None if found is None else int(found.group(1))

    def stop(self) -> int:
        """SIGTERM and wait; SIGKILL if it does not stop in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=STOP_SECONDS)

    def tail(self) -> str:
        """The last lines printed, for failure messages."""
        return "\n".join(line[:300] for line in self.printed().splitlines()[-8:])


def _env(url: str, standin: MixpanelStandin, made_up: Secrets) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    return {
        **base,
        "RELAY_METRICS_PORT": str(free_port()),  # 0 would disable the endpoint
        **standin.settings_env(),
        **FAST_JOBS,
        "RELAY_DATABASE_URL": url,
        # A wrong secret: every /import is answered 401.
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET": made_up.mixpanel_secret,
    }


def _endpoints(daemon: Daemon) -> str:
    port = wait_until(daemon.metrics_port, timeout=SCENARIO_SECONDS, what="metrics port")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        metrics = client.get("/metrics")
        health = client.get("/healthz")
    assert metrics.status_code == 200
    return metrics.text + "\n" + health.text


def _commit_pending(engine: Engine) -> frozenset[str]:
    ledger = Ledger("secrets")
    commit_backlog(engine, ledger, SurveyEvents(), PENDING_EVENTS)
    return ledger.committed_ids


def _still_pending_untouched(engine: Engine, insert_ids: frozenset[str]) -> None:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.insert_id, outbox.c.state, outbox.c.attempts).where(
                outbox.c.insert_id.in_(sorted(insert_ids))
            )
        ).all()
    assert {r.insert_id for r in rows} == insert_ids, "committed events are missing"
    assert {(r.state, r.attempts) for r in rows} == {(OutboxState.PENDING.value, 0)}


def _everything_stored(engine: Engine) -> str:
    """Every column of every outbox and audit row, as text."""
    with engine.connect() as conn:
        rows = [*conn.execute(sa.select(outbox)), *conn.execute(sa.select(audit))]
    return "\n".join(repr(tuple(row)) for row in rows)


# --- the daemon during a database outage --------------------------------------------------------


@pytest.mark.parametrize("form", ["userinfo", "query"])
def test_relay_run_during_a_database_outage_prints_no_secret(
    form: str,
    pg_engine: Engine,
    standin: MixpanelStandin,
    made_up: Secrets,
    dead_port: int,
    tmp_path: Path,
) -> None:
    """Every failing job logs its traceback, yet no byte printed, nor /metrics or /healthz,
    holds the database password or the Mixpanel secret; the outbox is left as it was."""
    committed = _commit_pending(pg_engine)
    url = _url(form, user="relay_app", password=made_up.password, port=dead_port, database="x")
    daemon = Daemon(_env(url, standin, made_up), tmp_path)
    try:
        wait_until(
            lambda: all(f'"{event}"' in daemon.printed() for event in OUTAGE_EVENTS),
            timeout=SCENARIO_SECONDS,
            what="every job to fail on the unreachable database",
            context=daemon.tail,
        )
        served = _endpoints(daemon)
    finally:
        code = daemon.stop()
    printed = daemon.printed()
    assert code == 0, daemon.tail()
    assert '"exception"' in printed  # the tracebacks are there, only without secrets
    assert '"locals"' not in printed
    assert made_up.found_in(printed) == [], "a secret was printed"
    assert made_up.found_in(served) == [], "a secret was served"
    _still_pending_untouched(pg_engine, committed)


# --- the daemon on a reachable database, with a role that has a password ------------------------


@pytest.fixture
def role_with_password(pg_engine: Engine, made_up: Secrets) -> Iterator[str]:
    """A login role with ``made_up.password`` and every right on the relay tables; dropped after."""
    role = f"relay_secret_{secrets.token_hex(4)}"
    admin = sa.create_engine(pg_engine.url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(
                f"CREATE ROLE {role} LOGIN PASSWORD '{made_up.password}'"  # made up, alphanumeric
            )
            conn.exec_driver_sql(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
            conn.exec_driver_sql(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
        yield role
        with admin.connect() as conn:
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
    finally:
        admin.dispose()


def _old_finished_rows(engine: Engine) -> None:
    """Delivered and dead rows past their retention: the daemon's retention deletes them."""
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    with store.transaction(engine) as conn:
        for state in (OutboxState.DELIVERED, OutboxState.DEAD):
            for _ in range(3):
                store.insert_event(
                    conn,
                    values={
                        "insert_id": str(uuid.uuid4()),
                        "event": "svc.test.thing_done",
                        "distinct_id": "user-1",
                        "time_ms": 1_700_000_000_000,
                        "properties": {"organization_id": "org-1"},
                        "state": state.value,
                        "attempts": 1,
                        "last_error": "gone" if state is OutboxState.DEAD else None,
                        "next_attempt_at": long_ago,
                        "created_at": long_ago,
                        "updated_at": long_ago,
                        "finished_at": long_ago,
                    },
                )


def _retention_audited(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(audit).where(audit.c.action == "retention")))


@pytest.mark.parametrize("form", ["userinfo", "query"])
def test_relay_run_with_a_password_and_a_wrong_mixpanel_secret_leaks_neither(
    form: str,
    pg_engine: Engine,
    role_with_password: str,
    standin: MixpanelStandin,
    made_up: Secrets,
    tmp_path: Path,
) -> None:
    """Connected with a password and refused by Mixpanel (401), the relay prints, serves and
    stores neither secret; its automatic retention is audited once; pending rows stay pending."""
    committed = _commit_pending(pg_engine)
    _old_finished_rows(pg_engine)
    url = _url(
        form,
        user=role_with_password,
        password=made_up.password,
        port=pg_engine.url.port or 5432,
        database=str(pg_engine.url.database),
    )
    daemon = Daemon(_env(url, standin, made_up), tmp_path)
    try:
        wait_until(
            lambda: (
                '"mixpanel_auth_failed"' in daemon.printed()
                and '"retention_purged"' in daemon.printed()
                and '"watching"' in daemon.printed()
            ),
            timeout=SCENARIO_SECONDS,
            what="a 401 from the stand-in and a retention run",
            context=daemon.tail,
        )
        served = _endpoints(daemon)
    finally:
        code = daemon.stop()
    printed = daemon.printed()
    assert code == 0, daemon.tail()
    assert standin.stats().by_status.get(401, 0) >= 1
    assert '"auth_error"' in served  # /healthz reports the refusal...
    assert made_up.found_in(printed) == [], "a secret was printed"
    assert made_up.found_in(served) == [], "a secret was served"  # ...without the secret
    assert made_up.found_in(_everything_stored(pg_engine)) == [], "a secret was stored"
    entries = _retention_audited(pg_engine)
    assert [(e.count, e.detail) for e in entries] == [
        (6, "automatic: 3 delivered deleted, 3 dead deleted")
    ]
    _still_pending_untouched(pg_engine, committed)


# --- the CLI -------------------------------------------------------------------------------------


def _cli(
    *args: str, url: str, standin: MixpanelStandin, made_up: Secrets
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env |= {
        **standin.settings_env(),
        "RELAY_DATABASE_URL": url,
        "RELAY_CONNECT_TIMEOUT_SECONDS": "2",
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET": made_up.mixpanel_secret,
    }
    return subprocess.run(
        [str(RELAY_EXECUTABLE), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("form", ["userinfo", "query"])
@pytest.mark.parametrize("command", [["migrate"], ["stats"], ["drain"], ["audit"]])
def test_cli_on_an_unreachable_database_prints_one_line_without_the_password(
    form: str, command: list[str], made_up: Secrets, dead_port: int, standin: MixpanelStandin
) -> None:
    """migrate, stats, drain and audit fail with exit 1 and one line naming the error type,
    never a traceback, a connection string or the password."""
    url = _url(form, user="relay_app", password=made_up.password, port=dead_port, database="x")
    done = _cli(*command, url=url, standin=standin, made_up=made_up)
    assert done.returncode == 1, done.stderr
    assert made_up.found_in(done.stdout + done.stderr) == []
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("relay: ")


@pytest.mark.parametrize("form", ["userinfo", "query"])
def test_relay_migrate_names_the_database_without_its_password(
    form: str,
    role_with_password: str,
    pg_engine: Engine,
    made_up: Secrets,
    standin: MixpanelStandin,
) -> None:
    """A successful migrate says which database it migrated, with the password masked."""
    admin = sa.create_engine(pg_engine.url, isolation_level="AUTOCOMMIT")
    database = f"relay_t_{secrets.token_hex(5)}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {database} OWNER {role_with_password}")
        url = _url(
            form,
            user=role_with_password,
            password=made_up.password,
            port=pg_engine.url.port or 5432,
            database=database,
        )
        done = _cli("migrate", url=url, standin=standin, made_up=made_up)
        assert done.returncode == 0, done.stderr
        assert database in done.stdout
        assert "***" in done.stdout
        assert made_up.found_in(done.stdout + done.stderr) == []
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.dispose()
