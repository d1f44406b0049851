"""Event -> schema: every event of the package, registered with relay when imported."""

from __future__ import annotations

from relay import (
    EVENT_SCHEMA_REGISTRY,
    MixpanelSuperEventPropertiesSchema,
    is_event_registered,
    register_event,
)

from optimo_analytics.constants import MixPanelEvent
from optimo_analytics.schemas import (
    MxpAuthUserLoggedInEventSchema,
    MxpHrisCsvUploadAnalysisCompletedEventSchema,
    MxpMapActionPlanCreatedEventSchema,
    MxpRiskScoreCalculatedEventSchema,
    MxpSurveyDeliveredErrorEventSchema,
    MxpSurveyDeliveredEventSchema,
)

_EVENT_SCHEMA_REGISTRY: dict[str, type[MixpanelSuperEventPropertiesSchema]] = {
    # Authentication
    MixPanelEvent.USER_LOGGED_IN: MxpAuthUserLoggedInEventSchema,
    # Survey lifecycle
    MixPanelEvent.SURVEY_DELIVERED: MxpSurveyDeliveredEventSchema,
    MixPanelEvent.SURVEY_DELIVERED_ERROR: MxpSurveyDeliveredErrorEventSchema,
    # Risk calculation
    MixPanelEvent.RISK_SCORE_CALCULATED: MxpRiskScoreCalculatedEventSchema,
    # Manager Action Pipeline
    MixPanelEvent.ACTION_PLAN_CREATED: MxpMapActionPlanCreatedEventSchema,
    # Core / HRIS
    MixPanelEvent.HRIS_CSV_UPLOAD_ANALYSIS_COMPLETED: MxpHrisCsvUploadAnalysisCompletedEventSchema,
}

for _event, _schema in _EVENT_SCHEMA_REGISTRY.items():
    register_event(_event, _schema)

__all__ = ["EVENT_SCHEMA_REGISTRY", "is_event_registered"]
