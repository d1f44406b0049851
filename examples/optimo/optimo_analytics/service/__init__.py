"""Tracking helpers: one class per domain, one fire-and-forget method per event."""

# The registry first: every event is registered before a helper can track it.
import optimo_analytics.registry  # noqa: F401
from optimo_analytics.service.auth import AuthTrackHelper
from optimo_analytics.service.core import CoreTrackHelper
from optimo_analytics.service.map import MapTrackHelper
from optimo_analytics.service.risk import RiskTrackHelper
from optimo_analytics.service.survey import SurveyTrackHelper

__all__ = [
    "AuthTrackHelper",
    "CoreTrackHelper",
    "MapTrackHelper",
    "RiskTrackHelper",
    "SurveyTrackHelper",
]
