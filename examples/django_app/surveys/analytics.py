"""This project's analytics: its event, schema and helper, and who an employee is.

relay ships no events: the project defines its own (a bigger project keeps them in an
analytics app laid out as the seed says, as ``examples/optimo`` does). The schema is registered
when this module is imported, which ``surveys.services`` does.
"""

from __future__ import annotations

import enum
from typing import Final

import structlog
from pydantic import Field

from relay import STRICT_MODEL_CONFIG, MixpanelSuperEventPropertiesSchema, is_strict, register_event
from relay.contrib.django import track
from relay.contrib.django.catalog import ModelEmployeeDirectory

logger = structlog.get_logger(__name__)

#: Who an employee is (organisation, role), read through this project's models.
employee_directory = ModelEmployeeDirectory(employee_model="surveys.Employee")


class MixPanelEvent:
    """This project's event names."""

    SURVEY_DELIVERED: Final = "svc.surveys.survey_delivered"


class SurveyType(enum.StrEnum):
    """The kind of survey."""

    PULSE = "pulse"
    ENGAGEMENT = "engagement"


class DeliveryChannel(enum.StrEnum):
    """Where a survey was delivered."""

    EMAIL = "email"
    SLACK = "slack"
    TEAMS = "teams"


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


register_event(MixPanelEvent.SURVEY_DELIVERED, MxpSurveyDeliveredEventSchema)


class SurveyTrackHelper:
    """Tracks survey events into the outbox, in the caller's ``atomic()`` block."""

    @classmethod
    def track_survey_delivered(
        cls,
        *,
        employee_id: str,
        survey_id: str,
        survey_run_id: str,
        survey_type: SurveyType,
        channel: DeliveryChannel,
        question_count: int,
        is_reminder: bool = False,
        strict: bool | None = None,
    ) -> str | None:
        """Track ``svc.surveys.survey_delivered`` for the recipient ``employee_id``.

        Returns the event's ``$insert_id``, or ``None`` when tracking failed and was logged
        (strict mode, as in tests, raises instead).
        """
        try:
            # The ORM reads on Django's connection: the directory needs no session.
            employee = employee_directory.lookup(None, employee_id)  # type: ignore[arg-type]
            if employee is None:
                raise LookupError(f"no employee {employee_id}")
            properties = MxpSurveyDeliveredEventSchema(
                employee_id=employee_id,
                organization_id=employee.organization_id,
                organization_name=employee.organization_name,
                role=employee.role,
                impersonation=False,
                survey_id=survey_id,
                survey_run_id=survey_run_id,
                survey_type=survey_type,
                channel=channel,
                question_count=question_count,
                is_reminder=is_reminder,
            )
            return track(
                event=MixPanelEvent.SURVEY_DELIVERED,
                distinct_id=employee_id,
                properties=properties,
                strict=strict,
            )
        except Exception:
            if is_strict(strict):
                raise
            # Fire-and-forget: a tracking failure must never break the delivery itself.
            logger.exception("mixpanel_survey_delivered_tracking_failed", survey_id=survey_id)
            return None
