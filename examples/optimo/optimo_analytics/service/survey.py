"""Tracking helpers for ``survey`` events: fire-and-forget unless strict."""

from __future__ import annotations

import datetime as dt

import structlog
from relay import is_strict
from relay.contrib.django import track

from optimo_analytics.constants import MixPanelEvent
from optimo_analytics.schemas import (
    DeliveryChannel,
    MxpSurveyDeliveredErrorEventSchema,
    MxpSurveyDeliveredEventSchema,
    SurveyType,
)
from optimo_analytics.service.directory import fetch_employee_info

logger = structlog.get_logger(__name__)


class SurveyTrackHelper:
    """Tracks survey events into the outbox, in the caller's Django transaction."""

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
        occurred_at: dt.datetime | None = None,
        impersonation: bool = False,
        strict: bool | None = None,
    ) -> str | None:
        """Track ``svc.surveys.survey_delivered``.

        Call when a survey has been handed to its delivery channel for the employee
        ``employee_id`` (the recipient's uuid, and the event's ``distinct_id``). Returns the
        event's ``$insert_id``, or ``None`` when tracking failed and was logged (in strict
        mode, as in tests, it raises instead).
        """
        try:
            return cls._track_survey_delivered(
                employee_id=employee_id,
                survey_id=survey_id,
                survey_run_id=survey_run_id,
                survey_type=survey_type,
                channel=channel,
                question_count=question_count,
                is_reminder=is_reminder,
                occurred_at=occurred_at,
                impersonation=impersonation,
                strict=strict,
            )
        except Exception:
            if is_strict(strict):
                raise
            # Fire-and-forget: a tracking failure must never break the delivery itself.
            logger.exception(
                "mixpanel_survey_delivered_tracking_failed",
                employee_id=employee_id,
                survey_id=survey_id,
            )
            return None

    @staticmethod
    def _track_survey_delivered(
        *,
        employee_id: str,
        survey_id: str,
        survey_run_id: str,
        survey_type: SurveyType,
        channel: DeliveryChannel,
        question_count: int,
        is_reminder: bool,
        occurred_at: dt.datetime | None,
        impersonation: bool,
        strict: bool | None,
    ) -> str | None:
        emp_info = fetch_employee_info(employee_id=employee_id)
        properties = MxpSurveyDeliveredEventSchema(
            employee_id=employee_id,
            organization_id=emp_info.organization_id,
            organization_name=emp_info.organization_name,
            role=emp_info.role,
            impersonation=impersonation,
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
            occurred_at=occurred_at,
            strict=strict,
        )

    @classmethod
    def track_survey_delivered_error(
        cls,
        *,
        employee_id: str,
        survey_id: str,
        survey_run_id: str,
        survey_type: SurveyType,
        channel: DeliveryChannel,
        error_code: str,
        attempt: int,
        occurred_at: dt.datetime | None = None,
        impersonation: bool = False,
        independent: bool = False,
        strict: bool | None = None,
    ) -> str | None:
        """Track ``svc.surveys.survey_delivered.error``.

        Call when delivering a survey to the employee ``employee_id`` failed. ``error_code``
        is a short machine code (``slack_user_not_found``), never the provider's message. The
        event is written on a transaction of its own (``independent=True``): it is kept when
        the delivery's ``atomic()`` block rolls back. Returns the event's ``$insert_id``, or
        ``None`` when tracking failed and was logged (strict mode raises instead).
        """
        try:
            return cls._track_survey_delivered_error(
                employee_id=employee_id,
                survey_id=survey_id,
                survey_run_id=survey_run_id,
                survey_type=survey_type,
                channel=channel,
                error_code=error_code,
                attempt=attempt,
                occurred_at=occurred_at,
                impersonation=impersonation,
                independent=independent,
                strict=strict,
            )
        except Exception:
            if is_strict(strict):
                raise
            # Fire-and-forget: a tracking failure must never break the delivery itself.
            logger.exception(
                "mixpanel_survey_delivered_error_tracking_failed",
                employee_id=employee_id,
                survey_id=survey_id,
            )
            return None

    @staticmethod
    def _track_survey_delivered_error(
        *,
        employee_id: str,
        survey_id: str,
        survey_run_id: str,
        survey_type: SurveyType,
        channel: DeliveryChannel,
        error_code: str,
        attempt: int,
        occurred_at: dt.datetime | None,
        impersonation: bool,
        independent: bool,
        strict: bool | None,
    ) -> str | None:
        emp_info = fetch_employee_info(employee_id=employee_id)
        properties = MxpSurveyDeliveredErrorEventSchema(
            employee_id=employee_id,
            organization_id=emp_info.organization_id,
            organization_name=emp_info.organization_name,
            role=emp_info.role,
            impersonation=impersonation,
            survey_id=survey_id,
            survey_run_id=survey_run_id,
            survey_type=survey_type,
            channel=channel,
            error_code=error_code,
            attempt=attempt,
        )
        return track(
            event=MixPanelEvent.SURVEY_DELIVERED_ERROR,
            distinct_id=employee_id,
            properties=properties,
            occurred_at=occurred_at,
            strict=strict,
            independent=independent,
        )
