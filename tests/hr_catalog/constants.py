"""The catalog's event names, grouped by domain.

Every name follows ``{prefix}.{object}.{action}[.error]`` (see :mod:`relay._event.naming`):
lowercase snake_case segments, at least three before an optional trailing ``.error``. No
name mentions ``cron``: an event tracked by a cron run is the same event, marked with
``is_cron_job`` (:func:`relay.cron_run`).
"""

from __future__ import annotations

from typing import Final


class MixPanelEvent:
    """Names of the events the catalog ships, one constant per event."""

    # --- Authentication (hr_catalog.auth) -------------------------------------------------
    USER_LOGGED_IN: Final = "svc.auth.user_logged_in"

    # --- Survey lifecycle (hr_catalog.survey) ---------------------------------------------
    SURVEY_DELIVERED: Final = "svc.surveys.survey_delivered"
    SURVEY_DELIVERED_ERROR: Final = "svc.surveys.survey_delivered.error"

    # --- Risk calculation (hr_catalog.risk) -----------------------------------------------
    RISK_SCORE_CALCULATED: Final = "svc.risk.score_calculated"

    # --- Manager Action Pipeline (hr_catalog.map) -----------------------------------------
    ACTION_PLAN_CREATED: Final = "svc.map.action_plan_created"

    # --- Core / HRIS (hr_catalog.core) ----------------------------------------------------
    HRIS_CSV_UPLOAD_ANALYSIS_COMPLETED: Final = "svc.hris_csv.upload.analysis_completed"
