"""The shipped catalog: schemas, registration, wire names and the helpers' signatures."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from typing import Any

import hr_catalog
import pytest
from hr_catalog import (
    CATALOG_SCHEMAS,
    AuthTrackHelper,
    CoreTrackHelper,
    EmployeeInfo,
    MapTrackHelper,
    MixPanelEvent,
    MxpAuthUserLoggedInEventSchema,
    OrganizationInfo,
    RiskTrackHelper,
    StaticEmployeeDirectory,
    SurveyTrackHelper,
)
from hr_catalog.directory import resolve_employee
from hr_catalog.schemas import validation_without_values
from pydantic import ValidationError

from relay._errors import EventValidationError
from relay._event.properties import MixpanelSuperEventPropertiesSchema, SystemRole
from relay._event.registry import EVENT_SCHEMA_REGISTRY, is_event_registered, register_event

ORG_ID = str(uuid.uuid4())

BASE = {
    "employee_id": str(uuid.uuid4()),
    "organization_id": ORG_ID,
    "organization_name": "Acme Corp",
    "role": SystemRole.MANAGER,
    "impersonation": False,
}

#: event -> (valid event-specific fields, an invalid override of one of them)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    MixPanelEvent.USER_LOGGED_IN: (
        {"login_method": "sso", "device_id": "dev-1", "is_first_login": True},
        {"login_method": "fingerprint"},
    ),
    MixPanelEvent.SURVEY_DELIVERED: (
        {
            "survey_id": str(uuid.uuid4()),
            "survey_run_id": str(uuid.uuid4()),
            "survey_type": "pulse",
            "channel": "slack",
            "question_count": 5,
            "is_reminder": False,
        },
        {"question_count": -1},
    ),
    MixPanelEvent.SURVEY_DELIVERED_ERROR: (
        {
            "survey_id": str(uuid.uuid4()),
            "survey_run_id": str(uuid.uuid4()),
            "survey_type": "engagement",
            "channel": "teams",
            "error_code": "teams_user_not_found",
            "attempt": 1,
        },
        {"attempt": 0},
    ),
    MixPanelEvent.RISK_SCORE_CALCULATED: (
        {
            "risk_score": 72.5,
            "risk_level": "high",
            "previous_risk_level": None,
            "contributing_factors": ["workload", "tenure"],
            "scoring_version": "2026.1",
        },
        {"risk_score": 101},
    ),
    MixPanelEvent.ACTION_PLAN_CREATED: (
        {
            "action_plan_id": str(uuid.uuid4()),
            "team_id": str(uuid.uuid4()),
            "focus_area_ids": [str(uuid.uuid4())],
            "action_item_count": 3,
            "source": "template",
        },
        {"focus_area_ids": str(uuid.uuid4())},
    ),
    MixPanelEvent.HRIS_CSV_UPLOAD_ANALYSIS_COMPLETED: (
        {
            "upload_id": str(uuid.uuid4()),
            "trigger": "integration_sync",
            "total_row_count": 120,
            "valid_row_count": 118,
            "error_row_count": 2,
            "created_employee_count": 4,
            "updated_employee_count": 10,
            "duration_ms": 5400,
        },
        {"trigger": "carrier_pigeon"},
    ),
}

HELPERS = (AuthTrackHelper, SurveyTrackHelper, RiskTrackHelper, MapTrackHelper, CoreTrackHelper)
TRACK_METHODS = [
    pytest.param(getattr(helper, name), id=f"{helper.__name__}.{name}")
    for helper in HELPERS
    for name in sorted(vars(helper))
    if name.startswith("track_")
]


def test_every_mixpanel_event_constant_has_a_catalog_case() -> None:
    """Every ``MixPanelEvent`` constant has a schema in the catalog and a case in this file."""
    constants = {v for k, v in vars(MixPanelEvent).items() if k.isupper()}
    assert constants == set(CATALOG_SCHEMAS) == set(CASES)


@pytest.mark.parametrize("event", sorted(CASES))
def test_catalog_schema_accepts_a_valid_instance(event: str) -> None:
    """Each catalog schema validates a complete, well-formed set of properties."""
    valid, _ = CASES[event]
    model = CATALOG_SCHEMAS[event].model_validate({**BASE, **valid})
    assert model.organization_id == ORG_ID
    assert model.is_cron_job is False


@pytest.mark.parametrize("event", sorted(CASES))
def test_catalog_schema_refuses_an_invalid_value(event: str) -> None:
    """Each catalog schema refuses an out-of-range or mistyped event-specific value."""
    valid, invalid = CASES[event]
    with pytest.raises(ValidationError) as info:
        CATALOG_SCHEMAS[event].model_validate({**BASE, **valid, **invalid})
    assert {err["loc"][0] for err in info.value.errors()} == set(invalid)


@pytest.mark.parametrize("event", sorted(CASES))
def test_catalog_schema_refuses_an_unknown_field(event: str) -> None:
    """Each catalog schema refuses a property it does not declare."""
    valid, _ = CASES[event]
    with pytest.raises(ValidationError, match=r"extra_forbidden|Extra inputs"):
        CATALOG_SCHEMAS[event].model_validate({**BASE, **valid, "surprise": 1})


@pytest.mark.parametrize("event", sorted(CASES))
def test_catalog_event_is_registered_with_its_schema(event: str) -> None:
    """Importing the catalog registers each event under its schema."""
    assert is_event_registered(event)
    assert EVENT_SCHEMA_REGISTRY[event] is CATALOG_SCHEMAS[event]


@pytest.mark.parametrize("event", sorted(CASES))
def test_registering_a_catalog_event_again_is_a_no_op(event: str) -> None:
    """Registering a catalog schema a second time (a re-import) changes nothing."""
    assert register_event(event, CATALOG_SCHEMAS[event]) is CATALOG_SCHEMAS[event]
    assert EVENT_SCHEMA_REGISTRY[event] is CATALOG_SCHEMAS[event]


@pytest.mark.parametrize("event", sorted(CASES))
def test_catalog_schema_inherits_base_fields_unchanged(event: str) -> None:
    """No catalog schema redefines a base field."""
    schema = CATALOG_SCHEMAS[event]
    for name, base in MixpanelSuperEventPropertiesSchema.model_fields.items():
        assert schema.model_fields[name].annotation == base.annotation


def test_device_id_serialises_under_its_dollar_name() -> None:
    """The login event's ``device_id`` is dumped as Mixpanel's ``$device_id``."""
    valid, _ = CASES[MixPanelEvent.USER_LOGGED_IN]
    model = MxpAuthUserLoggedInEventSchema.model_validate({**BASE, **valid})
    dumped = model.model_dump(mode="json", by_alias=True)
    assert dumped["$device_id"] == "dev-1"
    assert "device_id" not in dumped


def test_aliased_schema_accepts_the_wire_name() -> None:
    """The login event's schema can be populated by ``$device_id`` as well as ``device_id``."""
    valid, _ = CASES[MixPanelEvent.USER_LOGGED_IN]
    fields = {k: v for k, v in valid.items() if k != "device_id"}
    model = MxpAuthUserLoggedInEventSchema.model_validate({**BASE, **fields, "$device_id": "dev-2"})
    assert model.device_id == "dev-2"


