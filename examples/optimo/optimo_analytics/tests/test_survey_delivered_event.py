"""Tests for ``svc.surveys.survey_delivered`` tracking."""

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
    DeliveryChannel,
    MxpSurveyDeliveredEventSchema,
    SurveyType,
)
from optimo_analytics.service import SurveyTrackHelper

pytestmark = [pytest.mark.django_db]

PROPERTIES: dict[str, Any] = {
    "survey_id": str(uuid.uuid4()),
    "survey_run_id": str(uuid.uuid4()),
    "survey_type": SurveyType.PULSE,
    "channel": DeliveryChannel.SLACK,
    "question_count": 5,
    "is_reminder": False,
}


class TestMxpSurveyDeliveredEventSchema:
    """Schema validation."""

    def test_schema_creation_with_valid_properties(self) -> None:
        """The schema accepts valid properties."""
        schema = MxpSurveyDeliveredEventSchema.model_validate(
            {
                "employee_id": str(uuid.uuid4()),
                "organization_id": str(uuid.uuid4()),
                "organization_name": "Test Org",
                "role": None,
                "impersonation": False,
                **PROPERTIES,
            }
        )
        assert schema.model_dump(mode="json", by_alias=True)["question_count"] == 5

    def test_schema_refuses_an_unknown_field(self) -> None:
        """A property the schema does not declare is refused (strict schemas forbid extras)."""
        with pytest.raises(ValidationError):
            MxpSurveyDeliveredEventSchema.model_validate(
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


class TestMxpSurveyDeliveredEventSchemaRegistry:
    """Registry registration."""

    def test_event_is_registered(self) -> None:
        """The event is registered with its schema."""
        assert is_event_registered(MixPanelEvent.SURVEY_DELIVERED)
        assert (
            EVENT_SCHEMA_REGISTRY[MixPanelEvent.SURVEY_DELIVERED] is MxpSurveyDeliveredEventSchema
        )


class TestMxpSurveyDeliveredEventSchemaTracking:
    """The helper writes the event into the outbox, in the test's transaction."""

    def test_tracking_writes_the_event(
        self, relay_outbox: OutboxCapture, optimo_employee: Any
    ) -> None:
        """The event is in the outbox with the employee's organization and role."""
        employee_id = str(optimo_employee.uuid)
        SurveyTrackHelper.track_survey_delivered(employee_id=employee_id, **PROPERTIES)
        relay_outbox.assert_tracked(
            MixPanelEvent.SURVEY_DELIVERED,
            distinct_id=employee_id,
            organization_id=str(optimo_employee.organization.uuid),
            organization_name=optimo_employee.organization.name,
            role="manager",
            question_count=5,
        )


class TestMxpSurveyDeliveredEventSchemaNonBlocking:
    """Fire-and-forget behaviour."""

    def test_exception_does_not_propagate(self) -> None:
        """A tracking failure is logged and swallowed outside strict mode."""
        boom = RuntimeError("boom")
        with patch.object(SurveyTrackHelper, "_track_survey_delivered", side_effect=boom):
            result = SurveyTrackHelper.track_survey_delivered(
                employee_id=str(uuid.uuid4()), **PROPERTIES, strict=False
            )
        assert result is None

    def test_strict_mode_raises(self) -> None:
        """In strict mode (every test, under relay's plugin) an unknown employee is raised."""
        with pytest.raises(LookupError):
            SurveyTrackHelper.track_survey_delivered(employee_id=str(uuid.uuid4()), **PROPERTIES)
