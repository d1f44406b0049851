"""Delivering a survey: the business write and its analytics event, in one transaction."""

from __future__ import annotations

from django.db import transaction

from surveys.analytics import DeliveryChannel, SurveyTrackHelper, SurveyType
from surveys.models import Delivery, Employee, Survey


class ChannelDownError(Exception):
    """The delivery channel refused the survey."""


def deliver_survey(
    survey: Survey, employee: Employee, *, channel: DeliveryChannel, reminder: bool = False
) -> Delivery:
    """Record the delivery and track ``svc.surveys.survey_delivered`` with it.

    Both commit together or not at all: should the hand-over to the channel fail after the
    row is written, the block rolls back and no event reaches Mixpanel.
    """
    with transaction.atomic():
        delivery = Delivery.objects.create(survey=survey, employee=employee, channel=channel)
        SurveyTrackHelper.track_survey_delivered(
            employee_id=str(employee.id),
            survey_id=str(survey.id),
            survey_run_id=str(delivery.run_id),
            survey_type=SurveyType.PULSE,
            channel=channel,
            question_count=survey.question_count,
            is_reminder=reminder,
        )
        _hand_over(delivery)
    return delivery


#: Channels whose gateway is down (the example's stand-in for a real outage).
CHANNELS_DOWN: set[DeliveryChannel] = set()


def _hand_over(delivery: Delivery) -> None:
    """Send the survey on its channel; raises when that channel is down."""
    if delivery.channel in CHANNELS_DOWN:
        raise ChannelDownError(f"{delivery.channel} is down")
