"""The ``relay.testing`` pytest plugin: strict tracking when opted in, and the outbox capture."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from hr_catalog import (
    DeliveryChannel,
    EmployeeInfo,
    MixPanelEvent,
    StaticEmployeeDirectory,
    SurveyTrackHelper,
    SurveyType,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from relay._event.properties import SystemRole
from relay._tracking import strict_tracking
from relay.testing.mixpanel_standin import MixpanelStandin
from relay.testing.plugin import EagerDrain, OutboxCapture

EMPLOYEE_ID = str(uuid.uuid4())
ORG_ID = str(uuid.uuid4())
DIRECTORY = StaticEmployeeDirectory(
    {EMPLOYEE_ID: EmployeeInfo(EMPLOYEE_ID, ORG_ID, "Acme", SystemRole.EMPLOYEE)}
)


def _deliver(
    session: Session | Connection, *, survey_id: str, question_count: int = 5
) -> str | None:
    with strict_tracking():
        return SurveyTrackHelper.track_survey_delivered(
            session,
            employee_id=EMPLOYEE_ID,
            survey_id=survey_id,
            survey_run_id=str(uuid.uuid4()),
            survey_type=SurveyType.PULSE,
            channel=DeliveryChannel.IN_APP,
            question_count=question_count,
            directory=DIRECTORY,
        )


# --- OutboxCapture, the object behind the relay_outbox fixture --------------------------------


def test_events_include_rows_of_the_uncommitted_transaction(engine: Engine) -> None:
    """Given the test's session, ``events`` sees rows its open transaction has written."""
    capture = OutboxCapture()
    with Session(engine) as session, session.begin():
        insert_id = _deliver(session, survey_id="s-1")
        events = capture.events(session)
        assert [e.insert_id for e in events] == [insert_id]
        assert events[0].properties["survey_id"] == "s-1"
        assert events[0].state == "pending"
        session.rollback()
    assert capture.events(engine) == []


def test_events_on_an_engine_see_only_committed_rows(engine: Engine) -> None:
    """Given an engine, ``events`` reads on its own connection and sees committed rows only."""
    capture = OutboxCapture()
    with Session(engine) as session:
        with session.begin():
            _deliver(session, survey_id="s-1")
        with session.begin():
            _deliver(session, survey_id="s-2")
            assert [e.properties["survey_id"] for e in capture.events(engine)] == ["s-1"]
    assert [e.properties["survey_id"] for e in capture.events(engine)] == ["s-1", "s-2"]


def test_events_filter_by_event_name(engine: Engine) -> None:
    """``events(bind, event=...)`` returns only events of that name."""
    capture = OutboxCapture()
    with engine.begin() as conn:
        _deliver(conn, survey_id="s-1")
        assert len(capture.events(conn, event=MixPanelEvent.SURVEY_DELIVERED)) == 1
        assert capture.events(conn, event=MixPanelEvent.ACTION_PLAN_CREATED) == []


def test_assert_tracked_returns_the_matching_event(engine: Engine) -> None:
    """``assert_tracked`` returns the one event whose properties include the expected ones."""
    capture = OutboxCapture()
    with Session(engine) as session, session.begin():
        _deliver(session, survey_id="s-1")
        insert_id = _deliver(session, survey_id="s-2")
        captured = capture.assert_tracked(
            session,
            MixPanelEvent.SURVEY_DELIVERED,
            distinct_id=EMPLOYEE_ID,
            survey_id="s-2",
            survey_type=SurveyType.PULSE,
        )
    assert captured.insert_id == insert_id


def test_assert_tracked_names_the_property_that_differs(engine: Engine) -> None:
    """When no event matches, the message lists each candidate's differing properties."""
    capture = OutboxCapture()
    with Session(engine) as session, session.begin():
        _deliver(session, survey_id="s-1", question_count=5)
        with pytest.raises(AssertionError) as info:
            capture.assert_tracked(
                session, MixPanelEvent.SURVEY_DELIVERED, question_count=7, colour="red"
            )
    message = str(info.value)
    assert "question_count: expected 7, got 5" in message
    assert "colour: expected 'red', but the event has no such property" in message


