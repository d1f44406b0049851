"""The catalog helpers against real databases: one outbox row each, identity from the directory."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from hr_catalog import (
    ActionPlanSource,
    AuthTrackHelper,
    CoreTrackHelper,
    DeliveryChannel,
    EmployeeInfo,
    HrisUploadTrigger,
    LoginMethod,
    MapTrackHelper,
    MixPanelEvent,
    OrganizationInfo,
    RiskLevel,
    RiskTrackHelper,
    SurveyTrackHelper,
    SurveyType,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from relay._errors import EventValidationError, StoreError
from relay._event.properties import datetime_to_timestamp_ms
from relay._tracking import cron_run, strict_tracking
from relay.contrib.sqlalchemy_directory import directory_metadata, employees, organizations
from relay.testing.plugin import CapturedEvent, OutboxCapture

ORG_ID = str(uuid.uuid4())
ORG_NAME = "Acme Analytics"
MANAGER_ID = str(uuid.uuid4())
NO_ROLE_ID = str(uuid.uuid4())
ODD_ROLE_ID = str(uuid.uuid4())


@pytest.fixture
def directory_tables(engine: Engine) -> Iterator[Engine]:
    """The host's organizations/employees tables, with one organisation and three employees."""
    directory_metadata.drop_all(engine)
    directory_metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(organizations), [{"id": ORG_ID, "name": ORG_NAME}])
        conn.execute(
            sa.insert(employees),
            [
                {"id": MANAGER_ID, "organization_id": ORG_ID, "role": "manager"},
                {"id": NO_ROLE_ID, "organization_id": ORG_ID, "role": None},
                {"id": ODD_ROLE_ID, "organization_id": ORG_ID, "role": "intern"},
            ],
        )
    try:
        yield engine
    finally:
        directory_metadata.drop_all(engine)


@dataclass(frozen=True)
class HelperCase:
    """One catalog helper, the arguments of its own event and the properties they become."""

    event: str
    method: Callable[..., str | None]
    kwargs: dict[str, Any]
    expected: dict[str, Any]


