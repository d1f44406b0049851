"""relay's pytest plugin under pytest-django: strict tracking, and the outbox in view.

Loaded with ``-p relay.testing.plugin`` (a host lists it in ``pytest_plugins``). The tests
here are written as a host project's would be.
"""

from __future__ import annotations

import pytest
from conftest import SURVEY_DELIVERED, survey_properties
from django.db import transaction

from relay._errors import EventValidationError
from relay.contrib.django import relay_engine, track
from relay.testing import EagerDrain, OutboxCapture


@pytest.mark.django_db
def test_assert_tracked_sees_the_tests_uncommitted_event(relay_outbox: OutboxCapture) -> None:
    """In a plain ``django_db`` test (one rolled-back transaction) the event is visible."""
    track(event=SURVEY_DELIVERED, distinct_id="emp-7", properties=survey_properties())
    captured = relay_outbox.assert_tracked(SURVEY_DELIVERED, survey_id="survey-1")
    assert captured.distinct_id == "emp-7"
    assert captured.properties["organization_name"] == "Acme"
    with pytest.raises(AssertionError, match=r"no 'svc\.surveys\.survey_delivered' event matches"):
        relay_outbox.assert_tracked(SURVEY_DELIVERED, survey_id="other")


@pytest.mark.django_db
def test_tracking_is_strict_in_tests() -> None:
    """A bad event raises in tests instead of being logged and lost."""
    with pytest.raises(EventValidationError):
        track(event=SURVEY_DELIVERED, distinct_id="emp-7", properties={"survey_id": "s"})


@pytest.mark.django_db
def test_each_test_starts_with_an_empty_outbox(relay_outbox: OutboxCapture) -> None:
    """The earlier tests' events were rolled back with their transactions."""
    assert relay_outbox.events() == []


@pytest.mark.django_db(transaction=True)
def test_transactional_test_sees_committed_events_and_drains_them(
    relay_outbox: OutboxCapture, relay_drain: EagerDrain
) -> None:
    """In a transactional test the committed event is seen and delivered to the stand-in."""
    with transaction.atomic():
        track(event=SURVEY_DELIVERED, distinct_id="emp-8", properties=survey_properties())
    relay_outbox.assert_tracked(SURVEY_DELIVERED, distinct_id="emp-8")
    result = relay_drain(relay_engine())
    assert result.delivered == 1
    assert [e.event["properties"]["distinct_id"] for e in relay_drain.standin.ingested()] == [
        "emp-8"
    ]
    assert relay_outbox.events()[0].state == "delivered"


@pytest.mark.django_db(transaction=True)
def test_committed_events_do_not_leak_into_the_next_test(relay_outbox: OutboxCapture) -> None:
    """After a transactional test relay's tables are emptied, as Django flushes its own."""
    assert relay_outbox.events() == []


def test_a_bind_still_works(relay_outbox: OutboxCapture) -> None:
    """Passing a SQLAlchemy bind keeps the plugin's original behaviour (no Django needed)."""
    with pytest.raises(TypeError, match="event name is missing"):
        relay_outbox.assert_tracked(object())  # type: ignore[call-overload]
