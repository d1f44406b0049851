"""The catalog's event schemas, one per event, registered with the registry at import.

Each ``Mxp{Domain}{Action}EventSchema`` inherits the base properties (``employee_id``,
``organization_id``, ``organization_name``, ``role``, ``impersonation``, the cron pair) from
:class:`relay._event.properties.MixpanelSuperEventPropertiesSchema` and adds only its own fields:
identifiers as ``str``, lists of identifiers as ``list[str]``, closed sets as enums, and never
personal data. A missing string is ``""``, never ``None``.

Importing this module registers every schema under its :class:`MixPanelEvent` name;
registering the same schema again is a no-op, so re-imports are harmless.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType

from pydantic import Field, ValidationError

from hr_catalog.constants import MixPanelEvent
from relay._errors import EventValidationError
from relay._event.properties import (
    ALIASED_MODEL_CONFIG,
    STRICT_MODEL_CONFIG,
    MixpanelSuperEventPropertiesSchema,
)
from relay._event.registry import register_event
from relay._event.validation import first_error

# --- closed value sets ------------------------------------------------------------------------


class LoginMethod(enum.StrEnum):
    """How the user authenticated."""

    PASSWORD = "password"
    SSO = "sso"
    MAGIC_LINK = "magic_link"


class SurveyType(enum.StrEnum):
    """The kind of survey."""

    PULSE = "pulse"
    ENGAGEMENT = "engagement"
    ONBOARDING = "onboarding"
    EXIT = "exit"


class DeliveryChannel(enum.StrEnum):
    """Where a survey was delivered."""

    EMAIL = "email"
    SLACK = "slack"
    TEAMS = "teams"
    IN_APP = "in_app"


class RiskLevel(enum.StrEnum):
    """Band of a risk score."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class ActionPlanSource(enum.StrEnum):
    """Where an action plan's content came from."""

    MANUAL = "manual"
    TEMPLATE = "template"
    SUGGESTED = "suggested"


class HrisUploadTrigger(enum.StrEnum):
    """What started an HRIS CSV upload."""

    ADMIN_UPLOAD = "admin_upload"
    API = "api"
    INTEGRATION_SYNC = "integration_sync"


# --- Authentication -----------------------------------------------------------------------------


class MxpAuthUserLoggedInEventSchema(MixpanelSuperEventPropertiesSchema):
    """Properties of ``svc.auth.user_logged_in``.

    Tracked when a user completes authentication and a session is created. ``device_id`` goes
    to Mixpanel as ``$device_id``, the property its identity merge links devices by.
    """

    login_method: LoginMethod = Field(description="How the user authenticated")
    device_id: str = Field(alias="$device_id", description="Client device id (not personal)")
    is_first_login: bool = Field(description="First login of this user ever")

    model_config = ALIASED_MODEL_CONFIG


# --- Survey lifecycle ---------------------------------------------------------------------------


class MxpSurveyDeliveredEventSchema(MixpanelSuperEventPropertiesSchema):
    """Properties of ``svc.surveys.survey_delivered``.

    Tracked when a survey has been handed to its delivery channel for one employee.
    """

    survey_id: str = Field(description="Survey UUID as string")
    survey_run_id: str = Field(description="UUID of this run (send-out) of the survey")
    survey_type: SurveyType = Field(description="Kind of survey")
    channel: DeliveryChannel = Field(description="Channel the survey went out on")
    question_count: int = Field(ge=0, description="Questions in the delivered survey")
    is_reminder: bool = Field(description="A reminder for a survey delivered before")

    model_config = STRICT_MODEL_CONFIG


class MxpSurveyDeliveredErrorEventSchema(MixpanelSuperEventPropertiesSchema):
    """Properties of ``svc.surveys.survey_delivered.error``.

    Tracked when delivering a survey to one employee failed. ``error_code`` is a short
    machine code (``slack_user_not_found``), never the provider's message, which may quote
    the recipient.
    """

    survey_id: str = Field(description="Survey UUID as string")
    survey_run_id: str = Field(description="UUID of this run (send-out) of the survey")
    survey_type: SurveyType = Field(description="Kind of survey")
    channel: DeliveryChannel = Field(description="Channel the delivery was tried on")
    error_code: str = Field(min_length=1, max_length=64, description="Machine-readable reason")
    attempt: int = Field(ge=1, description="Which delivery attempt failed, from 1")

    model_config = STRICT_MODEL_CONFIG


