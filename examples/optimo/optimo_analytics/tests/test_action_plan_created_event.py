"""Tests for ``svc.map.action_plan_created`` tracking."""

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
    ActionPlanSource,
    MxpMapActionPlanCreatedEventSchema,
)
from optimo_analytics.service import MapTrackHelper

pytestmark = [pytest.mark.django_db]

PROPERTIES: dict[str, Any] = {
    "action_plan_id": str(uuid.uuid4()),
    "team_id": str(uuid.uuid4()),
    "focus_area_ids": [str(uuid.uuid4())],
    "action_item_count": 3,
    "source": ActionPlanSource.TEMPLATE,
}


class TestMxpMapActionPlanCreatedEventSchema:
    """Schema validation."""

    def test_schema_creation_with_valid_properties(self) -> None:
        """The schema accepts valid properties."""
        schema = MxpMapActionPlanCreatedEventSchema.model_validate(
            {
                "employee_id": str(uuid.uuid4()),
                "organization_id": str(uuid.uuid4()),
                "organization_name": "Test Org",
                "role": None,
                "impersonation": False,
                **PROPERTIES,
            }
        )
        assert schema.model_dump(mode="json", by_alias=True)["action_item_count"] == 3

    def test_schema_refuses_an_unknown_field(self) -> None:
        """A property the schema does not declare is refused (strict schemas forbid extras)."""
        with pytest.raises(ValidationError):
            MxpMapActionPlanCreatedEventSchema.model_validate(
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


class TestMxpMapActionPlanCreatedEventSchemaRegistry:
    """Registry registration."""

    def test_event_is_registered(self) -> None:
        """The event is registered with its schema."""
        assert is_event_registered(MixPanelEvent.ACTION_PLAN_CREATED)
        assert (
            EVENT_SCHEMA_REGISTRY[MixPanelEvent.ACTION_PLAN_CREATED]
            is MxpMapActionPlanCreatedEventSchema
        )


class TestMxpMapActionPlanCreatedEventSchemaTracking:
    """The helper writes the event into the outbox, in the test's transaction."""

    def test_tracking_writes_the_event(
        self, relay_outbox: OutboxCapture, optimo_employee: Any
    ) -> None:
        """The event is in the outbox with the employee's organization and role."""
        employee_id = str(optimo_employee.uuid)
        MapTrackHelper.track_action_plan_created(employee_id=employee_id, **PROPERTIES)
        relay_outbox.assert_tracked(
            MixPanelEvent.ACTION_PLAN_CREATED,
            distinct_id=employee_id,
            organization_id=str(optimo_employee.organization.uuid),
            organization_name=optimo_employee.organization.name,
            role="manager",
            action_item_count=3,
        )


class TestMxpMapActionPlanCreatedEventSchemaNonBlocking:
    """Fire-and-forget behaviour."""

    def test_exception_does_not_propagate(self) -> None:
        """A tracking failure is logged and swallowed outside strict mode."""
        boom = RuntimeError("boom")
        with patch.object(MapTrackHelper, "_track_action_plan_created", side_effect=boom):
            result = MapTrackHelper.track_action_plan_created(
                employee_id=str(uuid.uuid4()), **PROPERTIES, strict=False
            )
        assert result is None

    def test_strict_mode_raises(self) -> None:
        """In strict mode (every test, under relay's plugin) an unknown employee is raised."""
        with pytest.raises(LookupError):
            MapTrackHelper.track_action_plan_created(employee_id=str(uuid.uuid4()), **PROPERTIES)