def test_assert_tracked_checks_the_distinct_id(engine: Engine) -> None:
    """A ``distinct_id`` given to ``assert_tracked`` must match the event's."""
    capture = OutboxCapture()
    with Session(engine) as session, session.begin():
        _deliver(session, survey_id="s-1")
        with pytest.raises(AssertionError, match="distinct_id: expected 'someone-else'"):
            capture.assert_tracked(
                session, MixPanelEvent.SURVEY_DELIVERED, distinct_id="someone-else"
            )


def test_assert_tracked_reports_what_was_tracked_instead(engine: Engine) -> None:
    """When no event of the name exists, the message lists the event names that do."""
    capture = OutboxCapture()
    with Session(engine) as session, session.begin():
        _deliver(session, survey_id="s-1")
        with pytest.raises(AssertionError) as info:
            capture.assert_tracked(session, MixPanelEvent.ACTION_PLAN_CREATED)
    assert "found none; tracked: svc.surveys.survey_delivered" in str(info.value)


def test_assert_tracked_refuses_an_ambiguous_match(engine: Engine) -> None:
    """When several events match, ``assert_tracked`` fails instead of picking one."""
    capture = OutboxCapture()
    with Session(engine) as session, session.begin():
        _deliver(session, survey_id="s-1")
        _deliver(session, survey_id="s-2")
        with pytest.raises(
            AssertionError, match=r"2 'svc\.surveys\.survey_delivered' events match"
        ):
            capture.assert_tracked(session, MixPanelEvent.SURVEY_DELIVERED)


# --- the plugin in a host project, run by a pytest of its own -------------------------------

HOST_TESTS = """
import uuid

import pytest
from sqlalchemy.orm import Session

from hr_catalog import (
    DeliveryChannel, EmployeeInfo, MixPanelEvent, StaticEmployeeDirectory,
    SurveyTrackHelper, SurveyType,
)
from relay._database import create_engine
from relay._errors import RelayError
from relay._tables import metadata
from relay._tracking import is_strict, track


def test_strict_tracking_is_on():
    assert is_strict()


def test_a_broken_event_raises(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'host.db'}")
    metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        with pytest.raises(RelayError):
            track(session, event="svc.nothing.registered", distinct_id="u1", properties={})
    engine.dispose()


def test_outbox_fixture_sees_the_uncommitted_event(tmp_path, relay_outbox):
    engine = create_engine(f"sqlite:///{tmp_path / 'host.db'}")
    metadata.create_all(engine)
    employee_id = str(uuid.uuid4())
    directory = StaticEmployeeDirectory({employee_id: EmployeeInfo(employee_id, "o1", "Org", None)})
    with Session(engine) as session, session.begin():
        SurveyTrackHelper.track_survey_delivered(
            session, employee_id=employee_id, survey_id="s-9", survey_run_id="r-9",
            survey_type=SurveyType.ONBOARDING, channel=DeliveryChannel.EMAIL,
            question_count=3, directory=directory,
        )
        captured = relay_outbox.assert_tracked(
            session, MixPanelEvent.SURVEY_DELIVERED, survey_id="s-9", organization_name="Org"
        )
        assert captured.distinct_id == employee_id
        session.rollback()
    assert relay_outbox.events(engine) == []
    engine.dispose()
"""

