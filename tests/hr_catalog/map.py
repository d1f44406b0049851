"""Manager Action Pipeline (MAP) events: ``svc.map.action_plan_created``.

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
    ActionPlanSource,
    MxpMapActionPlanCreatedEventSchema,
    validation_without_values,
)
from relay import is_strict, resolve_distinct_id, track

logger = structlog.get_logger(__name__)


class MapTrackHelper:
    """Tracks Manager Action Pipeline events into the outbox, in the caller's transaction."""

    @classmethod
    def track_action_plan_created(
        cls,
        session: Session | Connection,
        *,
        employee_id: str,
        action_plan_id: str,
        team_id: str,
        focus_area_ids: Sequence[str],
        action_item_count: int,
        source: ActionPlanSource,
        occurred_at: dt.datetime | None = None,
        directory: EmployeeDirectory | None = None,
        impersonation: bool = False,
        strict: bool | None = None,
    ) -> str | None:
        """Track ``svc.map.action_plan_created``.

        Call when the manager ``employee_id`` (the event's ``distinct_id``) has saved a new
        action plan for the team ``team_id``.

        Returns the event's ``$insert_id``, or ``None`` when tracking failed and was logged.
        """
        try:
            return cls._track_action_plan_created(
                session,
                employee_id=employee_id,
                action_plan_id=action_plan_id,
                team_id=team_id,
                focus_area_ids=focus_area_ids,
                action_item_count=action_item_count,
                source=source,
                occurred_at=occurred_at,
                directory=directory,
                impersonation=impersonation,
                strict=strict,
            )
        except Exception:
            if is_strict(strict):
                raise
            # Fire-and-forget: a tracking failure must never break saving the plan.
            logger.exception(
                "mixpanel_action_plan_created_tracking_failed",
                employee_id=employee_id,
                action_plan_id=action_plan_id,
            )
            return None

    @staticmethod
    def _track_action_plan_created(
        session: Session | Connection,
        *,
        employee_id: str,
        action_plan_id: str,
        team_id: str,
        focus_area_ids: Sequence[str],
        action_item_count: int,
        source: ActionPlanSource,
        occurred_at: dt.datetime | None,
        directory: EmployeeDirectory | None,
        impersonation: bool,
        strict: bool | None,
    ) -> str | None:
        employee = resolve_employee(session, employee_id, directory=directory)
        with validation_without_values(MixPanelEvent.ACTION_PLAN_CREATED):
            properties = MxpMapActionPlanCreatedEventSchema(
                employee_id=employee_id,
                organization_id=employee.organization_id,
                organization_name=employee.organization_name,
                role=employee.role,
                impersonation=impersonation,
                action_plan_id=action_plan_id,
                team_id=team_id,
                focus_area_ids=list(focus_area_ids),
                action_item_count=action_item_count,
                source=source,
            )
        return track(
            session,
            event=MixPanelEvent.ACTION_PLAN_CREATED,
            distinct_id=resolve_distinct_id(user_id=employee_id),
            properties=properties,
            occurred_at=occurred_at,
            strict=strict,
        )
