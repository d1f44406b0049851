"""The demo's own small events, registered by :func:`register_demo_events` when the demo runs.

relay ships no product events: a host's analytics package defines its own (see
``examples/optimo``). These few exist for ``relay demo`` only, under the ``demo`` prefix so they
can never collide with a host's ``svc.*`` names, and are registered only when the demo runs.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

from pydantic import Field

from relay._event.properties import STRICT_MODEL_CONFIG, MixpanelSuperEventPropertiesSchema
from relay._event.registry import register_event


class DemoEvent:
    """The demo's event names."""

    USER_LOGGED_IN: Final = "demo.auth.user_logged_in"
    SURVEY_DELIVERED: Final = "demo.surveys.survey_delivered"
    ACTION_PLAN_CREATED: Final = "demo.map.action_plan_created"
    UPLOAD_ANALYZED: Final = "demo.hris_csv.upload_analyzed"
    RISK_SCORE_CALCULATED: Final = "demo.risk.score_calculated"


class DeliveryChannel(enum.StrEnum):
    """Where a survey was delivered."""

    EMAIL = "email"
    SLACK = "slack"


class MxpAuthUserLoggedInEventSchema(MixpanelSuperEventPropertiesSchema):
    """Properties of ``demo.auth.user_logged_in``.

    Tracked when a user has authenticated.
    """

    login_method: str = Field(description="How the user authenticated")

    model_config = STRICT_MODEL_CONFIG


class MxpSurveysSurveyDeliveredEventSchema(MixpanelSuperEventPropertiesSchema):
    """Properties of ``demo.surveys.survey_delivered``.

    Tracked when a survey has been handed to its delivery channel for one employee.
    """

    survey_id: str = Field(description="Survey id as string")
    channel: DeliveryChannel = Field(description="Channel the survey went out on")
    question_count: int = Field(ge=0, description="Questions in the delivered survey")

    model_config = STRICT_MODEL_CONFIG


class MxpMapActionPlanCreatedEventSchema(MixpanelSuperEventPropertiesSchema):
    """Properties of ``demo.map.action_plan_created``.

    Tracked when a manager saves a new action plan.
    """

    action_plan_id: str = Field(description="Action plan id as string")
    action_item_count: int = Field(ge=0, description="Action items in the plan")

    model_config = STRICT_MODEL_CONFIG


class MxpHrisCsvUploadAnalyzedEventSchema(MixpanelSuperEventPropertiesSchema):
    """Properties of ``demo.hris_csv.upload_analyzed``.

    Tracked when the analysis of an uploaded HRIS file has finished, by a cron run
    (``is_cron_job``), with ``time`` the moment of the upload.
    """

    upload_id: str = Field(description="Upload id as string")
    valid_row_count: int = Field(ge=0, description="Rows that passed validation")

    model_config = STRICT_MODEL_CONFIG


class MxpRiskScoreCalculatedEventSchema(MixpanelSuperEventPropertiesSchema):
    """Properties of ``demo.risk.score_calculated``.

    Tracked when an employee's risk score has been recalculated, by a cron run
    (``is_cron_job``).
    """

    risk_score: float = Field(ge=0, le=100, description="Score from 0 (no risk) to 100")

    model_config = STRICT_MODEL_CONFIG


DEMO_SCHEMAS: Final[Mapping[str, type[MixpanelSuperEventPropertiesSchema]]] = {
    DemoEvent.USER_LOGGED_IN: MxpAuthUserLoggedInEventSchema,
    DemoEvent.SURVEY_DELIVERED: MxpSurveysSurveyDeliveredEventSchema,
    DemoEvent.ACTION_PLAN_CREATED: MxpMapActionPlanCreatedEventSchema,
    DemoEvent.UPLOAD_ANALYZED: MxpHrisCsvUploadAnalyzedEventSchema,
    DemoEvent.RISK_SCORE_CALCULATED: MxpRiskScoreCalculatedEventSchema,
}


def register_demo_events() -> None:
    """Register the demo's events (again is a no-op: the same schema under the same name)."""
    for event, schema in DEMO_SCHEMAS.items():
        register_event(event, schema)
