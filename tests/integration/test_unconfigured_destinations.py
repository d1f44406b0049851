"""Rows waiting for a destination the settings do not configure: ``relay run`` and ``relay
drain`` warn once per such destination with the count at start-up, ``relay stats`` lists them,
and nothing of a row (ids, properties) is ever said."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from helpers.logs import logging_restored, plain_structlog_defaults
from helpers.outbox import states_of
from helpers.waiting import WAIT_SECONDS, wait_for
from sqlalchemy.engine import Engine
from structlog.testing import capture_logs

from relay import _store as store
from relay._config import RelaySettings
from relay._daemon.daemon import run_daemon
from relay._store.stats import pending_by_destination
from relay._tables import OutboxState
from relay.cli import main
from relay.testing.mixpanel_standin import MixpanelStandin

#: A property value and a distinct-id prefix no line about a destination may show.
MARKER = "row-content-marker"
#: What :func:`_seed` leaves waiting for destinations that are not configured.
WAITING = {"gone": 3, "old-eu": 2}


def _add(engine: Engine, destination: str, count: int, state: OutboxState | None = None) -> None:
    now = dt.datetime.now(dt.UTC)
    with store.transaction(engine) as conn:
        for n in range(count):
            values = {
                "insert_id": str(uuid.uuid4()),
                "event": "svc.test.thing_done",
                "distinct_id": f"{MARKER}-{destination}-{n}",
                "time_ms": int((time.time() - 60) * 1000),
                "properties": {"organization_id": MARKER},
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
                "destination": destination,
            }
            if state is not None:
                values |= {"state": state.value, "finished_at": now}
            store.insert_event(conn, values=values)


def _seed(engine: Engine) -> None:
    """One row due for default (configured); 3 pending rows (and a dead and a delivered one)
    for ``gone`` and 2 for ``old-eu``, neither of them configured."""
    _add(engine, "default", 1)
    _add(engine, "gone", 3)
    _add(engine, "gone", 1, OutboxState.DEAD)
    _add(engine, "gone", 1, OutboxState.DELIVERED)
    _add(engine, "old-eu", 2)


def _relay(engine: Engine, *args: str, env: dict[str, str] | None = None) -> Result:
    url = engine.url.render_as_string(hide_password=False)
    with logging_restored():
        return CliRunner().invoke(
            main, ["--database-url", url, *args], env=env, catch_exceptions=False
        )


def _warnings(lines: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [
        (line["destination"], line["pending"])
        for line in lines
        if line.get("event") == "destination_not_configured"
    ]


def test_pending_by_destination_leaves_out_the_given_destinations(engine: Engine) -> None:
    """The grouped read counts pending rows only, per destination, without those excluded."""
    _seed(engine)
    with store.transaction(engine) as conn:
        assert pending_by_destination(conn) == {"default": 1, **WAITING}
        assert pending_by_destination(conn, excluding=("default",)) == WAITING
        assert pending_by_destination(conn, excluding=("default", "gone", "old-eu")) == {}


def test_relay_drain_warns_once_per_unconfigured_destination_with_its_count(
    engine: Engine, standin: MixpanelStandin, no_relay_env: None
) -> None:
    """``relay drain`` delivers default's row, leaves the rows of ``gone`` and ``old-eu``
    untouched, and logs one warning for each naming it and its pending rows: no id, no
    property."""
    _seed(engine)
    env = standin.settings_env() | {"RELAY_LOG_FORMAT": "json"}

    result = _relay(engine, "drain", env=env)

    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert _warnings(lines) == list(WAITING.items())
    warned = [line for line in lines if line.get("event") == "destination_not_configured"]
    assert all(line["level"] == "warning" for line in warned)
    assert all(line["configured"] == ["default"] for line in warned)
    assert MARKER not in result.stderr
    assert states_of(engine, "default") == [("delivered", 1)]
    assert states_of(engine, "gone")[:3] == [("pending", 0)] * 3
    assert states_of(engine, "old-eu") == [("pending", 0)] * 2


def test_relay_drain_says_nothing_when_every_pending_row_is_configured(
    engine: Engine, standin: MixpanelStandin, no_relay_env: None
) -> None:
    """Only rows of configured destinations pending (a dead row of another one does not
    count): no warning."""
    _add(engine, "default", 2)
    _add(engine, "gone", 1, OutboxState.DEAD)
    env = standin.settings_env() | {"RELAY_LOG_FORMAT": "json"}

    result = _relay(engine, "drain", env=env)

    assert result.exit_code == 0, result.output
    assert "destination_not_configured" not in result.stderr


@pytest.fixture
def daemon_logs(engine: Engine, standin: MixpanelStandin) -> Iterator[list[dict[str, Any]]]:
    """:func:`_seed`'s rows, then ``run_daemon`` in a thread delivering default to ``standin``,
    its log lines captured. The rows are there before the daemon starts: it counts them once, at
    its first contact with the database, and a seed still being written then would be half
    counted."""
    _seed(engine)
    settings = RelaySettings(
        database_url=engine.url.render_as_string(hide_password=False),
        mixpanel_api_url=standin.url,
        mixpanel_app_api_url=standin.app_api_url,
        mixpanel_project_id=standin.project_id,
        mixpanel_service_account_username=standin.username,
        mixpanel_service_account_secret=standin.secret,
        metrics_port=0,
        poll_min_seconds=0.05,
        poll_max_seconds=0.2,
    )
    stop = threading.Event()
    exit_code: list[int] = []
    # From structlog's defaults: a configuration an earlier test on this worker left (a level
    # filter above WARNING, another renderer) must not hide the lines this fixture captures.
    with logging_restored():
        plain_structlog_defaults()
        with capture_logs() as logged:
            thread = threading.Thread(
                target=lambda: exit_code.append(run_daemon(settings, stop_event=stop)), daemon=True
            )
            thread.start()
            try:
                yield logged
            finally:
                stop.set()
                thread.join(timeout=WAIT_SECONDS)
    assert exit_code == [0]


def test_relay_run_warns_once_per_unconfigured_destination_at_first_contact(
    engine: Engine, standin: MixpanelStandin, daemon_logs: list[dict[str, Any]]
) -> None:
    """The daemon logs one warning per destination it will not drain, with its pending rows,
    at its first contact with the database, and never again while it runs; it delivers the
    configured destination's rows meanwhile."""
    wait_for(lambda: states_of(engine, "default") == [("delivered", 1)], "default delivered")
    _add(engine, "default", 1)  # more passes of the drain: no new warning
    wait_for(lambda: states_of(engine, "default") == [("delivered", 1)] * 2, "the second row")

    assert _warnings(daemon_logs) == list(WAITING.items())
    assert MARKER not in repr(daemon_logs)
    assert states_of(engine, "old-eu") == [("pending", 0)] * 2
    assert standin.stats().unique == 2


def test_stats_lists_the_rows_waiting_for_an_unconfigured_destination(
    engine: Engine, no_relay_env: None
) -> None:
    """``relay stats`` names each unconfigured destination with its pending rows (in the text
    and as ``pending_by_unconfigured_destination`` in --json); ``--destination`` narrows it."""
    _seed(engine)

    everything = _relay(engine, "stats", "--json")
    assert everything.exit_code == 0, everything.output
    assert orjson.loads(everything.stdout)["pending_by_unconfigured_destination"] == WAITING

    text = _relay(engine, "stats").stdout
    section = text[text.index("waiting for a destination that is not configured") :]
    rows = [line.split() for line in section.splitlines()[2:] if line.strip()]
    assert rows == [["3", "gone"], ["2", "old-eu"]]

    gone = orjson.loads(_relay(engine, "stats", "--destination", "gone", "--json").stdout)
    assert gone["pending_by_unconfigured_destination"] == {"gone": 3}
    default = orjson.loads(_relay(engine, "stats", "--destination", "default", "--json").stdout)
    assert default["pending_by_unconfigured_destination"] == {}
    assert "not configured" not in _relay(engine, "stats", "--destination", "default").stdout