# --- Risk calculation ---------------------------------------------------------------------------


class MxpRiskScoreCalculatedEventSchema(MixpanelSuperEventPropertiesSchema):
    """Properties of ``svc.risk.score_calculated``.

    Tracked when an employee's attrition risk score has been (re)calculated, usually by the
    nightly cron run (``is_cron_job``), with ``time`` the moment the inputs were last changed.
    """

    risk_score: float = Field(ge=0, le=100, description="Score from 0 (no risk) to 100")
    risk_level: RiskLevel = Field(description="Band of the new score")
    previous_risk_level: RiskLevel | None = Field(description="Band before; None if first score")
    contributing_factors: list[str] = Field(description="Codes of the factors driving the score")
    scoring_version: str = Field(min_length=1, description="Version of the scoring algorithm")

    model_config = STRICT_MODEL_CONFIG


# --- Manager Action Pipeline --------------------------------------------------------------------


class MxpMapActionPlanCreatedEventSchema(MixpanelSuperEventPropertiesSchema):
    """Properties of ``svc.map.action_plan_created``.

    Tracked when a manager saves a new action plan for their team.
    """

    action_plan_id: str = Field(description="Action plan UUID as string")
    team_id: str = Field(description="Team UUID as string")
    focus_area_ids: list[str] = Field(description="UUIDs of the focus areas addressed")
    action_item_count: int = Field(ge=0, description="Action items in the plan")
    source: ActionPlanSource = Field(description="Where the plan's content came from")

    model_config = STRICT_MODEL_CONFIG


# --- Core / HRIS --------------------------------------------------------------------------------


class MxpHrisCsvUploadAnalysisCompletedEventSchema(MixpanelSuperEventPropertiesSchema):
    """Properties of ``svc.hris_csv.upload.analysis_completed``.

    Tracked when the analysis of an uploaded HRIS CSV file has finished. When an integration
    rather than a person uploaded the file, ``employee_id`` is ``""`` and ``role`` is None.
    """

    upload_id: str = Field(description="Upload UUID as string")
    trigger: HrisUploadTrigger = Field(description="What started the upload")
    total_row_count: int = Field(ge=0, description="Data rows in the file")
    valid_row_count: int = Field(ge=0, description="Rows that passed validation")
    error_row_count: int = Field(ge=0, description="Rows refused by validation")
    created_employee_count: int = Field(ge=0, description="Employees the upload would create")
    updated_employee_count: int = Field(ge=0, description="Employees the upload would change")
    duration_ms: int = Field(ge=0, description="How long the analysis took, in ms")

    model_config = STRICT_MODEL_CONFIG


#: Every catalog event and its schema (read-only).
CATALOG_SCHEMAS: Mapping[str, type[MixpanelSuperEventPropertiesSchema]] = MappingProxyType(
    {
        MixPanelEvent.USER_LOGGED_IN: MxpAuthUserLoggedInEventSchema,
        MixPanelEvent.SURVEY_DELIVERED: MxpSurveyDeliveredEventSchema,
        MixPanelEvent.SURVEY_DELIVERED_ERROR: MxpSurveyDeliveredErrorEventSchema,
        MixPanelEvent.RISK_SCORE_CALCULATED: MxpRiskScoreCalculatedEventSchema,
        MixPanelEvent.ACTION_PLAN_CREATED: MxpMapActionPlanCreatedEventSchema,
        MixPanelEvent.HRIS_CSV_UPLOAD_ANALYSIS_COMPLETED: (
            MxpHrisCsvUploadAnalysisCompletedEventSchema
        ),
    }
)

for _event, _schema in CATALOG_SCHEMAS.items():
    register_event(_event, _schema)


@contextmanager
def validation_without_values(event: str) -> Iterator[None]:
    """Re-raise a pydantic ``ValidationError`` from the block as a value-free error.

    Pydantic's message quotes the input, which may be the very personal data the contract
    refuses; helpers log their failures with the traceback, so the message must not carry it.
    Raises :class:`relay._errors.EventValidationError` naming the event and the field only.
    """
    try:
        yield
    except ValidationError as exc:
        loc, text = first_error(exc)  # the error's type, never pydantic's message (it may quote)
        # The schema's field only: deeper parts of ``loc`` may be keys the caller passed.
        field = str(loc[0]) if loc else None
        raise EventValidationError(text, event=event, field=field) from None
