"""The daemon with two destinations: one drain each, side by side, health and metrics per project.

The daemon runs in a thread of the test (``run_daemon`` with a stop event), against two
stand-ins (each its project, region and application API, so the check before a destination's
first delivery really runs); every wait polls the database or the endpoints against a deadline.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from helpers.outbox import states_of
from helpers.waiting import WAIT_SECONDS, wait_for
from sqlalchemy.engine import Engine

from relay import _store as store
from relay._config import RelaySettings
from relay._daemon.daemon import run_daemon
from relay.testing.mixpanel_standin import MixpanelStandin


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return int(exc.code), bytes(exc.read())


def _eu_failing(port: int) -> dict[str, Any] | None:
    """/healthz's body once it answers 503 with an auth error for EU, else ``None``."""
    status, body = _get(port, "/healthz")
    health: dict[str, Any] = json.loads(body)
    if status == 503 and health["destinations"]["eu"]["auth_error"]:
        return health
    return None


def _add(engine: Engine, destination: str, count: int) -> None:
    now = dt.datetime.now(dt.UTC)
    with store.transaction(engine) as conn:
        for n in range(count):
            store.insert_event(
                conn,
                values={
                    "insert_id": str(uuid.uuid4()),
                    "event": "svc.test.thing_done",
                    "distinct_id": f"{destination}-{n}",
                    "time_ms": int((time.time() - 60) * 1000),
                    "properties": {"organization_id": f"org-{destination}"},
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                    "destination": destination,
                },
            )


@pytest.fixture
def us() -> Iterator[MixpanelStandin]:
    """The US project's stand-in (the default destination)."""
    with MixpanelStandin(project_id="1001", username="us-sa", secret="us-secret") as s:
        yield s


@pytest.fixture
def eu() -> Iterator[MixpanelStandin]:
    """The EU project's stand-in."""
    with MixpanelStandin(project_id="2002", username="eu-sa", secret="eu-secret", region="eu") as s:
        yield s


@pytest.fixture
def daemon(pg_engine: Engine, us: MixpanelStandin, eu: MixpanelStandin) -> Iterator[dict[str, Any]]:
    """``run_daemon`` in a thread, delivering default to ``us`` and "eu" to ``eu``."""
    port = _free_port()
    settings = RelaySettings(
        database_url=pg_engine.url.render_as_string(hide_password=False),
        mixpanel_api_url=us.url,
        mixpanel_app_api_url=us.app_api_url,
        mixpanel_project_id=us.project_id,
        mixpanel_service_account_username=us.username,
        mixpanel_service_account_secret=us.secret,
        destinations={
            "eu": {
                "region": "eu",
                "api_url": eu.url,
                "app_api_url": eu.app_api_url,
                "project_id": eu.project_id,
                "service_account_username": eu.username,
                "service_account_secret": eu.secret,
            }
        },
        metrics_port=port,
        auth_failure_pause_seconds=1.0,
        poll_min_seconds=0.05,
        poll_max_seconds=0.5,
    )
    stop = threading.Event()
    exit_code: list[int] = []
    thread = threading.Thread(
        target=lambda: exit_code.append(run_daemon(settings, stop_event=stop)), daemon=True
    )
    thread.start()
    try:
        yield {"port": port, "stop": stop, "thread": thread, "exit_code": exit_code}
    finally:
        stop.set()
        thread.join(timeout=WAIT_SECONDS)


def test_a_refused_eu_secret_pauses_only_eu_and_health_names_it(
    pg_engine: Engine, us: MixpanelStandin, eu: MixpanelStandin, daemon: dict[str, Any]
) -> None:
    """EU's secret revoked after its first deliveries: its 401 pauses only EU, US rows are
    delivered meanwhile; /healthz and /metrics name EU; EU resumes once it accepts again."""
    _add(pg_engine, "eu", 1)
    _add(pg_engine, "default", 1)
    wait_for(lambda: eu.stats().unique == 1 and us.stats().unique == 1, "first deliveries")
    eu.refuse_credentials()
    _add(pg_engine, "eu", 4)
    _add(pg_engine, "default", 4)
    port = daemon["port"]

    wait_for(lambda: states_of(pg_engine, "default") == [("delivered", 1)] * 5, "US delivered")
    wait_for(lambda: eu.stats().by_status.get(401), "EU refusing")
    health = wait_for(lambda: _eu_failing(port), "/healthz naming EU's problem")
    assert health["destinations"]["eu"]["status"] == "failing"
    assert "401" in health["destinations"]["eu"]["auth_error"]
    assert health["destinations"]["default"]["auth_error"] is None
    metrics = _get(port, "/metrics")[1].decode()
    assert 'relay_auth_failing{destination="eu"} 1.0' in metrics
    assert 'relay_auth_failing{destination="default"} 0.0' in metrics
    assert 'relay_delivered_total{destination="default"} 5.0' in metrics
    assert states_of(pg_engine, "eu") == [("delivered", 1)] + [("pending", 0)] * 4
    assert eu.stats().unique == 1
    assert us.stats().unique == 5

    eu.refuse_credentials(False)  # the operator fixes the EU project's service account
    wait_for(lambda: states_of(pg_engine, "eu") == [("delivered", 1)] * 5, "EU delivered")
    wait_for(lambda: _get(port, "/healthz")[0] == 200, "/healthz ok again")
    assert eu.stats().unique == 5
    assert us.stats().unique == 5
    daemon["stop"].set()
    daemon["thread"].join(timeout=WAIT_SECONDS)
    assert daemon["exit_code"] == [0]


def test_a_destination_whose_project_lives_in_another_region_is_stopped_before_any_send(
    pg_engine: Engine, us: MixpanelStandin, eu: MixpanelStandin, daemon: dict[str, Any]
) -> None:
    """The check before EU's first delivery finds its project elsewhere: EU sends no event,
    its rows stay untouched and /healthz names it, while US delivers; fixed, EU delivers."""
    eu.move_project("us")  # the EU destination's project is really a US one
    _add(pg_engine, "eu", 3)
    _add(pg_engine, "default", 3)
    port = daemon["port"]

    wait_for(lambda: states_of(pg_engine, "default") == [("delivered", 1)] * 3, "US delivered")
    health = wait_for(lambda: _eu_failing(port), "/healthz naming EU's problem")
    assert "another region" in health["destinations"]["eu"]["auth_error"]
    assert health["destinations"]["default"]["status"] == "ok"
    assert states_of(pg_engine, "eu") == [("pending", 0)] * 3
    assert eu.stats().unique == 0
    assert eu.stats().requests == 0  # not one /import with an event, only the check's GETs

    eu.move_project("eu")
    wait_for(lambda: states_of(pg_engine, "eu") == [("delivered", 1)] * 3, "EU delivered")
    wait_for(lambda: _get(port, "/healthz")[0] == 200, "/healthz ok again")
