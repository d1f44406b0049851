"""The catalog in Django: helpers without a session, the directory over the host's models."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import ALIASES, SURVEY_DELIVERED, rolled_back
from django.db import transaction
from djapp.models import Employee, Organization

from relay.catalog import DeliveryChannel, SurveyType
from relay.contrib.django.catalog import ModelEmployeeDirectory, SurveyTrackHelper
from relay.testing import OutboxCapture

pytestmark = pytest.mark.django_db(databases=list(ALIASES))

DELIVERY: dict[str, Any] = {
    "survey_id": "survey-9",
    "survey_run_id": "run-9",
    "survey_type": SurveyType.PULSE,
    "channel": DeliveryChannel.EMAIL,
    "question_count": 4,
}


def _people(alias: str) -> None:
    org = Organization.objects.using(alias).create(id="org-9", name="Initech")
    Employee.objects.using(alias).create(id="emp-9", organization=org, role="admin")


def test_helper_reads_the_uncommitted_employee_and_tracks_in_the_block(
    alias: str, relay_outbox: OutboxCapture, settings: Any
) -> None:
    """Employee rows written in the same block are found; the event joins that block."""
    settings.RELAY = {
        "EMPLOYEE_DIRECTORY": ModelEmployeeDirectory(employee_model="djapp.Employee", using=alias)
    }
    with transaction.atomic(using=alias):
        _people(alias)
        insert_id = SurveyTrackHelper.track_survey_delivered(
            employee_id="emp-9", using=alias, **DELIVERY
        )
    assert insert_id is not None
    from relay.contrib.django import borrowed_connection  # noqa: PLC0415

    with borrowed_connection(alias) as conn:
        captured = relay_outbox.assert_tracked(
            conn, SURVEY_DELIVERED, organization_name="Initech", role="admin"
        )
    assert captured.distinct_id == "emp-9"
    assert captured.properties["channel"] == "email"


def test_rolled_back_block_takes_the_helpers_event(alias: str, relay_outbox: OutboxCapture) -> None:
    """The helper writes in the caller's block: rolled back, nothing stays."""
    directory = ModelEmployeeDirectory(employee_model="djapp.Employee", using=alias)
    with rolled_back(alias):
        _people(alias)
        SurveyTrackHelper.track_survey_delivered(
            employee_id="emp-9", using=alias, directory=directory, **DELIVERY
        )
    from relay.contrib.django import borrowed_connection  # noqa: PLC0415

    with borrowed_connection(alias) as conn:
        assert relay_outbox.events(conn) == []


def test_unknown_employee_still_yields_an_event(alias: str, relay_outbox: OutboxCapture) -> None:
    """As the seed asks: organisation fields empty, role None, for an unknown employee."""
    directory = ModelEmployeeDirectory(employee_model=Employee, using=alias)
    SurveyTrackHelper.track_survey_delivered(
        employee_id="nobody", using=alias, directory=directory, **DELIVERY
    )
    from relay.contrib.django import borrowed_connection  # noqa: PLC0415

    with borrowed_connection(alias) as conn:
        relay_outbox.assert_tracked(conn, SURVEY_DELIVERED, organization_name="", role=None)


def test_directory_organization_lookup(alias: str) -> None:
    """``lookup_organization`` reads the organisation model the employee points to."""
    directory = ModelEmployeeDirectory(employee_model="djapp.Employee", using=alias)
    _people(alias)
    found = directory.lookup_organization(None, "org-9")  # type: ignore[arg-type]
    assert found is not None
    assert found.organization_name == "Initech"
    assert directory.lookup_organization(None, "nope") is None  # type: ignore[arg-type]


def test_a_broken_directory_fails_strictly_and_leaves_the_block(alias: str) -> None:
    """A directory whose model has no such field raises in strict mode (tests are strict);
    the lookup ran in a savepoint, so the caller's block can go on and commit."""
    directory = ModelEmployeeDirectory(
        employee_model="djapp.Employee", organization="no_such_field", using=alias
    )
    with transaction.atomic(using=alias):
        _people(alias)
        with pytest.raises(Exception):  # noqa: B017,PT011 - the ORM's FieldError, chained
            SurveyTrackHelper.track_survey_delivered(
                employee_id="emp-9", using=alias, directory=directory, **DELIVERY
            )
        assert Employee.objects.using(alias).filter(pk="emp-9").exists()
