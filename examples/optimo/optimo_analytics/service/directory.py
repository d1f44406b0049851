"""Who an employee is, for the events' base properties: read through the project's models.

Employees and organizations are looked up by their public ``uuid`` (the integer primary key
never leaves the database); the employee's ``organization`` foreign key gives the
organization's ``uuid`` and ``name``, and the employee's ``role`` is one of relay's
:class:`relay.SystemRole` values (anything else is sent as ``None``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.core.exceptions import ValidationError
from relay import SystemRole

#: The employee model, "app_label.ModelName"; employees are looked up by their public uuid.
EMPLOYEE_MODEL = "optimo_core.Employee"


@dataclass(frozen=True, slots=True)
class EmployeeInfo:
    """The employee's organization and role, as the events' base properties want them."""

    organization_id: str
    organization_name: str
    role: SystemRole | None


@dataclass(frozen=True, slots=True)
class OrganizationInfo:
    """An organization as the events' base properties want it."""

    organization_id: str
    organization_name: str


def fetch_employee_info(*, employee_id: str) -> EmployeeInfo:
    """Return who ``employee_id`` (the employee's uuid) is; raise ``LookupError`` if nobody."""
    employee_model = apps.get_model(EMPLOYEE_MODEL)
    try:
        employee = employee_model.objects.select_related("organization").get(uuid=employee_id)
    except (employee_model.DoesNotExist, ValueError, ValidationError) as exc:
        raise LookupError(f"no employee {employee_id}") from exc
    organization = employee.organization
    role = str(employee.role or "")
    return EmployeeInfo(
        organization_id=str(organization.uuid),
        organization_name=str(organization.name),
        role=SystemRole(role) if role in set(SystemRole) else None,
    )


def fetch_organization_info(*, organization_id: str) -> OrganizationInfo:
    """Return the organization ``organization_id`` (its uuid); raise ``LookupError`` if none."""
    organization_model = apps.get_model(EMPLOYEE_MODEL)._meta.get_field("organization")
    model = organization_model.related_model
    try:
        organization = model.objects.get(uuid=organization_id)
    except (model.DoesNotExist, ValueError, ValidationError) as exc:
        raise LookupError(f"no organization {organization_id}") from exc
    return OrganizationInfo(
        organization_id=str(organization.uuid), organization_name=str(organization.name)
    )
