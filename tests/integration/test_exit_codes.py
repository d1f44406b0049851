"""Each exit code the README's "Exit codes" table documents, produced by a real command on a
real database against the stand-in on loopback (issue 21, item 10)."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from helpers.tracking import track_numbered
from sqlalchemy.engine import Engine

from relay._event.properties import MixpanelSuperEventPropertiesSchema
from relay._event.registry import register_event
from relay._tables import outbox
from relay.cli import main
from relay.testing.mixpanel_standin import MixpanelStandin

EVENT = "svc.tests.exit_coded"


class ExitCodedSchema(MixpanelSuperEventPropertiesSchema):
    """Test event for the exit codes."""

    n: int


register_event(EVENT, ExitCodedSchema)


pytestmark = pytest.mark.usefixtures("restored_logging")


def _relay(url: str, standin: MixpanelStandin, *args: str, **extra: str) -> Result:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env |= {**standin.settings_env(), "RELAY_LOG_LEVEL": "ERROR", "RELAY_DATABASE_URL": url}
    env |= extra
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def _track(engine: Engine, count: int) -> list[str]:
    return track_numbered(engine, EVENT, count)


def _states(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.state, sa.func.count()).group_by(outbox.c.state)
        ).all()
    return {str(state): int(count) for state, count in rows}


def test_exit_0_when_drain_delivered_everything_due(
    sqlite_engine: Engine, sqlite_url: str, standin: MixpanelStandin
) -> None:
    """0: `relay drain` delivered every due row (and a dry run that changes nothing is 0 too)."""
    _track(sqlite_engine, 4)
    drained = _relay(sqlite_url, standin, "drain")
    assert drained.exit_code == 0, drained.output
    assert _states(sqlite_engine) == {"delivered": 4}
    dry = _relay(sqlite_url, standin, "purge", "--delivered-older-than", "1d", "--dry-run")
    assert dry.exit_code == 0, dry.output


def test_exit_1_when_drain_sent_every_due_row_to_the_dead_letters(
    sqlite_engine: Engine, sqlite_url: str, standin: MixpanelStandin
) -> None:
    """1: a 400 that dead-letters every due row is not success; one line points at them."""
    _track(sqlite_engine, 4)
    standin.fail_next(400, error="some data points in the request failed validation")
    result = _relay(sqlite_url, standin, "drain")
    assert result.exit_code == 1, result.output
    assert "delivered 0, dead 4" in result.stdout
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("relay: 4 due events went to the dead letters")
    assert "relay dead-letters list" in result.stderr
    assert _states(sqlite_engine) == {"dead": 4}


def test_exit_1_when_drain_dead_lettered_some_rows_and_delivered_the_rest(
    sqlite_engine: Engine, sqlite_url: str, standin: MixpanelStandin
) -> None:
    """1: rows Mixpanel refused by `$insert_id` make the run a failure though others landed."""
    ids = _track(sqlite_engine, 4)
    standin.reject_insert_ids(ids[:1])
    result = _relay(sqlite_url, standin, "drain")
    assert result.exit_code == 1, result.output
    assert "delivered 3, dead 1" in result.stdout
    assert result.stderr.startswith("relay: 1 due events went to the dead letters")
    again = _relay(sqlite_url, standin, "drain")
    assert again.exit_code == 0, again.output  # nothing due any more: success


def test_exit_1_when_drain_could_deliver_nothing(
    sqlite_engine: Engine, sqlite_url: str, standin: MixpanelStandin
) -> None:
    """1: a 503 leaves every due row pending with a retry; the run says so and fails."""
    _track(sqlite_engine, 2)
    standin.fail_next(503, times=5)
    result = _relay(sqlite_url, standin, "drain")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("relay: nothing delivered: 2 due events")
    assert _states(sqlite_engine) == {"pending": 2}


def test_exit_2_on_bad_usage_with_nothing_changed(
    sqlite_engine: Engine, sqlite_url: str, standin: MixpanelStandin
) -> None:
    """2: a malformed filter is one line, and no row changes."""
    _track(sqlite_engine, 1)
    result = _relay(sqlite_url, standin, "replay", "--created-after", "yesterday-ish", "--yes")
    assert result.exit_code == 2, result.output
    assert _states(sqlite_engine) == {"pending": 1}


def test_exit_3_on_a_scheme_less_mixpanel_url_before_any_attempt(
    sqlite_engine: Engine, sqlite_url: str, standin: MixpanelStandin
) -> None:
    """3: RELAY_MIXPANEL_API_URL without a scheme is a configuration error; no attempt is used."""
    _track(sqlite_engine, 2)
    host_port = standin.url.removeprefix("http://")
    result = _relay(sqlite_url, standin, "drain", RELAY_MIXPANEL_API_URL=host_port)
    assert result.exit_code == 3, result.output
    assert "RELAY_MIXPANEL_API_URL" in result.stderr
    with sqlite_engine.connect() as conn:
        attempts = conn.execute(sa.select(outbox.c.attempts)).scalars().all()
    assert attempts == [0, 0]
