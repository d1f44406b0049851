"""The tests' HR event catalog: names, schemas and one session-first tracking helper per event.

relay ships no events. This is the catalog it once shipped as ``relay.catalog`` (its Django form
is ``examples/optimo``), kept here as the tests' own product so that they track real-looking events
through SQLAlchemy sessions. Importing :mod:`hr_catalog` registers every event with
:mod:`relay._event.registry`.

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

    from hr_catalog import DeliveryChannel, SurveyTrackHelper, SurveyType

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

from hr_catalog.auth import AuthTrackHelper
from hr_catalog.constants import MixPanelEvent
from hr_catalog.core import CoreTrackHelper
from hr_catalog.directory import (
    EmployeeDirectory,
    EmployeeInfo,
    OrganizationInfo,
    StaticEmployeeDirectory,
)
from hr_catalog.map import MapTrackHelper
from hr_catalog.organizations import ORGANIZATION_GROUP_KEY, OrganizationProfileHelper
from hr_catalog.risk import RiskTrackHelper
from hr_catalog.schemas import (
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
from hr_catalog.survey import SurveyTrackHelper

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
