"""Event names: {prefix}.{object}.{action}[.error]; never "cron" (use is_cron_job)."""

from __future__ import annotations

from typing import Final


class MixPanelEvent:
    """Names of this package's events, one constant per event."""

    # Authentication
    USER_LOGGED_IN: Final = "svc.auth.user_logged_in"
    # Survey lifecycle
    SURVEY_DELIVERED: Final = "svc.surveys.survey_delivered"
    SURVEY_DELIVERED_ERROR: Final = "svc.surveys.survey_delivered.error"
    # Risk calculation
    RISK_SCORE_CALCULATED: Final = "svc.risk.score_calculated"
    # Manager Action Pipeline
    ACTION_PLAN_CREATED: Final = "svc.map.action_plan_created"
    # Core / HRIS
    HRIS_CSV_UPLOAD_ANALYSIS_COMPLETED: Final = "svc.hris_csv.upload.analysis_completed"
