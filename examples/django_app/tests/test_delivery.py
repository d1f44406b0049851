"""Delivering a survey tracks ``svc.surveys.survey_delivered``, in the delivery's transaction."""

from __future__ import annotations

import pytest

from relay.contrib.django import relay_engine
from relay.testing import EagerDrain, OutboxCapture
from surveys import services
from surveys.analytics import DeliveryChannel, MixPanelEvent
from surveys.models import Delivery, Employee, Organization, Survey


@pytest.fixture
def employee(db: None) -> Employee:
    org = Organization.objects.create(name="Acme")
    return Employee.objects.create(organization=org, role="employee")


@pytest.fixture
def survey(db: None) -> Survey:
    return Survey.objects.create(title="Pulse", question_count=5)


def test_delivery_is_tracked(
    survey: Survey, employee: Employee, relay_outbox: OutboxCapture
) -> None:
    """The event names the survey and run, and the recipient with their organisation."""
    delivery = services.deliver_survey(survey, employee, channel=DeliveryChannel.SLACK)
    captured = relay_outbox.assert_tracked(
        MixPanelEvent.SURVEY_DELIVERED,
        survey_id=str(survey.id),
        survey_run_id=str(delivery.run_id),
        organization_name="Acme",
        channel="slack",
        question_count=5,
    )
    assert captured.distinct_id == str(employee.id)


def test_failed_hand_over_tracks_nothing(
    survey: Survey, employee: Employee, relay_outbox: OutboxCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the channel fails the delivery rolls back, and its event with it."""
    monkeypatch.setattr(services, "CHANNELS_DOWN", {DeliveryChannel.TEAMS})
    with pytest.raises(services.ChannelDownError):
        services.deliver_survey(survey, employee, channel=DeliveryChannel.TEAMS)
    assert Delivery.objects.count() == 0
    assert relay_outbox.events() == []


@pytest.mark.django_db(transaction=True)
def test_delivery_reaches_mixpanel(relay_outbox: OutboxCapture, relay_drain: EagerDrain) -> None:
    """End to end: committed with the delivery, drained to the Mixpanel stand-in once."""
    org = Organization.objects.create(name="Acme")
    employee = Employee.objects.create(organization=org, role="admin")
    survey = Survey.objects.create(title="Pulse", question_count=2)
    services.deliver_survey(survey, employee, channel=DeliveryChannel.EMAIL)
    assert relay_drain(relay_engine()).delivered == 1
    (ingested,) = relay_drain.standin.ingested()
    assert ingested.event["event"] == MixPanelEvent.SURVEY_DELIVERED
    assert ingested.event["properties"]["distinct_id"] == str(employee.id)
    assert ingested.event["properties"]["role"] == "admin"
