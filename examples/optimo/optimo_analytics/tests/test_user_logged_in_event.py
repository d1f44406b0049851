"""Tests for ``svc.auth.user_logged_in`` tracking."""

from __future__ import annotations

import uuid
from typing import Any
from unittest.mock import patch

import pytest
from pydantic import ValidationError
from relay.testing.plugin import OutboxCapture

from optimo_analytics.constants import MixPanelEvent
from optimo_analytics.registry import EVENT_SCHEMA_REGISTRY, is_event_registered
from optimo_analytics.schemas import (
    LoginMethod,
    MxpAuthUserLoggedInEventSchema,
)
from optimo_analytics.service import AuthTrackHelper

pytestmark = [pytest.mark.django_db]

PROPERTIES: dict[str, Any] = {
    "device_id": "device-1",
    "login_method": LoginMethod.SSO,
    "is_first_login": True,
}


class TestMxpAuthUserLoggedInEventSchema:
    """Schema validation."""

    def test_schema_creation_with_valid_properties(self) -> None:
        """The schema accepts valid properties."""
        schema = MxpAuthUserLoggedInEventSchema.model_validate(
            {
                "employee_id": str(uuid.uuid4()),
                "organization_id": str(uuid.uuid4()),
                "organization_name": "Test Org",
                "role": None,
                "impersonation": False,
                **PROPERTIES,
            }
        )
        assert schema.model_dump(mode="json", by_alias=True)["$device_id"] == "device-1"

    def test_schema_refuses_an_unknown_field(self) -> None:
        """A property the schema does not declare is refused (strict schemas forbid extras)."""
        with pytest.raises(ValidationError):
            MxpAuthUserLoggedInEventSchema.model_validate(
                {
                    "employee_id": "",
                    "organization_id": "",
                    "organization_name": "",
                    "role": None,
                    "impersonation": False,
                    **PROPERTIES,
                    "unexpected": 1,
                }
            )


class TestMxpAuthUserLoggedInEventSchemaRegistry:
    """Registry registration."""

    def test_event_is_registered(self) -> None:
        """The event is registered with its schema."""
        assert is_event_registered(MixPanelEvent.USER_LOGGED_IN)
        assert EVENT_SCHEMA_REGISTRY[MixPanelEvent.USER_LOGGED_IN] is MxpAuthUserLoggedInEventSchema


class TestMxpAuthUserLoggedInEventSchemaTracking:
    """The helper writes the event into the outbox, in the test's transaction."""

    def test_tracking_writes_the_event(
        self, relay_outbox: OutboxCapture, optimo_employee: Any
    ) -> None:
        """The event is in the outbox with the employee's organization and role."""
        employee_id = str(optimo_employee.uuid)
        AuthTrackHelper.track_user_logged_in(employee_id=employee_id, **PROPERTIES)
        relay_outbox.assert_tracked(
            MixPanelEvent.USER_LOGGED_IN,
            distinct_id=employee_id,
            organization_id=str(optimo_employee.organization.uuid),
            organization_name=optimo_employee.organization.name,
            role="manager",
            **{"$device_id": "device-1"},
        )


class TestMxpAuthUserLoggedInEventSchemaNonBlocking:
    """Fire-and-forget behaviour."""

    def test_exception_does_not_propagate(self) -> None:
        """A tracking failure is logged and swallowed outside strict mode."""
        boom = RuntimeError("boom")
        with patch.object(AuthTrackHelper, "_track_user_logged_in", side_effect=boom):
            result = AuthTrackHelper.track_user_logged_in(
                employee_id=str(uuid.uuid4()), **PROPERTIES, strict=False
            )
        assert result is None

    def test_strict_mode_raises(self) -> None:
        """In strict mode (every test, under relay's plugin) an unknown employee is raised."""
        with pytest.raises(LookupError):
            AuthTrackHelper.track_user_logged_in(employee_id=str(uuid.uuid4()), **PROPERTIES)
