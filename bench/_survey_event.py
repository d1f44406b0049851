"""The event the benchmarks track, ``svc.surveys.survey_delivered``, registered on import.

relay ships no events; this is the seed's schema as ``examples/optimo`` defines it (the same
fields as the catalog relay once shipped), so the figures stay comparable with earlier runs.
"""

from __future__ import annotations

import enum

from pydantic import Field

from relay import STRICT_MODEL_CONFIG, MixpanelSuperEventPropertiesSchema, register_event

SURVEY_DELIVERED = "svc.surveys.survey_delivered"


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


register_event(SURVEY_DELIVERED, MxpSurveyDeliveredEventSchema)
