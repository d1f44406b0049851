"""The employee directory over SQL tables ``organizations`` and ``employees`` (SQLAlchemy).

The tables are the host application's, not relay's: :data:`directory_metadata` describes the
columns the directory reads (it is *not* relay's ``metadata``; the host owns and migrates these
tables). :class:`SqlEmployeeDirectory` is a directory for tracking helpers on SQLAlchemy.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Column, ForeignKey, MetaData, String, Table
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from relay._directory import EmployeeInfo, OrganizationInfo, role_of
from relay._errors import StoreError
from relay._tables import NAMING_CONVENTION

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
            role=role_of(row.role, employee_id=employee_id),
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
