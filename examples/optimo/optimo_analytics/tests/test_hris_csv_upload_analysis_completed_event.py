"""Tests for ``svc.hris_csv.upload.analysis_completed`` tracking."""

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
    HrisUploadTrigger,
    MxpHrisCsvUploadAnalysisCompletedEventSchema,
)
from optimo_analytics.service import CoreTrackHelper

pytestmark = [pytest.mark.django_db]

PROPERTIES: dict[str, Any] = {
    "upload_id": str(uuid.uuid4()),
    "trigger": HrisUploadTrigger.ADMIN_UPLOAD,
    "total_row_count": 10,
    "valid_row_count": 9,
    "error_row_count": 1,
    "created_employee_count": 4,
    "updated_employee_count": 5,
    "duration_ms": 120,
}


class TestMxpHrisCsvUploadAnalysisCompletedEventSchema:
    """Schema validation."""

    def test_schema_creation_with_valid_properties(self) -> None:
        """The schema accepts valid properties."""
        schema = MxpHrisCsvUploadAnalysisCompletedEventSchema.model_validate(
            {
                "employee_id": str(uuid.uuid4()),
                "organization_id": str(uuid.uuid4()),
                "organization_name": "Test Org",
                "role": None,
                "impersonation": False,
                **PROPERTIES,
            }
        )
        assert schema.model_dump(mode="json", by_alias=True)["valid_row_count"] == 9

    def test_schema_refuses_an_unknown_field(self) -> None:
        """A property the schema does not declare is refused (strict schemas forbid extras)."""
        with pytest.raises(ValidationError):
            MxpHrisCsvUploadAnalysisCompletedEventSchema.model_validate(
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


class TestMxpHrisCsvUploadAnalysisCompletedEventSchemaRegistry:
    """Registry registration."""

    def test_event_is_registered(self) -> None:
        """The event is registered with its schema."""
        assert is_event_registered(MixPanelEvent.HRIS_CSV_UPLOAD_ANALYSIS_COMPLETED)
        assert (
            EVENT_SCHEMA_REGISTRY[MixPanelEvent.HRIS_CSV_UPLOAD_ANALYSIS_COMPLETED]
            is MxpHrisCsvUploadAnalysisCompletedEventSchema
        )


class TestMxpHrisCsvUploadAnalysisCompletedEventSchemaTracking:
    """The helper writes the event into the outbox, in the test's transaction."""

    def test_tracking_writes_the_event(
        self, relay_outbox: OutboxCapture, optimo_employee: Any
    ) -> None:
        """The event is in the outbox with the employee's organization and role."""
        employee_id = str(optimo_employee.uuid)
        CoreTrackHelper.track_hris_csv_upload_analysis_completed(
            employee_id=employee_id,
            organization_id=str(optimo_employee.organization.uuid),
            **PROPERTIES,
        )
        relay_outbox.assert_tracked(
            MixPanelEvent.HRIS_CSV_UPLOAD_ANALYSIS_COMPLETED,
            distinct_id=employee_id,
            organization_id=str(optimo_employee.organization.uuid),
            organization_name=optimo_employee.organization.name,
            role="manager",
            valid_row_count=9,
        )


class TestMxpHrisCsvUploadAnalysisCompletedEventSchemaNonBlocking:
    """Fire-and-forget behaviour."""

    def test_exception_does_not_propagate(self) -> None:
        """A tracking failure is logged and swallowed outside strict mode."""
        boom = RuntimeError("boom")
        with patch.object(
            CoreTrackHelper, "_track_hris_csv_upload_analysis_completed", side_effect=boom
        ):
            result = CoreTrackHelper.track_hris_csv_upload_analysis_completed(
                organization_id=str(uuid.uuid4()), **PROPERTIES, strict=False
            )
        assert result is None

    def test_strict_mode_raises(self) -> None:
        """In strict mode (every test, under relay's plugin) an unknown employee is raised."""
        with pytest.raises(LookupError):
            CoreTrackHelper.track_hris_csv_upload_analysis_completed(
                organization_id=str(uuid.uuid4()), **PROPERTIES
            )