HELPER_CASES = {
    "auth": HelperCase(
        MixPanelEvent.USER_LOGGED_IN,
        AuthTrackHelper.track_user_logged_in,
        {"device_id": "dev-42", "login_method": LoginMethod.SSO, "impersonation": True},
        {"$device_id": "dev-42", "login_method": "sso", "is_first_login": False},
    ),
    "survey": HelperCase(
        MixPanelEvent.SURVEY_DELIVERED,
        SurveyTrackHelper.track_survey_delivered,
        {
            "survey_id": "5b0c0f8e-53a0-4d0e-9d43-0f8f5f7a3c11",
            "survey_run_id": "7d1c3b1a-8a32-4f4e-a0d4-1d7c2e9b0a22",
            "survey_type": SurveyType.PULSE,
            "channel": DeliveryChannel.SLACK,
            "question_count": 5,
        },
        {
            "survey_id": "5b0c0f8e-53a0-4d0e-9d43-0f8f5f7a3c11",
            "survey_type": "pulse",
            "channel": "slack",
            "question_count": 5,
            "is_reminder": False,
        },
    ),
    "survey_error": HelperCase(
        MixPanelEvent.SURVEY_DELIVERED_ERROR,
        SurveyTrackHelper.track_survey_delivered_error,
        {
            "survey_id": "5b0c0f8e-53a0-4d0e-9d43-0f8f5f7a3c11",
            "survey_run_id": "7d1c3b1a-8a32-4f4e-a0d4-1d7c2e9b0a22",
            "survey_type": SurveyType.EXIT,
            "channel": DeliveryChannel.TEAMS,
            "error_code": "teams_user_not_found",
            "attempt": 2,
        },
        {"error_code": "teams_user_not_found", "attempt": 2, "channel": "teams"},
    ),
    "risk": HelperCase(
        MixPanelEvent.RISK_SCORE_CALCULATED,
        RiskTrackHelper.track_risk_score_calculated,
        {
            "risk_score": 81.5,
            "risk_level": RiskLevel.HIGH,
            "previous_risk_level": RiskLevel.MEDIUM,
            "contributing_factors": ("workload", "tenure"),
            "scoring_version": "2026.1",
        },
        {
            "risk_score": 81.5,
            "risk_level": "high",
            "previous_risk_level": "medium",
            "contributing_factors": ["workload", "tenure"],
        },
    ),
    "map": HelperCase(
        MixPanelEvent.ACTION_PLAN_CREATED,
        MapTrackHelper.track_action_plan_created,
        {
            "action_plan_id": "0f4b8d2e-9c1a-4b7e-8d3f-2a6c5e1b9d33",
            "team_id": "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c44",
            "focus_area_ids": ["2b3c4d5e-6f7a-4b9c-8d1e-2f3a4b5c6d55"],
            "action_item_count": 3,
            "source": ActionPlanSource.TEMPLATE,
        },
        {
            "action_plan_id": "0f4b8d2e-9c1a-4b7e-8d3f-2a6c5e1b9d33",
            "focus_area_ids": ["2b3c4d5e-6f7a-4b9c-8d1e-2f3a4b5c6d55"],
            "source": "template",
        },
    ),
    "core": HelperCase(
        MixPanelEvent.HRIS_CSV_UPLOAD_ANALYSIS_COMPLETED,
        CoreTrackHelper.track_hris_csv_upload_analysis_completed,
        {
            "organization_id": ORG_ID,
            "upload_id": "3c4d5e6f-7a8b-4c0d-9e1f-3a4b5c6d7e66",
            "trigger": HrisUploadTrigger.ADMIN_UPLOAD,
            "total_row_count": 120,
            "valid_row_count": 118,
            "error_row_count": 2,
            "created_employee_count": 4,
            "updated_employee_count": 10,
            "duration_ms": 5400,
        },
        {"upload_id": "3c4d5e6f-7a8b-4c0d-9e1f-3a4b5c6d7e66", "trigger": "admin_upload"},
    ),
}


class ExplodingDirectory:
    """A directory whose every lookup fails, as a broken host database would."""

    def lookup(self, session: Session | Connection, employee_id: str) -> EmployeeInfo | None:
        """Fail."""
        raise RuntimeError("directory is down")

    def lookup_organization(
        self, session: Session | Connection, organization_id: str
    ) -> OrganizationInfo | None:
        """Fail."""
        raise RuntimeError("directory is down")


def _only_event(engine: Engine) -> CapturedEvent:
    events = OutboxCapture().events(engine)
    assert len(events) == 1, events
    return events[0]


def _outbox_count(engine: Engine) -> int:
    return len(OutboxCapture().events(engine))


@pytest.mark.parametrize("case", HELPER_CASES.values(), ids=HELPER_CASES.keys())
def test_helper_writes_one_row_with_organization_and_role_from_the_directory(
    directory_tables: Engine, case: HelperCase
) -> None:
    """Each helper writes one outbox row for the user, with org and role read from SQL."""
    with Session(directory_tables) as session, session.begin(), strict_tracking():
        insert_id = case.method(session, employee_id=MANAGER_ID, **case.kwargs)
    captured = _only_event(directory_tables)
    assert captured.insert_id == insert_id
    assert captured.event == case.event
    assert captured.distinct_id == MANAGER_ID
    assert captured.state == "pending"
    assert captured.properties == {
        **captured.properties,
        "employee_id": MANAGER_ID,
        "organization_id": ORG_ID,
        "organization_name": ORG_NAME,
        "role": "manager",
        "impersonation": case.kwargs.get("impersonation", False),
        "is_cron_job": False,
        "cron_execution_timestamp": None,
        **case.expected,
    }


def test_helper_tracks_on_a_plain_connection(directory_tables: Engine) -> None:
    """A helper accepts a Core ``Connection`` as well as an ORM ``Session``."""
    case = HELPER_CASES["survey"]
    with directory_tables.begin() as conn, strict_tracking():
        case.method(conn, employee_id=MANAGER_ID, **case.kwargs)
    assert _only_event(directory_tables).properties["organization_name"] == ORG_NAME


