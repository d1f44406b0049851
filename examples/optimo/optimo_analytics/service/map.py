"""Tracking helpers for ``map`` events: fire-and-forget unless strict."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import structlog
from relay import is_strict
from relay.contrib.django import track

from optimo_analytics.constants import MixPanelEvent
from optimo_analytics.schemas import (
    ActionPlanSource,
    MxpMapActionPlanCreatedEventSchema,
)
from optimo_analytics.service.directory import fetch_employee_info

logger = structlog.get_logger(__name__)


class MapTrackHelper:
    """Tracks map events into the outbox, in the caller's Django transaction."""

    @classmethod
    def track_action_plan_created(
        cls,
        *,
        employee_id: str,
        action_plan_id: str,
        team_id: str,
        focus_area_ids: Sequence[str],
        action_item_count: int,
        source: ActionPlanSource,
        occurred_at: dt.datetime | None = None,
        impersonation: bool = False,
        strict: bool | None = None,
    ) -> str | None:
        """Track ``svc.map.action_plan_created``.

        Call when the manager ``employee_id`` (the event's ``distinct_id``) has saved a new
        action plan for their team.
        Returns the event's ``$insert_id``, or ``None`` when tracking failed and was logged (in
        strict mode, as in tests, it raises instead).
        """
        try:
            return cls._track_action_plan_created(
                employee_id=employee_id,
                action_plan_id=action_plan_id,
                team_id=team_id,
                focus_area_ids=focus_area_ids,
                action_item_count=action_item_count,
                source=source,
                occurred_at=occurred_at,
                impersonation=impersonation,
                strict=strict,
            )
        except Exception:
            if is_strict(strict):
                raise
            # Fire-and-forget: a tracking failure must never break the action plan itself.
            logger.exception(
                "mixpanel_action_plan_created_tracking_failed",
                employee_id=employee_id,
                action_plan_id=action_plan_id,
            )
            return None

    @staticmethod
    def _track_action_plan_created(
        *,
        employee_id: str,
        action_plan_id: str,
        team_id: str,
        focus_area_ids: Sequence[str],
        action_item_count: int,
        source: ActionPlanSource,
        occurred_at: dt.datetime | None,
        impersonation: bool,
        strict: bool | None,
    ) -> str | None:
        emp_info = fetch_employee_info(employee_id=employee_id)
        properties = MxpMapActionPlanCreatedEventSchema(
            employee_id=employee_id,
            organization_id=emp_info.organization_id,
            organization_name=emp_info.organization_name,
            role=emp_info.role,
            impersonation=impersonation,
            action_plan_id=action_plan_id,
            team_id=team_id,
            focus_area_ids=list(focus_area_ids),
            action_item_count=action_item_count,
            source=source,
        )
        return track(
            event=MixPanelEvent.ACTION_PLAN_CREATED,
            distinct_id=employee_id,
            properties=properties,
            occurred_at=occurred_at,
            strict=strict,
        )
