"""Authentication events: ``svc.auth.user_logged_in``.

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
    LoginMethod,
    MxpAuthUserLoggedInEventSchema,
    validation_without_values,
)
from relay import is_strict, resolve_distinct_id, track

logger = structlog.get_logger(__name__)


class AuthTrackHelper:
    """Tracks authentication events into the outbox, in the caller's transaction."""

    @classmethod
    def track_user_logged_in(
        cls,
        session: Session | Connection,
        *,
        employee_id: str,
        device_id: str,
        login_method: LoginMethod,
        is_first_login: bool = False,
        occurred_at: dt.datetime | None = None,
        directory: EmployeeDirectory | None = None,
        impersonation: bool = False,
        strict: bool | None = None,
    ) -> str | None:
        """Track ``svc.auth.user_logged_in``.

        Call when the employee ``employee_id`` (the event's ``distinct_id``) has authenticated
        and a session was created; ``impersonation`` when an admin logs in as them.
        ``device_id`` is sent as ``$device_id``.

        Returns the event's ``$insert_id``, or ``None`` when tracking failed and was logged.
        """
        try:
            return cls._track_user_logged_in(
                session,
                employee_id=employee_id,
                device_id=device_id,
                login_method=login_method,
                is_first_login=is_first_login,
                occurred_at=occurred_at,
                directory=directory,
                impersonation=impersonation,
                strict=strict,
            )
        except Exception:
            if is_strict(strict):
                raise
            # Fire-and-forget: a tracking failure must never break the login itself.
            logger.exception("mixpanel_user_logged_in_tracking_failed", employee_id=employee_id)
            return None

    @staticmethod
    def _track_user_logged_in(
        session: Session | Connection,
        *,
        employee_id: str,
        device_id: str,
        login_method: LoginMethod,
        is_first_login: bool,
        occurred_at: dt.datetime | None,
        directory: EmployeeDirectory | None,
        impersonation: bool,
        strict: bool | None,
    ) -> str | None:
        employee = resolve_employee(session, employee_id, directory=directory)
        with validation_without_values(MixPanelEvent.USER_LOGGED_IN):
            # model_validate: mypy's pydantic plugin cannot see that ALIASED_MODEL_CONFIG
            # also accepts the Python name, and would demand the keyword "$device_id".
            properties = MxpAuthUserLoggedInEventSchema.model_validate(
                {
                    "employee_id": employee_id,
                    "organization_id": employee.organization_id,
                    "organization_name": employee.organization_name,
                    "role": employee.role,
                    "impersonation": impersonation,
                    "login_method": login_method,
                    "device_id": device_id,
                    "is_first_login": is_first_login,
                }
            )
        return track(
            session,
            event=MixPanelEvent.USER_LOGGED_IN,
            distinct_id=resolve_distinct_id(user_id=employee_id),
            properties=properties,
            occurred_at=occurred_at,
            strict=strict,
        )
