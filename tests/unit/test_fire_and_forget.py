"""``relay.fire_and_forget``: the seed's helper shape: non-blocking, yet strict in tests."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import pydantic
import pytest
from structlog.testing import capture_logs

from relay import (
    EventValidationError,
    MixpanelSuperEventPropertiesSchema,
    fire_and_forget,
    register_event,
    strict_tracking,
    track,
)

EVENT = "svc.tests_guard.report.exported"


class ReportExportedSchema(MixpanelSuperEventPropertiesSchema):
    """Test event: a report was exported."""

    report_id: str


register_event(EVENT, ReportExportedSchema)


class ReportTrackHelper:
    """A helper in the seed's shape (Step 4), with ``fire_and_forget`` as its try/except."""

    @classmethod
    def track_report_exported(cls, *, employee_id: str, report_id: str) -> None:
        with fire_and_forget("mixpanel_report_exported_tracking_failed", employee_id=employee_id):
            cls._track_report_exported(employee_id=employee_id, report_id=report_id)

    @staticmethod
    def _track_report_exported(*, employee_id: str, report_id: str) -> None:
        properties: dict[str, Any] = {
            "employee_id": employee_id,
            "organization_id": "org-1",
            "organization_name": "Acme",
            "role": None,
            "impersonation": False,
            "report_id": report_id,
        }
        track(None, event=EVENT, distinct_id=employee_id, properties=properties)  # type: ignore[arg-type]


def test_seeds_non_blocking_test_passes_under_strict_mode() -> None:
    """An exception inside the helper is logged and swallowed even while tracking is strict."""
    with (
        strict_tracking(),
        capture_logs() as logs,
        patch.object(
            ReportTrackHelper, "_track_report_exported", side_effect=Exception("boom jane@x.io")
        ),
    ):
        ReportTrackHelper.track_report_exported(employee_id="emp-1", report_id="r-1")  # no raise
    (line,) = [
        entry for entry in logs if entry["event"] == "mixpanel_report_exported_tracking_failed"
    ]
    assert line["error_type"] == "Exception"
    assert line["employee_id"] == "emp-1"
    assert "jane@x.io" not in repr(line)  # the exception's message is never logged


def test_a_bad_event_raises_through_the_helper_in_strict_mode() -> None:
    """A contract error (an email-shaped report id) reaches the test instead of "found none"."""
    with strict_tracking(), pytest.raises(EventValidationError):
        ReportTrackHelper.track_report_exported(employee_id="emp-1", report_id="jane@example.com")


def test_a_pydantic_validation_error_raises_in_strict_mode_only() -> None:
    """A schema built by the helper itself (pydantic) is strict too; production swallows it."""

    def build() -> None:
        ReportExportedSchema(report_id=1)  # type: ignore[call-arg]

    with (
        strict_tracking(),
        pytest.raises(pydantic.ValidationError),
        fire_and_forget("mixpanel_x_tracking_failed"),
    ):
        build()
    with (
        strict_tracking(False),
        capture_logs() as logs,
        fire_and_forget("mixpanel_x_tracking_failed"),
    ):
        build()
    assert [entry["error_type"] for entry in logs] == ["ValidationError"]


def test_production_mode_swallows_everything_and_withholds_personal_ids() -> None:
    """Outside strict mode nothing escapes; an email-shaped id is withheld from the log line."""
    with (
        strict_tracking(False),
        capture_logs() as logs,
        fire_and_forget("mixpanel_x_tracking_failed", employee_id="jane@example.com", n=3),
    ):
        raise EventValidationError("bad")
    (line,) = logs
    assert line["employee_id"] == "[withheld: an email address]"
    assert line["n"] == 3