def test_employee_without_role_is_tracked_with_role_none(directory_tables: Engine) -> None:
    """An employee whose role column is NULL is tracked with ``role`` None."""
    case = HELPER_CASES["map"]
    with Session(directory_tables) as session, session.begin(), strict_tracking():
        case.method(session, employee_id=NO_ROLE_ID, **case.kwargs)
    captured = _only_event(directory_tables)
    assert captured.properties["role"] is None
    assert captured.properties["organization_id"] == ORG_ID


def test_employee_with_unknown_role_is_tracked_with_role_none(directory_tables: Engine) -> None:
    """A role value the catalog does not know still yields the event, with ``role`` None."""
    case = HELPER_CASES["map"]
    with Session(directory_tables) as session, session.begin(), strict_tracking():
        case.method(session, employee_id=ODD_ROLE_ID, **case.kwargs)
    assert _only_event(directory_tables).properties["role"] is None


def test_unknown_employee_is_tracked_with_blank_organization(directory_tables: Engine) -> None:
    """An employee missing from the directory is tracked as themself with '' org fields."""
    stranger = str(uuid.uuid4())
    case = HELPER_CASES["auth"]
    with Session(directory_tables) as session, session.begin(), strict_tracking():
        case.method(session, employee_id=stranger, **case.kwargs)
    captured = _only_event(directory_tables)
    assert captured.distinct_id == stranger
    assert captured.properties["organization_id"] == ""
    assert captured.properties["organization_name"] == ""
    assert captured.properties["role"] is None


def test_upload_without_a_user_is_tracked_as_the_organization(directory_tables: Engine) -> None:
    """An HRIS upload by an integration is tracked as ``org_<uuid>`` with no employee."""
    case = HELPER_CASES["core"]
    kwargs = {**case.kwargs, "trigger": HrisUploadTrigger.INTEGRATION_SYNC}
    with Session(directory_tables) as session, session.begin(), strict_tracking():
        CoreTrackHelper.track_hris_csv_upload_analysis_completed(session, **kwargs)
    captured = _only_event(directory_tables)
    assert captured.distinct_id == f"org_{ORG_ID}"
    assert captured.properties["employee_id"] == ""
    assert captured.properties["role"] is None
    assert captured.properties["organization_name"] == ORG_NAME


def test_helper_in_a_cron_run_keeps_the_original_time(directory_tables: Engine) -> None:
    """In ``cron_run`` the event is marked cron, stamped with the run, timed at the action."""
    occurred_at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=2)
    run_at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
    case = HELPER_CASES["risk"]
    with (
        cron_run(run_at) as run_ms,
        Session(directory_tables) as session,
        session.begin(),
        strict_tracking(),
    ):
        case.method(session, employee_id=MANAGER_ID, occurred_at=occurred_at, **case.kwargs)
    captured = _only_event(directory_tables)
    assert captured.properties["is_cron_job"] is True
    assert captured.properties["cron_execution_timestamp"] == run_ms
    assert run_ms == datetime_to_timestamp_ms(run_at)
    assert captured.time_ms == datetime_to_timestamp_ms(occurred_at)


def test_failing_directory_is_logged_not_raised_by_default(directory_tables: Engine) -> None:
    """With strict tracking off, a directory failure is logged with the ids and swallowed."""
    case = HELPER_CASES["survey"]
    with (
        structlog.testing.capture_logs() as logs,
        Session(directory_tables) as session,
        session.begin(),
        strict_tracking(False),
    ):
        result = case.method(
            session, employee_id=MANAGER_ID, directory=ExplodingDirectory(), **case.kwargs
        )
        session.execute(sa.select(1))
    assert result is None
    assert _outbox_count(directory_tables) == 0
    failures = [e for e in logs if e["event"] == "mixpanel_survey_delivered_tracking_failed"]
    assert len(failures) == 1
    assert failures[0]["employee_id"] == MANAGER_ID
    assert failures[0]["log_level"] == "error"


