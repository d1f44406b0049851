"""Who an employee is, for analytics: the employee directory protocol and its in-memory fake.

Tracking helpers take only an ``employee_id`` and ask an :class:`EmployeeDirectory` for the
rest, as the seed's ``_fetch_required_emp_info`` does. The directory is the host's: this module
defines the protocol and declares none of the host's tables. Implementations:

- :class:`relay.contrib.sqlalchemy_directory.SqlEmployeeDirectory` reads ``organizations`` and
  ``employees`` tables through SQLAlchemy;
- :class:`relay.contrib.django.catalog.ModelEmployeeDirectory` reads the host's Django models;
- :class:`StaticEmployeeDirectory` is the in-memory fake for tests.

The directory returns identifiers, the organisation's name (approved for analytics) and the
role: nothing personal. This module registers no event (relay ships none).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import structlog
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from relay._event.properties import SystemRole

logger = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class OrganizationInfo:
    """An organisation as analytics sees it."""

    organization_id: str
    organization_name: str


@dataclass(frozen=True, slots=True)
class EmployeeInfo:
    """An employee as analytics sees it: ids, the organisation's name and the role."""

    employee_id: str
    organization_id: str
    organization_name: str
    role: SystemRole | None


class EmployeeDirectory(Protocol):
    """Looks up employees and organisations by id; ``None`` when there is no such one.

    ``session`` is the caller's ``Session`` or ``Connection``, so the lookup sees the
    caller's own uncommitted rows. A lookup must not break the caller's transaction.
    """

    def lookup(self, session: Session | Connection, employee_id: str) -> EmployeeInfo | None:
        """The employee ``employee_id`` with their organisation and role, or ``None``."""
        ...

    def lookup_organization(
        self, session: Session | Connection, organization_id: str
    ) -> OrganizationInfo | None:
        """The organisation ``organization_id``, or ``None``."""
        ...


class StaticEmployeeDirectory:
    """An in-memory directory for tests: employees given up front, the session ignored.

    Organisations are those of the employees plus any given in ``organizations``
    (organisation id -> name).
    """

    def __init__(
        self,
        employees: Mapping[str, EmployeeInfo],
        *,
        organizations: Mapping[str, str] | None = None,
    ) -> None:
        self._employees = dict(employees)
        self._organizations = {
            info.organization_id: info.organization_name for info in self._employees.values()
        }
        self._organizations.update(organizations or {})

    def lookup(self, session: Session | Connection, employee_id: str) -> EmployeeInfo | None:
        """The employee given for ``employee_id``, or ``None``."""
        return self._employees.get(employee_id)

    def lookup_organization(
        self, session: Session | Connection, organization_id: str
    ) -> OrganizationInfo | None:
        """The organisation given for ``organization_id``, or ``None``."""
        name = self._organizations.get(organization_id)
        if name is None:
            return None
        return OrganizationInfo(organization_id=organization_id, organization_name=name)


def role_of(value: str | None, *, employee_id: str) -> SystemRole | None:
    """``value`` as a :class:`relay.SystemRole`; an unknown role is dropped with a warning.

    A role the catalog does not know yet still yields an event, without the role.
    """
    if value is None:
        return None
    try:
        return SystemRole(value)
    except ValueError:
        logger.warning("mixpanel_employee_role_unknown", employee_id=employee_id)
        return None
