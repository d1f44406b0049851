"""The shipped event catalog: names, schemas and one tracking helper per event.

Importing :mod:`relay.catalog` registers every catalog event with :mod:`relay._event.registry`.

- :class:`MixPanelEvent` holds the event names, grouped by domain.
- ``Mxp{Domain}{Action}EventSchema`` classes describe each event's properties.
- ``{Domain}TrackHelper`` classes (``AuthTrackHelper``, ``SurveyTrackHelper``,
  ``RiskTrackHelper``, ``MapTrackHelper``, ``CoreTrackHelper``) have one classmethod per
  event, ``track_<event>(session, *, ...)``: keyword-only after the caller's session, they
  look the employee up in an :class:`EmployeeDirectory`, build the schema, pick the
  ``distinct_id`` and call :func:`relay._tracking.track` in the caller's transaction.
  They are fire-and-forget: a failure is logged and ``None`` returned, unless strict tracking
  is on (``strict=True``, :func:`relay._tracking.strict_tracking`, or the process setting),
  when it is raised.

Example::

    from relay.catalog import DeliveryChannel, SurveyTrackHelper, SurveyType

    with Session(engine) as session, session.begin():
        deliver(survey, employee)
        SurveyTrackHelper.track_survey_delivered(
            session,
            employee_id=str(employee.id),
            survey_id=str(survey.id),
            survey_run_id=str(run.id),
            survey_type=SurveyType.PULSE,
            channel=DeliveryChannel.SLACK,
            question_count=len(survey.questions),
        )
"""

from relay.catalog.auth import AuthTrackHelper
from relay.catalog.constants import MixPanelEvent
from relay.catalog.core import CoreTrackHelper
from relay.catalog.directory import (
    EmployeeDirectory,
    EmployeeInfo,
    OrganizationInfo,
    StaticEmployeeDirectory,
)
from relay.catalog.map import MapTrackHelper
from relay.catalog.organizations import ORGANIZATION_GROUP_KEY, OrganizationProfileHelper
from relay.catalog.risk import RiskTrackHelper
from relay.catalog.schemas import (
    CATALOG_SCHEMAS,
    ActionPlanSource,
    DeliveryChannel,
    HrisUploadTrigger,
    LoginMethod,
    MxpAuthUserLoggedInEventSchema,
    MxpHrisCsvUploadAnalysisCompletedEventSchema,
    MxpMapActionPlanCreatedEventSchema,
    MxpRiskScoreCalculatedEventSchema,
    MxpSurveyDeliveredErrorEventSchema,
    MxpSurveyDeliveredEventSchema,
    RiskLevel,
    SurveyType,
)
from relay.catalog.survey import SurveyTrackHelper

__all__ = [
    "CATALOG_SCHEMAS",
    "ORGANIZATION_GROUP_KEY",
    "ActionPlanSource",
    "AuthTrackHelper",
    "CoreTrackHelper",
    "DeliveryChannel",
    "EmployeeDirectory",
    "EmployeeInfo",
    "HrisUploadTrigger",
    "LoginMethod",
    "MapTrackHelper",
    "MixPanelEvent",
    "MxpAuthUserLoggedInEventSchema",
    "MxpHrisCsvUploadAnalysisCompletedEventSchema",
    "MxpMapActionPlanCreatedEventSchema",
    "MxpRiskScoreCalculatedEventSchema",
    "MxpSurveyDeliveredErrorEventSchema",
    "MxpSurveyDeliveredEventSchema",
    "OrganizationInfo",
    "OrganizationProfileHelper",
    "RiskLevel",
    "RiskTrackHelper",
    "StaticEmployeeDirectory",
    "SurveyTrackHelper",
    "SurveyType",
]


def __getattr__(name: str) -> object:
    # The SQL directory moved to relay.contrib.sqlalchemy_directory; old imports keep working.
    if name in ("SqlEmployeeDirectory", "directory_metadata"):
        import relay.contrib.sqlalchemy_directory as moved  # noqa: PLC0415

        return getattr(moved, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
