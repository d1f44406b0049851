"""Core / HRIS events: ``svc.hris_csv.upload.analysis_completed``.

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
from hr_catalog.directory import EmployeeDirectory, default_directory, resolve_employee
from hr_catalog.schemas import (
    HrisUploadTrigger,
    MxpHrisCsvUploadAnalysisCompletedEventSchema,
    validation_without_values,
)
from relay import SystemRole, is_strict, resolve_distinct_id, track

logger = structlog.get_logger(__name__)


class CoreTrackHelper:
    """Tracks core and HRIS events into the outbox, in the caller's transaction."""

    @classmethod
    def track_hris_csv_upload_analysis_completed(
        cls,
        session: Session | Connection,
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
        directory: EmployeeDirectory | None = None,
        impersonation: bool = False,
        strict: bool | None = None,
    ) -> str | None:
        """Track ``svc.hris_csv.upload.analysis_completed``.

        Call when the analysis of an HRIS CSV upload into ``organization_id`` has finished.
        ``employee_id`` is the admin who uploaded the file, and then the event's
        ``distinct_id``; leave it out when an integration or an API key uploaded it, and the
        event is tracked as ``org_<organization_id>`` with ``employee_id`` ``""``.

        Returns the event's ``$insert_id``, or ``None`` when tracking failed and was logged.
        """
        try:
            return cls._track_hris_csv_upload_analysis_completed(
                session,
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
                directory=directory,
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
        session: Session | Connection,
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
        directory: EmployeeDirectory | None,
        impersonation: bool,
        strict: bool | None,
    ) -> str | None:
        directory = directory or default_directory()
        role: SystemRole | None = None
        if employee_id:
            role = resolve_employee(session, employee_id, directory=directory).role
        organization = directory.lookup_organization(session, organization_id)
        if organization is None:
            logger.warning("mixpanel_organization_not_found", organization_id=organization_id)
        with validation_without_values(MixPanelEvent.HRIS_CSV_UPLOAD_ANALYSIS_COMPLETED):
            properties = MxpHrisCsvUploadAnalysisCompletedEventSchema(
                employee_id=employee_id or "",
                organization_id=organization_id,
                organization_name=organization.organization_name if organization else "",
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
            session,
            event=MixPanelEvent.HRIS_CSV_UPLOAD_ANALYSIS_COMPLETED,
            distinct_id=resolve_distinct_id(user_id=employee_id, organization_id=organization_id),
            properties=properties,
            occurred_at=occurred_at,
            strict=strict,
        )
