"""Organization group profiles: Mixpanel's group profile of each ``organization_id``.

Every catalog event carries ``organization_id``; set up as a group key in Mixpanel (Project
Settings > Group Keys: property ``organization_id``, display name "Organization"), each
organization gets a group profile. :class:`OrganizationProfileHelper` keeps that profile in
step with what the catalog knows of the organization (its ``organization_name``, from the
:class:`~hr_catalog.EmployeeDirectory`), written to the outbox in the caller's transaction
by :func:`relay.update_group` and delivered to ``/groups`` in order.
"""

from __future__ import annotations

import structlog
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from hr_catalog.directory import EmployeeDirectory, SqlEmployeeDirectory
from relay import is_strict, update_group

logger = structlog.get_logger(__name__)

#: The group key of organizations: the property every catalog event carries.
ORGANIZATION_GROUP_KEY = "organization_id"


class OrganizationProfileHelper:
    """Keeps organization group profiles in step with the directory, in the caller's transaction."""

    @classmethod
    def sync_organization(
        cls,
        session: Session | Connection,
        *,
        organization_id: str,
        directory: EmployeeDirectory | None = None,
        strict: bool | None = None,
    ) -> str | None:
        """``$set`` the organization's group profile to what the directory knows of it.

        Call where the organization is created or renamed, in that transaction: the profile
        then follows the commit, and a rollback leaves it as it was. Sets
        ``organization_name``. Returns the outbox row's id, or ``None`` when the organization
        is unknown to the directory or the update failed and was logged (strict: raises).
        """
        try:
            organization = (directory or SqlEmployeeDirectory()).lookup_organization(
                session, organization_id
            )
            if organization is None:
                logger.warning("mixpanel_organization_not_found", organization_id=organization_id)
                return None
            return update_group(
                session,
                group_key=ORGANIZATION_GROUP_KEY,
                group_id=organization.organization_id,
                operation="$set",
                properties={"organization_name": organization.organization_name},
                strict=strict,
            )
        except Exception:
            if is_strict(strict):
                raise
            logger.exception(
                "mixpanel_organization_profile_sync_failed", organization_id=organization_id
            )
            return None

    @classmethod
    def delete_organization(
        cls, session: Session | Connection, *, organization_id: str, strict: bool | None = None
    ) -> str | None:
        """Delete the organization's group profile (``$delete``), after its pending updates."""
        return update_group(
            session,
            group_key=ORGANIZATION_GROUP_KEY,
            group_id=organization_id,
            operation="$delete",
            properties=None,
            strict=strict,
        )
