"""Tests for ``svc.risk.score_calculated`` tracking."""

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
    MxpRiskScoreCalculatedEventSchema,
    RiskLevel,
)
from optimo_analytics.service import RiskTrackHelper

pytestmark = [pytest.mark.django_db]

PROPERTIES: dict[str, Any] = {
    "risk_score": 72.5,
    "risk_level": RiskLevel.HIGH,
    "previous_risk_level": RiskLevel.MEDIUM,
    "contributing_factors": ["low_engagement", "manager_change"],
    "scoring_version": "2024.1",
}


class TestMxpRiskScoreCalculatedEventSchema:
    """Schema validation."""

    def test_schema_creation_with_valid_properties(self) -> None:
        """The schema accepts valid properties."""
        schema = MxpRiskScoreCalculatedEventSchema.model_validate(
            {
                "employee_id": str(uuid.uuid4()),
                "organization_id": str(uuid.uuid4()),
                "organization_name": "Test Org",
                "role": None,
                "impersonation": False,
                **PROPERTIES,
            }
        )
        assert schema.model_dump(mode="json", by_alias=True)["risk_level"] == "high"

    def test_schema_refuses_an_unknown_field(self) -> None:
        """A property the schema does not declare is refused (strict schemas forbid extras)."""
        with pytest.raises(ValidationError):
            MxpRiskScoreCalculatedEventSchema.model_validate(
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


class TestMxpRiskScoreCalculatedEventSchemaRegistry:
    """Registry registration."""

    def test_event_is_registered(self) -> None:
        """The event is registered with its schema."""
        assert is_event_registered(MixPanelEvent.RISK_SCORE_CALCULATED)
        assert (
            EVENT_SCHEMA_REGISTRY[MixPanelEvent.RISK_SCORE_CALCULATED]
            is MxpRiskScoreCalculatedEventSchema
        )


class TestMxpRiskScoreCalculatedEventSchemaTracking:
    """The helper writes the event into the outbox, in the test's transaction."""

    def test_tracking_writes_the_event(
        self, relay_outbox: OutboxCapture, optimo_employee: Any
    ) -> None:
        """The event is in the outbox with the employee's organization and role."""
        employee_id = str(optimo_employee.uuid)
        RiskTrackHelper.track_risk_score_calculated(employee_id=employee_id, **PROPERTIES)
        relay_outbox.assert_tracked(
            MixPanelEvent.RISK_SCORE_CALCULATED,
            distinct_id=employee_id,
            organization_id=str(optimo_employee.organization.uuid),
            organization_name=optimo_employee.organization.name,
            role="manager",
            risk_level="high",
        )


class TestMxpRiskScoreCalculatedEventSchemaNonBlocking:
    """Fire-and-forget behaviour."""

    def test_exception_does_not_propagate(self) -> None:
        """A tracking failure is logged and swallowed outside strict mode."""
        boom = RuntimeError("boom")
        with patch.object(RiskTrackHelper, "_track_risk_score_calculated", side_effect=boom):
            result = RiskTrackHelper.track_risk_score_calculated(
                employee_id=str(uuid.uuid4()), **PROPERTIES, strict=False
            )
        assert result is None

    def test_strict_mode_raises(self) -> None:
        """In strict mode (every test, under relay's plugin) an unknown employee is raised."""
        with pytest.raises(LookupError):
            RiskTrackHelper.track_risk_score_calculated(employee_id=str(uuid.uuid4()), **PROPERTIES)
