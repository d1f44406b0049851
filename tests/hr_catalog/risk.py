"""Risk calculation events: ``svc.risk.score_calculated``.

Fire-and-forget, as the seed demands: a failure is logged with the ids and the traceback and
the helper returns ``None``; in strict mode (the ``strict=`` argument, else
:func:`relay._tracking.strict_tracking`, else the process setting) it raises instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import structlog
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from hr_catalog.constants import MixPanelEvent
from hr_catalog.directory import EmployeeDirectory, resolve_employee
from hr_catalog.schemas import (
    MxpRiskScoreCalculatedEventSchema,
    RiskLevel,
    validation_without_values,
)
from relay import is_strict, resolve_distinct_id, track

logger = structlog.get_logger(__name__)


class RiskTrackHelper:
    """Tracks risk calculation events into the outbox, in the caller's transaction."""

    @classmethod
    def track_risk_score_calculated(
        cls,
        session: Session | Connection,
        *,
        employee_id: str,
        risk_score: float,
        risk_level: RiskLevel,
        previous_risk_level: RiskLevel | None,
        contributing_factors: Sequence[str],
        scoring_version: str,
        occurred_at: dt.datetime | None = None,
        directory: EmployeeDirectory | None = None,
        impersonation: bool = False,
        strict: bool | None = None,
    ) -> str | None:
        """Track ``svc.risk.score_calculated``.

        Call when the risk score of the employee ``employee_id`` (the event's
        ``distinct_id``) has been (re)calculated. Scores are usually calculated by a cron run:
        track inside :func:`relay._tracking.cron_run` and pass ``occurred_at``, the time of the
        change that made the score stale, so ``time`` stays the original action's time.

        Returns the event's ``$insert_id``, or ``None`` when tracking failed and was logged.
        """
        try:
            return cls._track_risk_score_calculated(
                session,
                employee_id=employee_id,
                risk_score=risk_score,
                risk_level=risk_level,
                previous_risk_level=previous_risk_level,
                contributing_factors=contributing_factors,
                scoring_version=scoring_version,
                occurred_at=occurred_at,
                directory=directory,
                impersonation=impersonation,
                strict=strict,
            )
        except Exception:
            if is_strict(strict):
                raise
            # Fire-and-forget: a tracking failure must never break the calculation itself.
            logger.exception(
                "mixpanel_risk_score_calculated_tracking_failed", employee_id=employee_id
            )
            return None

    @staticmethod
    def _track_risk_score_calculated(
        session: Session | Connection,
        *,
        employee_id: str,
        risk_score: float,
        risk_level: RiskLevel,
        previous_risk_level: RiskLevel | None,
        contributing_factors: Sequence[str],
        scoring_version: str,
        occurred_at: dt.datetime | None,
        directory: EmployeeDirectory | None,
        impersonation: bool,
        strict: bool | None,
    ) -> str | None:
        employee = resolve_employee(session, employee_id, directory=directory)
        with validation_without_values(MixPanelEvent.RISK_SCORE_CALCULATED):
            properties = MxpRiskScoreCalculatedEventSchema(
                employee_id=employee_id,
                organization_id=employee.organization_id,
                organization_name=employee.organization_name,
                role=employee.role,
                impersonation=impersonation,
                risk_score=risk_score,
                risk_level=risk_level,
                previous_risk_level=previous_risk_level,
                contributing_factors=list(contributing_factors),
                scoring_version=scoring_version,
            )
        return track(
            session,
            event=MixPanelEvent.RISK_SCORE_CALCULATED,
            distinct_id=resolve_distinct_id(user_id=employee_id),
            properties=properties,
            occurred_at=occurred_at,
            strict=strict,
        )