ASYNC_HOST_TESTS = """
import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from relay import (
    MixpanelSuperEventPropertiesSchema, RelayError, SystemRole, atrack, configure_sqlite,
    is_strict, metadata, register_event,
)


class PingSchema(MixpanelSuperEventPropertiesSchema):
    note: str


register_event("svc.host.ping_sent", PingSchema)
PROPS = {
    "employee_id": str(uuid.uuid4()), "organization_id": "o1", "organization_name": "Org",
    "role": SystemRole.MANAGER, "impersonation": False, "note": "hello",
}


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_strict_tracking_is_on_in_an_async_test():
    assert is_strict()


@pytest.mark.anyio
async def test_async_outbox_fixture_sees_the_uncommitted_event(tmp_path, relay_outbox):
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'host.db'}")
    configure_sqlite(engine.sync_engine)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    async with AsyncSession(engine) as session, session.begin():
        with pytest.raises(RelayError):
            await atrack(session, event="svc.nothing.registered", distinct_id="u1", properties={})
        await atrack(session, event="svc.host.ping_sent", distinct_id="u1", properties=PROPS)
        captured = await relay_outbox.aassert_tracked(session, "svc.host.ping_sent", note="hello")
        assert captured.distinct_id == "u1"
        await session.rollback()
    assert await relay_outbox.aevents(engine) == []
    await engine.dispose()
"""

BYSTANDER_TESTS = """
import pytest

from relay._tracking import is_strict


def test_strict_tracking_is_off():
    assert not is_strict()


def test_outbox_fixture_is_absent(request):
    with pytest.raises(pytest.FixtureLookupError):
        request.getfixturevalue("relay_outbox")
"""


def _run_pytest(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", "."],
        cwd=project,
        # The host's catalog: the tests' HR events (relay ships none).
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_opted_in_project_gets_strict_tracking_and_the_outbox_fixture(tmp_path: Path) -> None:
    """A project listing the plugin in ``pytest_plugins`` runs strict and has ``relay_outbox``."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["relay.testing.plugin"]\n')
    (tmp_path / "test_host.py").write_text(textwrap.dedent(HOST_TESTS))
    result = _run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_the_fixtures_work_in_async_tests(tmp_path: Path) -> None:
    """Under anyio's pytest plugin, an async test runs strict (the autouse fixture's context
    reaches the test's task) and reads the outbox through an AsyncSession or AsyncEngine."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["relay.testing.plugin"]\n')
    (tmp_path / "test_async_host.py").write_text(textwrap.dedent(ASYNC_HOST_TESTS))
    result = _run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_project_that_does_not_opt_in_is_untouched(tmp_path: Path) -> None:
    """Without ``pytest_plugins``, tracking stays fire-and-forget and no fixture appears."""
    (tmp_path / "test_bystander.py").write_text(textwrap.dedent(BYSTANDER_TESTS))
    result = _run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_eager_drain_delivers_committed_events_to_the_standin(engine: Engine) -> None:
    """EagerDrain sends what a test committed to the stand-in, with the stored dedup key."""
    with engine.begin() as conn:
        insert_id = _deliver(conn, survey_id="s-1")
    with MixpanelStandin() as standin:
        result = EagerDrain(standin)(engine)
        (accepted,) = standin.accepted_events()
    assert result.delivered == 1
    assert accepted["event"] == MixPanelEvent.SURVEY_DELIVERED
    assert accepted["properties"]["$insert_id"] == insert_id


STANDINS_TESTS = """
from relay.testing import write_destinations_file


def test_one_stand_in_per_destination(mixpanel_standins, tmp_path):
    standins = mixpanel_standins(us="us", eu="eu")
    assert [s.region for s in standins.values()] == ["us", "eu"]
    assert standins["us"].url != standins["eu"].url
    assert standins["us"].project_id != standins["eu"].project_id
    env = write_destinations_file(str(tmp_path / "d.toml"), standins)
    assert "RELAY_DESTINATION_EU_SERVICE_ACCOUNT_SECRET" in env
"""


def test_mixpanel_standins_starts_one_running_stand_in_per_destination(tmp_path: Path) -> None:
    """The plugin's ``mixpanel_standins(us="us", eu="eu")`` gives two running, distinct
    stand-ins of those regions."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["relay.testing.plugin"]\n')
    (tmp_path / "test_regions.py").write_text(STANDINS_TESTS)
    result = _run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