@pytest.mark.parametrize("case", HELPER_CASES.values(), ids=HELPER_CASES.keys())
def test_failing_directory_is_swallowed_with_strict_false(
    directory_tables: Engine, case: HelperCase
) -> None:
    """``strict=False`` keeps every helper fire-and-forget even inside ``strict_tracking()``."""
    kwargs = {"employee_id": MANAGER_ID, **case.kwargs}
    with Session(directory_tables) as session, session.begin(), strict_tracking():
        result = case.method(session, directory=ExplodingDirectory(), strict=False, **kwargs)
    assert result is None
    assert _outbox_count(directory_tables) == 0


@pytest.mark.parametrize("case", HELPER_CASES.values(), ids=HELPER_CASES.keys())
def test_failing_directory_raises_in_strict_mode(
    directory_tables: Engine, case: HelperCase
) -> None:
    """Under ``strict_tracking()`` every helper raises the directory's failure."""
    kwargs = {"employee_id": MANAGER_ID, **case.kwargs}
    with (
        Session(directory_tables) as session,
        session.begin(),
        strict_tracking(),
        pytest.raises(RuntimeError, match="directory is down"),
    ):
        case.method(session, directory=ExplodingDirectory(), **kwargs)


def test_strict_argument_raises_without_strict_tracking(directory_tables: Engine) -> None:
    """``strict=True`` on the call raises even when strict tracking is off for the block."""
    case = HELPER_CASES["auth"]
    with (
        Session(directory_tables) as session,
        session.begin(),
        strict_tracking(False),
        pytest.raises(RuntimeError, match="directory is down"),
    ):
        case.method(
            session,
            employee_id=MANAGER_ID,
            directory=ExplodingDirectory(),
            strict=True,
            **case.kwargs,
        )


def test_missing_directory_tables_do_not_break_the_transaction(engine: Engine) -> None:
    """A lookup on absent host tables fails in its savepoint; the business transaction goes on."""
    case = HELPER_CASES["survey"]
    directory_metadata.drop_all(engine)
    with Session(engine) as session, session.begin(), strict_tracking(False):
        assert case.method(session, employee_id=MANAGER_ID, **case.kwargs) is None
        # On PostgreSQL a failed statement outside a savepoint would abort the transaction.
        assert session.execute(sa.select(sa.literal(1))).scalar_one() == 1
    assert _outbox_count(engine) == 0


def test_missing_directory_tables_raise_store_error_in_strict_mode(engine: Engine) -> None:
    """In strict mode the failed lookup surfaces as the relay's ``StoreError``."""
    case = HELPER_CASES["survey"]
    directory_metadata.drop_all(engine)
    with (
        Session(engine) as session,
        session.begin(),
        strict_tracking(),
        pytest.raises(StoreError, match="employee directory lookup failed"),
    ):
        case.method(session, employee_id=MANAGER_ID, **case.kwargs)


def test_invalid_argument_raises_without_quoting_the_value(directory_tables: Engine) -> None:
    """A value the schema refuses raises an error that names the field, not the value."""
    case = HELPER_CASES["survey"]
    kwargs = {**case.kwargs, "survey_type": "jane.doe@example.com"}
    with (
        Session(directory_tables) as session,
        session.begin(),
        strict_tracking(),
        pytest.raises(EventValidationError) as info,
    ):
        case.method(session, employee_id=MANAGER_ID, **kwargs)
    assert info.value.field == "survey_type"
    assert "jane.doe" not in str(info.value)


def test_rolled_back_transaction_leaves_no_event(directory_tables: Engine) -> None:
    """When the business transaction rolls back, the helper's event goes with it."""
    case = HELPER_CASES["map"]
    with Session(directory_tables) as session, strict_tracking():
        with session.begin():
            assert case.method(session, employee_id=MANAGER_ID, **case.kwargs) is not None
            session.rollback()
        assert OutboxCapture().events(session) == []
    assert _outbox_count(directory_tables) == 0
