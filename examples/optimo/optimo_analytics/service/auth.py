"""Tracking helpers for ``auth`` events: fire-and-forget unless strict."""

from __future__ import annotations

import datetime as dt

import structlog
from relay import is_strict
from relay.contrib.django import track

from optimo_analytics.constants import MixPanelEvent
from optimo_analytics.schemas import (
    LoginMethod,
    MxpAuthUserLoggedInEventSchema,
)
from optimo_analytics.service.directory import fetch_employee_info

logger = structlog.get_logger(__name__)


class AuthTrackHelper:
    """Tracks auth events into the outbox, in the caller's Django transaction."""

    @classmethod
    def track_user_logged_in(
        cls,
        *,
        employee_id: str,
        device_id: str,
        login_method: LoginMethod,
        is_first_login: bool = False,
        occurred_at: dt.datetime | None = None,
        impersonation: bool = False,
        strict: bool | None = None,
    ) -> str | None:
        """Track ``svc.auth.user_logged_in``.

        Call when the employee ``employee_id`` (the event's ``distinct_id``) has authenticated
        and a session was created; ``impersonation`` when an admin logs in as them.
        ``device_id`` is sent as ``$device_id``.
        Returns the event's ``$insert_id``, or ``None`` when tracking failed and was logged (in
        strict mode, as in tests, it raises instead).
        """
        try:
            return cls._track_user_logged_in(
                employee_id=employee_id,
                device_id=device_id,
                login_method=login_method,
                is_first_login=is_first_login,
                occurred_at=occurred_at,
                impersonation=impersonation,
                strict=strict,
            )
        except Exception:
            if is_strict(strict):
                raise
            # Fire-and-forget: a tracking failure must never break the login itself.
            logger.exception(
                "mixpanel_user_logged_in_tracking_failed",
                employee_id=employee_id,
            )
            return None

    @staticmethod
    def _track_user_logged_in(
        *,
        employee_id: str,
        device_id: str,
        login_method: LoginMethod,
        is_first_login: bool,
        occurred_at: dt.datetime | None,
        impersonation: bool,
        strict: bool | None,
    ) -> str | None:
        emp_info = fetch_employee_info(employee_id=employee_id)
        # model_validate: mypy's pydantic plugin cannot see that ALIASED_MODEL_CONFIG also
        # accepts the Python name, and would demand the keyword "$device_id".
        properties = MxpAuthUserLoggedInEventSchema.model_validate(
            {
                "employee_id": employee_id,
                "organization_id": emp_info.organization_id,
                "organization_name": emp_info.organization_name,
                "role": emp_info.role,
                "impersonation": impersonation,
                "login_method": login_method,
                "device_id": device_id,
                "is_first_login": is_first_login,
            }
        )
        return track(
            event=MixPanelEvent.USER_LOGGED_IN,
            distinct_id=employee_id,
            properties=properties,
            occurred_at=occurred_at,
            strict=strict,
        )
