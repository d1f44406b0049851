"""`relay migrate`, `relay drain` and `relay run` through the console entry point."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from helpers.tracking import track_numbered
from sqlalchemy.engine import Engine

from relay import _store as store
from relay._database import create_engine
from relay._event.properties import MixpanelSuperEventPropertiesSchema
from relay._event.registry import register_event
from relay._store.throttle import read_throttle, record_throttle
from relay._tables import outbox
from relay.cli import main
from relay.testing.mixpanel_standin import MixpanelStandin

EVENT = "svc.tests.cli_drained"


class CliDrainedSchema(MixpanelSuperEventPropertiesSchema):
    """Test event for the CLI."""

    n: int


register_event(EVENT, CliDrainedSchema)


pytestmark = pytest.mark.usefixtures("restored_logging")


@pytest.fixture
def runner(standin: MixpanelStandin, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CLI runner whose environment points the relay at the stand-in."""
    for key in list(os.environ):
        if key.startswith("RELAY_"):
            monkeypatch.delenv(key)
    for key, value in standin.settings_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RELAY_LOG_LEVEL", "WARNING")
    return CliRunner()


def _track(engine: Engine, count: int) -> list[str]:
    return track_numbered(engine, EVENT, count)


def test_migrate_creates_the_tables_in_an_empty_database(tmp_path: Path, runner: CliRunner) -> None:
    """`relay migrate` on a new SQLite file creates the outbox, audit and version tables."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    result = runner.invoke(main, ["--database-url", url, "migrate"])
    assert result.exit_code == 0, result.output
    engine = create_engine(url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"relay_outbox", "relay_audit", "relay_alembic_version"} <= tables


def test_drain_delivers_everything_due_and_exits_zero(
    engine: Engine, db_url: str, runner: CliRunner, standin: MixpanelStandin
) -> None:
    """`relay drain` sends every due row once, reports the totals and exits 0."""
    ids = _track(engine, 2500)
    result = runner.invoke(main, ["--database-url", db_url, "drain", "--json"])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout.strip().splitlines()[-1])["delivered"] == 2500
    assert {key[3] for key in standin.unique_events()} == set(ids)
    with engine.connect() as conn:
        states = conn.execute(sa.select(outbox.c.state).distinct()).scalars().all()
    assert states == ["delivered"]


def test_drain_waits_out_mixpanels_throttle_then_delivers_everything(
    engine: Engine, db_url: str, runner: CliRunner, standin: MixpanelStandin
) -> None:
    """A throttle another relay booked makes `relay drain` wait, not exit with rows left."""
    _track(engine, 3)
    now = dt.datetime.now(dt.UTC)
    with store.transaction(engine) as conn:
        record_throttle(conn, now=now - dt.timedelta(seconds=10), delay=lambda _: 1.0, actor="a")
        booked = record_throttle(conn, now=now, delay=lambda _: 1.5, actor="a")
    assert booked.level == 2

    result = runner.invoke(main, ["--database-url", db_url, "drain", "--json"])

    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout.strip().splitlines()[-1])["delivered"] == 3
    assert standin.stats().unique == 3
    with engine.connect() as conn:
        assert read_throttle(conn) is None


def test_drain_with_rejected_credentials_exits_3_and_leaves_rows_untouched(
    sqlite_engine: Engine, sqlite_url: str, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 401 makes `relay drain` exit 3 with the reason; rows keep attempts 0 and stay pending."""
    _track(sqlite_engine, 3)
    monkeypatch.setenv("RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET", "wrong")
    result = runner.invoke(main, ["--database-url", sqlite_url, "drain"])
    assert result.exit_code == 3
    assert "Mixpanel refused the credentials" in result.stderr
    assert "wrong" not in result.output
    with sqlite_engine.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.state, outbox.c.attempts)).all()
    assert rows == [("pending", 0)] * 3


def test_commands_without_credentials_exit_3_naming_the_missing_settings(
    sqlite_url: str, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no Mixpanel credentials, drain and run exit 3 and say which variables to set."""
    for key in list(os.environ):
        if key.startswith("RELAY_MIXPANEL"):
            monkeypatch.delenv(key)
    for command in ("drain", "run"):
        result = runner.invoke(main, ["--database-url", sqlite_url, command])
        assert result.exit_code == 3, (command, result.output)
    drained = runner.invoke(main, ["--database-url", sqlite_url, "drain"])
    assert "RELAY_MIXPANEL_PROJECT_TOKEN" in drained.stderr


def test_drain_closes_the_profile_client_it_opened(
    engine: Engine,
    db_url: str,
    runner: CliRunner,
    standin: MixpanelStandin,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`relay drain` delivering a profile update leaves no Mixpanel connection open behind it
    (it opened a profile client and never closed it: an unclosed-socket ResourceWarning)."""
    import gc  # noqa: PLC0415
    import warnings  # noqa: PLC0415

    from sqlalchemy.orm import Session  # noqa: PLC0415

    import relay  # noqa: PLC0415

    with Session(engine) as session:
        relay.update_profile(
            session, distinct_id="u-1", operation="$set", properties={"plan": "pro"}, strict=True
        )
        session.commit()
    monkeypatch.setenv("RELAY_MIXPANEL_PROJECT_TOKEN", standin.project_token)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        result = runner.invoke(main, ["--database-url", db_url, "drain", "--json"])
        gc.collect()
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output)["delivered"] == 1
    assert standin.profiles()[("user", "", "u-1")] == {"plan": "pro"}
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == [], [str(w.message) for w in leaks]
