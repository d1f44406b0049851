"""Tracking helpers for ``risk`` events: fire-and-forget unless strict."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import structlog
from relay import is_strict
from relay.contrib.django import track

from optimo_analytics.constants import MixPanelEvent
from optimo_analytics.schemas import (
    MxpRiskScoreCalculatedEventSchema,
    RiskLevel,
)
from optimo_analytics.service.directory import fetch_employee_info

logger = structlog.get_logger(__name__)


class RiskTrackHelper:
    """Tracks risk events into the outbox, in the caller's Django transaction."""

    @classmethod
    def track_risk_score_calculated(
        cls,
        *,
        employee_id: str,
        risk_score: float,
        risk_level: RiskLevel,
        previous_risk_level: RiskLevel | None,
        contributing_factors: Sequence[str],
        scoring_version: str,
        occurred_at: dt.datetime | None = None,
        impersonation: bool = False,
        strict: bool | None = None,
    ) -> str | None:
        """Track ``svc.risk.score_calculated``.

        Call when the risk score of the employee ``employee_id`` (the event's ``distinct_id``)
        has been (re)calculated; a nightly cron run marks it with ``relay.cron_run``.
        Returns the event's ``$insert_id``, or ``None`` when tracking failed and was logged (in
        strict mode, as in tests, it raises instead).
        """
        try:
            return cls._track_risk_score_calculated(
                employee_id=employee_id,
                risk_score=risk_score,
                risk_level=risk_level,
                previous_risk_level=previous_risk_level,
                contributing_factors=contributing_factors,
                scoring_version=scoring_version,
                occurred_at=occurred_at,
                impersonation=impersonation,
                strict=strict,
            )
        except Exception:
            if is_strict(strict):
                raise
            # Fire-and-forget: a tracking failure must never break the calculation itself.
            logger.exception(
                "mixpanel_risk_score_calculated_tracking_failed",
                employee_id=employee_id,
            )
            return None

    @staticmethod
    def _track_risk_score_calculated(
        *,
        employee_id: str,
        risk_score: float,
        risk_level: RiskLevel,
        previous_risk_level: RiskLevel | None,
        contributing_factors: Sequence[str],
        scoring_version: str,
        occurred_at: dt.datetime | None,
        impersonation: bool,
        strict: bool | None,
    ) -> str | None:
        emp_info = fetch_employee_info(employee_id=employee_id)
        properties = MxpRiskScoreCalculatedEventSchema(
            employee_id=employee_id,
            organization_id=emp_info.organization_id,
            organization_name=emp_info.organization_name,
            role=emp_info.role,
            impersonation=impersonation,
            risk_score=risk_score,
            risk_level=risk_level,
            previous_risk_level=previous_risk_level,
            contributing_factors=list(contributing_factors),
            scoring_version=scoring_version,
        )
        return track(
            event=MixPanelEvent.RISK_SCORE_CALCULATED,
            distinct_id=employee_id,
            properties=properties,
            occurred_at=occurred_at,
            strict=strict,
        )
