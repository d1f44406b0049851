"""Tracking helpers for ``core`` (HRIS) events: fire-and-forget unless strict."""

from __future__ import annotations

import datetime as dt

import structlog
from relay import SystemRole, is_strict, resolve_distinct_id
from relay.contrib.django import track

from optimo_analytics.constants import MixPanelEvent
from optimo_analytics.schemas import (
    HrisUploadTrigger,
    MxpHrisCsvUploadAnalysisCompletedEventSchema,
)
from optimo_analytics.service.directory import fetch_employee_info, fetch_organization_info

logger = structlog.get_logger(__name__)


class CoreTrackHelper:
    """Tracks core and HRIS events into the outbox, in the caller's Django transaction."""

    @classmethod
    def track_hris_csv_upload_analysis_completed(
        cls,
        *,
        organization_id: str,
        upload_id: str,
        trigger: HrisUploadTrigger,
        total_row_count: int,
        valid_row_count: int,
        error_row_count: int,
        created_employee_count: int,
        updated_employee_count: int,
        duration_ms: int,
        employee_id: str | None = None,
        occurred_at: dt.datetime | None = None,
        impersonation: bool = False,
        strict: bool | None = None,
    ) -> str | None:
        """Track ``svc.hris_csv.upload.analysis_completed``.

        Call when the analysis of an HRIS CSV upload into ``organization_id`` (its uuid) has
        finished. ``employee_id`` is the admin who uploaded the file, and then the event's
        ``distinct_id``; leave it out when an integration or an API key uploaded it, and the
        event is tracked as ``org_<organization_id>`` with ``employee_id`` ``""``.

        Returns the event's ``$insert_id``, or ``None`` when tracking failed and was logged (in
        strict mode, as in tests, it raises instead).
        """
        try:
            return cls._track_hris_csv_upload_analysis_completed(
                organization_id=organization_id,
                upload_id=upload_id,
                trigger=trigger,
                total_row_count=total_row_count,
                valid_row_count=valid_row_count,
                error_row_count=error_row_count,
                created_employee_count=created_employee_count,
                updated_employee_count=updated_employee_count,
                duration_ms=duration_ms,
                employee_id=employee_id,
                occurred_at=occurred_at,
                impersonation=impersonation,
                strict=strict,
            )
        except Exception:
            if is_strict(strict):
                raise
            # Fire-and-forget: a tracking failure must never break the upload itself.
            logger.exception(
                "mixpanel_hris_csv_upload_analysis_completed_tracking_failed",
                employee_id=employee_id,
                organization_id=organization_id,
                upload_id=upload_id,
            )
            return None

    @staticmethod
    def _track_hris_csv_upload_analysis_completed(
        *,
        organization_id: str,
        upload_id: str,
        trigger: HrisUploadTrigger,
        total_row_count: int,
        valid_row_count: int,
        error_row_count: int,
        created_employee_count: int,
        updated_employee_count: int,
        duration_ms: int,
        employee_id: str | None,
        occurred_at: dt.datetime | None,
        impersonation: bool,
        strict: bool | None,
    ) -> str | None:
        role: SystemRole | None = None
        if employee_id:
            role = fetch_employee_info(employee_id=employee_id).role
        organization = fetch_organization_info(organization_id=organization_id)
        properties = MxpHrisCsvUploadAnalysisCompletedEventSchema(
            employee_id=employee_id or "",
            organization_id=organization.organization_id,
            organization_name=organization.organization_name,
            role=role,
            impersonation=impersonation,
            upload_id=upload_id,
            trigger=trigger,
            total_row_count=total_row_count,
            valid_row_count=valid_row_count,
            error_row_count=error_row_count,
            created_employee_count=created_employee_count,
            updated_employee_count=updated_employee_count,
            duration_ms=duration_ms,
        )
        return track(
            event=MixPanelEvent.HRIS_CSV_UPLOAD_ANALYSIS_COMPLETED,
            distinct_id=resolve_distinct_id(user_id=employee_id, organization_id=organization_id),
            properties=properties,
            occurred_at=occurred_at,
            strict=strict,
        )
