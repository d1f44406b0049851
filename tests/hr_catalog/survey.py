"""Survey lifecycle events: ``svc.surveys.survey_delivered`` and its ``.error`` twin.

Fire-and-forget, as the seed demands: a failure is logged with the ids and the traceback and
the helper returns ``None``; in strict mode (the ``strict=`` argument, else
:func:`relay._tracking.strict_tracking`, else the process setting) it raises instead.
"""

from __future__ import annotations

import datetime as dt

import structlog
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from hr_catalog.constants import MixPanelEvent
from hr_catalog.directory import EmployeeDirectory, resolve_employee
from hr_catalog.schemas import (
    DeliveryChannel,
    MxpSurveyDeliveredErrorEventSchema,
    MxpSurveyDeliveredEventSchema,
    SurveyType,
    validation_without_values,
)
from relay import is_strict, resolve_distinct_id, track

logger = structlog.get_logger(__name__)


class SurveyTrackHelper:
    """Tracks survey lifecycle events into the outbox, in the caller's transaction."""

    @classmethod
    def track_survey_delivered(
        cls,
        session: Session | Connection,
        *,
        employee_id: str,
        survey_id: str,
        survey_run_id: str,
        survey_type: SurveyType,
        channel: DeliveryChannel,
        question_count: int,
        is_reminder: bool = False,
        occurred_at: dt.datetime | None = None,
        directory: EmployeeDirectory | None = None,
        impersonation: bool = False,
        strict: bool | None = None,
    ) -> str | None:
        """Track ``svc.surveys.survey_delivered``.

        Call when a survey has been handed to its delivery channel for the employee
        ``employee_id`` (the recipient, and the event's ``distinct_id``). The employee's
        organisation and role come from ``directory`` (default: the SQL directory).

        Returns the event's ``$insert_id``, or ``None`` when tracking failed and was logged.
        """
        try:
            return cls._track_survey_delivered(
                session,
                employee_id=employee_id,
                survey_id=survey_id,
                survey_run_id=survey_run_id,
                survey_type=survey_type,
                channel=channel,
                question_count=question_count,
                is_reminder=is_reminder,
                occurred_at=occurred_at,
                directory=directory,
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
        session: Session | Connection,
        *,
        employee_id: str,
        survey_id: str,
        survey_run_id: str,
        survey_type: SurveyType,
        channel: DeliveryChannel,
        question_count: int,
        is_reminder: bool,
        occurred_at: dt.datetime | None,
        directory: EmployeeDirectory | None,
        impersonation: bool,
        strict: bool | None,
    ) -> str | None:
        employee = resolve_employee(session, employee_id, directory=directory)
        with validation_without_values(MixPanelEvent.SURVEY_DELIVERED):
            properties = MxpSurveyDeliveredEventSchema(
                employee_id=employee_id,
                organization_id=employee.organization_id,
                organization_name=employee.organization_name,
                role=employee.role,
                impersonation=impersonation,
                survey_id=survey_id,
                survey_run_id=survey_run_id,
                survey_type=survey_type,
                channel=channel,
                question_count=question_count,
                is_reminder=is_reminder,
            )
        return track(
            session,
            event=MixPanelEvent.SURVEY_DELIVERED,
            distinct_id=resolve_distinct_id(user_id=employee_id),
            properties=properties,
            occurred_at=occurred_at,
            strict=strict,
        )

    @classmethod
    def track_survey_delivered_error(
        cls,
        session: Session | Connection,
        *,
        employee_id: str,
        survey_id: str,
        survey_run_id: str,
        survey_type: SurveyType,
        channel: DeliveryChannel,
        error_code: str,
        attempt: int,
        occurred_at: dt.datetime | None = None,
        directory: EmployeeDirectory | None = None,
        impersonation: bool = False,
        strict: bool | None = None,
    ) -> str | None:
        """Track ``svc.surveys.survey_delivered.error``.

        Call when delivering a survey to the employee ``employee_id`` failed. ``error_code``
        is a short machine code (``slack_user_not_found``), never the provider's message.
        Commit it in a transaction of its own if the delivery's transaction is rolled back.

        Returns the event's ``$insert_id``, or ``None`` when tracking failed and was logged.
        """
        try:
            return cls._track_survey_delivered_error(
                session,
                employee_id=employee_id,
                survey_id=survey_id,
                survey_run_id=survey_run_id,
                survey_type=survey_type,
                channel=channel,
                error_code=error_code,
                attempt=attempt,
                occurred_at=occurred_at,
                directory=directory,
                impersonation=impersonation,
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
        session: Session | Connection,
        *,
        employee_id: str,
        survey_id: str,
        survey_run_id: str,
        survey_type: SurveyType,
        channel: DeliveryChannel,
        error_code: str,
        attempt: int,
        occurred_at: dt.datetime | None,
        directory: EmployeeDirectory | None,
        impersonation: bool,
        strict: bool | None,
    ) -> str | None:
        employee = resolve_employee(session, employee_id, directory=directory)
        with validation_without_values(MixPanelEvent.SURVEY_DELIVERED_ERROR):
            properties = MxpSurveyDeliveredErrorEventSchema(
                employee_id=employee_id,
                organization_id=employee.organization_id,
                organization_name=employee.organization_name,
                role=employee.role,
                impersonation=impersonation,
                survey_id=survey_id,
                survey_run_id=survey_run_id,
                survey_type=survey_type,
                channel=channel,
                error_code=error_code,
                attempt=attempt,
            )
        return track(
            session,
            event=MixPanelEvent.SURVEY_DELIVERED_ERROR,
            distinct_id=resolve_distinct_id(user_id=employee_id),
            properties=properties,
            occurred_at=occurred_at,
            strict=strict,
        )
