"""A session-first catalog in Django: helpers called without a session, the model directory."""

from __future__ import annotations

import enum
from typing import Any

import hr_catalog
import pytest
from conftest import ALIASES, SURVEY_DELIVERED, rolled_back
from django.db import transaction
from djapp.models import Company, Employee, Member, Organization
from hr_catalog import DeliveryChannel, SurveyType

from relay._errors import StoreError
from relay.contrib.django.catalog import ModelEmployeeDirectory, SessionlessHelper
from relay.testing import OutboxCapture

pytestmark = pytest.mark.django_db(databases=list(ALIASES))

#: The test catalog's session-first helper, called the seed's way (no session) in Django.
SurveyTrackHelper = SessionlessHelper(hr_catalog.SurveyTrackHelper)

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


def _public_directory(alias: str, **options: Any) -> ModelEmployeeDirectory:
    return ModelEmployeeDirectory(
        employee_model="djapp.Member",
        organization="company",
        employee_id_field="uuid",
        organization_id_field="uuid",
        using=alias,
        **options,
    )


def test_directory_looks_employees_up_by_their_public_uuid(
    alias: str, relay_outbox: OutboxCapture
) -> None:
    """With an int pk and a public ``uuid``, the helper's id is the uuid, and so are the event's."""
    company = Company.objects.using(alias).create(name="Initech")
    member = Member.objects.using(alias).create(company=company, role="manager")
    SurveyTrackHelper.track_survey_delivered(
        employee_id=str(member.uuid), using=alias, directory=_public_directory(alias), **DELIVERY
    )
    from relay.contrib.django import borrowed_connection  # noqa: PLC0415

    with borrowed_connection(alias) as conn:
        captured = relay_outbox.assert_tracked(
            conn,
            SURVEY_DELIVERED,
            employee_id=str(member.uuid),
            organization_id=str(company.uuid),
            organization_name="Initech",
            role="manager",
        )
    assert captured.distinct_id == str(member.uuid)
    found = _public_directory(alias).lookup_organization(None, str(company.uuid))  # type: ignore[arg-type]
    assert found is not None
    assert found.organization_name == "Initech"


def test_an_id_the_field_cannot_hold_is_an_unknown_employee(alias: str) -> None:
    """``"emp-9"`` for a UUID field (or a pk of digits) finds no one, instead of failing."""
    directory = _public_directory(alias)
    assert directory.lookup(None, "not-a-uuid") is None  # type: ignore[arg-type]
    assert directory.lookup_organization(None, "42") is None  # type: ignore[arg-type]
    by_pk = ModelEmployeeDirectory(
        employee_model="djapp.Member", organization="company", using=alias
    )
    assert by_pk.lookup(None, "6f1c7a0e-1b2c-4d5e-8f90-123456789abc") is None  # type: ignore[arg-type]


def test_a_field_that_is_not_unique_is_refused(alias: str) -> None:
    """Looking employees up in a non-unique field is a ``StoreError`` naming it."""
    directory = ModelEmployeeDirectory(
        employee_model="djapp.Member", organization="company", employee_id_field="team", using=alias
    )
    with pytest.raises(StoreError, match=r"djapp\.Member\.team is not unique"):
        directory.lookup(None, "core")  # type: ignore[arg-type]


class HostRole(enum.StrEnum):
    """A host product's own roles."""

    COACH = "coach"


def test_directory_maps_roles_to_the_hosts_own_enum(alias: str) -> None:
    """``roles=HostRole``: a stored ``coach`` is ``HostRole.COACH``; an unknown role is None."""
    company = Company.objects.using(alias).create(name="Initech")
    coach = Member.objects.using(alias).create(company=company, role="coach")
    stranger = Member.objects.using(alias).create(company=company, role="admin")
    directory = _public_directory(alias, roles=HostRole)
    found = directory.lookup(None, str(coach.uuid))  # type: ignore[arg-type]
    assert found is not None
    assert found.role is HostRole.COACH
    other = directory.lookup(None, str(stranger.uuid))  # type: ignore[arg-type]
    assert other is not None
    assert other.role is None
