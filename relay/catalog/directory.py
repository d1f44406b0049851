"""Who an employee is, for analytics: their organisation and role, looked up by id.

Catalog helpers take only an ``employee_id`` and ask an :class:`EmployeeDirectory` for the
rest, as the seed's ``_fetch_required_emp_info`` does. :class:`SqlEmployeeDirectory` reads
the host application's ``organizations`` and ``employees`` tables (described by
:data:`directory_metadata`, which is *not* relay's own metadata: the host owns and migrates
these tables); :class:`StaticEmployeeDirectory` is the in-memory fake for tests.

The directory returns identifiers, the organisation's name (approved for analytics) and the
role: nothing personal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
import structlog
from sqlalchemy import Column, ForeignKey, MetaData, String, Table
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from relay import SystemRole
from relay._errors import StoreError
from relay._tables import NAMING_CONVENTION

logger = structlog.get_logger(__name__)

UUID_STRING_LENGTH = 36
ORGANIZATION_NAME_MAX_LENGTH = 255
ROLE_MAX_LENGTH = 32

#: The host application's tables the SQL directory reads (not relay's ``metadata``).
directory_metadata = MetaData(naming_convention=NAMING_CONVENTION)

organizations = Table(
    "organizations",
    directory_metadata,
    Column("id", String(UUID_STRING_LENGTH), primary_key=True),
    Column("name", String(ORGANIZATION_NAME_MAX_LENGTH), nullable=False),
)

employees = Table(
    "employees",
    directory_metadata,
    Column("id", String(UUID_STRING_LENGTH), primary_key=True),
    Column(
        "organization_id",
        String(UUID_STRING_LENGTH),
        ForeignKey(organizations.c.id),
        nullable=False,
        index=True,
    ),
    Column("role", String(ROLE_MAX_LENGTH), nullable=True),
)


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


def _role(value: str | None, *, employee_id: str) -> SystemRole | None:
    if value is None:
        return None
    try:
        return SystemRole(value)
    except ValueError:
        # A role the catalog does not know yet still yields an event, without the role.
        logger.warning("mixpanel_employee_role_unknown", employee_id=employee_id)
        return None


class SqlEmployeeDirectory:
    """The directory over the host's ``organizations`` and ``employees`` tables.

    Each lookup is one ``SELECT`` run inside a SAVEPOINT on the caller's session: should it
    fail (a missing table, a dropped connection) only the savepoint is rolled back, so on
    PostgreSQL the caller's transaction is not left aborted. Driver errors are raised as
    :class:`relay._errors.StoreError`.
    """

    def lookup(self, session: Session | Connection, employee_id: str) -> EmployeeInfo | None:
        """Read one employee joined to their organisation.

        Lock: none (a plain read in the caller's transaction). Guard: primary key.
        """
        statement = (
            sa.select(
                employees.c.id,
                employees.c.organization_id,
                organizations.c.name,
                employees.c.role,
            )
            .join_from(employees, organizations)
            .where(employees.c.id == employee_id)
        )
        row = self._one_or_none(session, statement)
        if row is None:
            return None
        return EmployeeInfo(
            employee_id=row.id,
            organization_id=row.organization_id,
            organization_name=row.name,
            role=_role(row.role, employee_id=employee_id),
        )

    def lookup_organization(
        self, session: Session | Connection, organization_id: str
    ) -> OrganizationInfo | None:
        """Read one organisation.

        Lock: none (a plain read in the caller's transaction). Guard: primary key.
        """
        statement = sa.select(organizations.c.id, organizations.c.name).where(
            organizations.c.id == organization_id
        )
        row = self._one_or_none(session, statement)
        if row is None:
            return None
        return OrganizationInfo(organization_id=row.id, organization_name=row.name)

    @staticmethod
    def _one_or_none(
        session: Session | Connection, statement: sa.Select[tuple[str, ...]]
    ) -> sa.Row[tuple[str, ...]] | None:
        try:
            with session.begin_nested():
                return session.execute(statement).one_or_none()
        except sa.exc.DBAPIError as exc:
            raise StoreError(
                f"employee directory lookup failed: {type(exc.orig).__name__}"
            ) from exc


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


def resolve_employee(
    session: Session | Connection,
    employee_id: str,
    *,
    directory: EmployeeDirectory | None = None,
) -> EmployeeInfo:
    """The employee from ``directory`` (default :class:`SqlEmployeeDirectory`).

    An unknown employee still yields an event, as the seed asks: organisation fields ``""``
    and role ``None``, logged as a warning with the id.
    """
    found = (directory or SqlEmployeeDirectory()).lookup(session, employee_id)
    if found is not None:
        return found
    logger.warning("mixpanel_employee_not_found", employee_id=employee_id)
    return EmployeeInfo(
        employee_id=employee_id, organization_id="", organization_name="", role=None
    )