@pytest.mark.parametrize("method", TRACK_METHODS)
def test_helper_takes_only_keyword_arguments_after_session(method: Callable[..., Any]) -> None:
    """Every tracking helper takes the session positionally and everything else by keyword."""
    params = list(inspect.signature(method).parameters.values())
    assert params[0].name == "session"
    assert params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:])


@pytest.mark.parametrize("method", TRACK_METHODS)
def test_helper_offers_the_common_keywords(method: Callable[..., Any]) -> None:
    """Every tracking helper accepts occurred_at, directory, impersonation and strict."""
    params = inspect.signature(method).parameters
    assert {"occurred_at", "directory", "impersonation", "strict"} <= set(params)


@pytest.mark.parametrize("method", TRACK_METHODS)
def test_helper_has_a_private_implementation(method: Callable[..., Any]) -> None:
    """Every public ``track_<event>`` wraps a private ``_track_<event>``, as the seed does."""
    owner = method.__self__  # type: ignore[attr-defined]
    assert callable(getattr(owner, f"_{method.__name__}"))


def test_catalog_all_is_sorted_and_importable() -> None:
    """``hr_catalog.__all__`` is sorted (ruff's RUF022 order) and every name in it exists."""

    def isort_style(name: str) -> tuple[int, str]:
        # Constants, then classes, then everything else; alphabetical within each group.
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert hr_catalog.__all__ == sorted(hr_catalog.__all__, key=isort_style)
    for name in hr_catalog.__all__:
        assert hasattr(hr_catalog, name)


def test_validation_errors_name_the_field_but_not_the_value() -> None:
    """A schema error from a helper names the event and field, never the offending value."""
    valid, _ = CASES[MixPanelEvent.SURVEY_DELIVERED]
    schema = CATALOG_SCHEMAS[MixPanelEvent.SURVEY_DELIVERED]
    with (
        pytest.raises(EventValidationError) as info,
        validation_without_values(MixPanelEvent.SURVEY_DELIVERED),
    ):
        schema.model_validate({**BASE, **valid, "survey_type": "jane.doe@example.com"})
    assert info.value.field == "survey_type"
    assert info.value.event == MixPanelEvent.SURVEY_DELIVERED
    assert "jane.doe" not in str(info.value)
    assert info.value.__cause__ is None


def test_static_directory_finds_given_employees_and_organizations() -> None:
    """The in-memory directory answers for the employees and organisations it was given."""
    info = EmployeeInfo("e1", "o1", "Org One", SystemRole.ADMIN)
    directory = StaticEmployeeDirectory({"e1": info}, organizations={"o2": "Org Two"})
    session: Any = None  # the static directory never touches the session
    assert directory.lookup(session, "e1") is info
    assert directory.lookup(session, "nobody") is None
    org_one = directory.lookup_organization(session, "o1")
    org_two = directory.lookup_organization(session, "o2")
    assert org_one == OrganizationInfo("o1", "Org One")
    assert org_two == OrganizationInfo("o2", "Org Two")
    assert directory.lookup_organization(session, "o3") is None


def test_unknown_employee_resolves_to_blank_organization_and_no_role() -> None:
    """An employee the directory does not know becomes '' organisation fields and no role."""
    session: Any = None
    info = resolve_employee(session, "e9", directory=StaticEmployeeDirectory({}))
    assert info == EmployeeInfo("e9", "", "", None)
