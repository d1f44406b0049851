"""Who an employee is, for the catalog helpers: :func:`resolve_employee` and the default directory.

The protocol (:class:`EmployeeDirectory`, :class:`EmployeeInfo`, :class:`OrganizationInfo`) and
the in-memory :class:`StaticEmployeeDirectory` live in :mod:`relay._directory` (importable
without the catalog, which registers its events); they are re-exported here.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from relay._directory import (
    EmployeeDirectory,
    EmployeeInfo,
    OrganizationInfo,
    StaticEmployeeDirectory,
    role_of,
)

__all__ = [
    "EmployeeDirectory",
    "EmployeeInfo",
    "OrganizationInfo",
    "StaticEmployeeDirectory",
    "default_directory",
    "resolve_employee",
    "role_of",
]

logger = structlog.get_logger(__name__)


def resolve_employee(
    session: Session | Connection,
    employee_id: str,
    *,
    directory: EmployeeDirectory | None = None,
) -> EmployeeInfo:
    """The employee from ``directory`` (default: :func:`default_directory`).

    An unknown employee still yields an event, as the seed asks: organisation fields ``""``
    and role ``None``, logged as a warning with the id.
    """
    found = (directory or default_directory()).lookup(session, employee_id)
    if found is not None:
        return found
    logger.warning("mixpanel_employee_not_found", employee_id=employee_id)
    return EmployeeInfo(
        employee_id=employee_id, organization_id="", organization_name="", role=None
    )


def default_directory() -> EmployeeDirectory:
    """The directory a helper uses when given none: the SQL tables ``employees`` and
    ``organizations`` (:class:`relay.contrib.sqlalchemy_directory.SqlEmployeeDirectory`)."""
    from relay.contrib.sqlalchemy_directory import SqlEmployeeDirectory  # noqa: PLC0415

    return SqlEmployeeDirectory()


def __getattr__(name: str) -> Any:
    # The SQL directory moved to relay.contrib.sqlalchemy_directory; old imports keep working.
    if name in ("SqlEmployeeDirectory", "directory_metadata", "employees", "organizations"):
        import relay.contrib.sqlalchemy_directory as moved  # noqa: PLC0415

        return getattr(moved, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
