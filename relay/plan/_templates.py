"""The code ``relay events new`` writes: whole new files, and one event's fragments.

Each template is formatted with the host's ruff settings before it is written or spliced in
(:mod:`relay.plan._format`), so line length and quotes are the host's. Two flavours of helper:
Django (no session: :func:`relay.contrib.django.track`, the employee's organisation and role
fetched through the package's directory, the test reading the outbox with the
``relay_outbox`` fixture) and SQLAlchemy (the caller's session first).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Names:
    """Every name one event's code uses."""

    event: str
    package: str
    domain: str
    action: str
    constant: str
    schema: str
    helper: str
    method: str
    #: The module holding ``fetch_employee_info`` (Django helpers).
    directory: str = ""

    @property
    def log_event(self) -> str:
        """The structured-log event name of a tracking failure."""
        return f"mixpanel_{self.action}_tracking_failed"


PACKAGE_INIT = '''\
"""{n.package}: the project's analytics events, tracked with relay."""
'''

CONSTANTS = '''\
"""Event names: {{prefix}}.{{object}}.{{action}}[.error]; never "cron" (use is_cron_job)."""

from __future__ import annotations

from typing import Final


class MixPanelEvent:
    """Names of this package's events, one constant per event."""

{constant}'''

CONSTANT = """\
    {n.constant}: Final = "{n.event}"
"""

SCHEMAS = '''\
"""Event schemas: Mxp{{Domain}}{{Action}}EventSchema; ids as str, never personal data."""

from __future__ import annotations

from pydantic import Field
from relay import STRICT_MODEL_CONFIG, MixpanelSuperEventPropertiesSchema

{schema}'''

SCHEMA = '''\
class {n.schema}(MixpanelSuperEventPropertiesSchema):
    """Properties of ``{n.event}``.

    Tracked when TODO: describe when this event fires.
    """

    # Identifiers as str, never personal data; the base fields are inherited, not redefined.
    subject_id: str = Field(description="TODO: UUID as string of what the event is about")

    model_config = STRICT_MODEL_CONFIG
'''

REGISTRY = '''\
"""Event -> schema: every event of the package, registered with relay when imported."""

from __future__ import annotations

from relay import (
    EVENT_SCHEMA_REGISTRY,
    MixpanelSuperEventPropertiesSchema,
    is_event_registered,
    register_event,
)

from {n.package}.constants import MixPanelEvent
from {n.package}.schemas import {n.schema}

_EVENT_SCHEMA_REGISTRY: dict[str, type[MixpanelSuperEventPropertiesSchema]] = {{
    MixPanelEvent.{n.constant}: {item},
}}

for _event, _schema in _EVENT_SCHEMA_REGISTRY.items():
    register_event(_event, _schema)

__all__ = ["EVENT_SCHEMA_REGISTRY", "is_event_registered"]
'''

SERVICE_INIT = '''\
"""Tracking helpers: one class per domain, one fire-and-forget method per event."""

# The registry first: every event is registered before a helper can track it.
import {n.package}.registry  # noqa: F401
from {n.package}.service.{n.domain} import {n.helper}

__all__ = ["{n.helper}"]
'''

DIRECTORY = '''\
"""Who an employee is, for the events' base properties: read through the project's models.

TODO: point EMPLOYEE_MODEL at the project's employee model; the lookup below follows the
employee's ``organization`` foreign key and reads its ``uuid`` and ``name``, and the
employee's ``role``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.core.exceptions import ValidationError
from relay import SystemRole

#: The employee model, "app_label.ModelName"; employees are looked up by their public uuid.
EMPLOYEE_MODEL = "{employee_model}"


@dataclass(frozen=True, slots=True)
class EmployeeInfo:
    """The employee's organization and role, as the events' base properties want them."""

    organization_id: str
    organization_name: str
    role: SystemRole | None


def fetch_employee_info(*, employee_id: str) -> EmployeeInfo:
    """Return who ``employee_id`` (the employee's uuid) is; raise ``LookupError`` if nobody."""
    employee_model = apps.get_model(EMPLOYEE_MODEL)
    try:
        employee = employee_model.objects.select_related("organization").get(uuid=employee_id)
    except (employee_model.DoesNotExist, ValueError, ValidationError) as exc:
        raise LookupError(f"no employee {{employee_id}}") from exc
    organization = employee.organization
    role = str(employee.role or "")
    return EmployeeInfo(
        organization_id=str(organization.uuid),
        organization_name=str(organization.name),
        role=SystemRole(role) if role in set(SystemRole) else None,
    )
'''

DJANGO_SERVICE = '''\
"""Tracking helpers for ``{n.domain}`` events: fire-and-forget unless strict."""

from __future__ import annotations

import structlog
from relay import is_strict
from relay.contrib.django import track

from {n.package}.constants import MixPanelEvent
from {n.package}.schemas import {n.schema}
from {n.directory} import fetch_employee_info

logger = structlog.get_logger(__name__)


class {n.helper}:
    """Tracks {n.domain} events into the outbox, in the caller's Django transaction."""

{methods}'''

DJANGO_METHODS = '''\
    @classmethod
    def {n.method}(
        cls,
        *,
        employee_id: str,
        subject_id: str,
        strict: bool | None = None,
    ) -> str | None:
        """Track ``{n.event}``.

        Call when TODO: the trigger. Returns the event's ``$insert_id``, or ``None`` when
        tracking failed and was logged (in strict mode, as in tests, it raises instead).
        """
        try:
            return cls._{n.method}(
                employee_id=employee_id,
                subject_id=subject_id,
                strict=strict,
            )
        except Exception:
            if is_strict(strict):
                raise
            # Fire-and-forget: a tracking failure must never break the business operation.
            logger.exception(
                "{n.log_event}",
                employee_id=employee_id,
            )
            return None

    @staticmethod
    def _{n.method}(
        *,
        employee_id: str,
        subject_id: str,
        strict: bool | None,
    ) -> str | None:
        emp_info = fetch_employee_info(employee_id=employee_id)
        properties = {n.schema}(
            employee_id=employee_id,
            organization_id=emp_info.organization_id,
            organization_name=emp_info.organization_name,
            role=emp_info.role,
            impersonation=False,
            subject_id=subject_id,
        )
        return track(
            event=MixPanelEvent.{n.constant},
            distinct_id=employee_id,
            properties=properties,
            strict=strict,
        )
'''

SQL_SERVICE = '''\
"""Tracking helpers for ``{n.domain}`` events: fire-and-forget unless strict."""

from __future__ import annotations

import datetime as dt

import structlog
from relay import SystemRole, is_strict, track
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from {n.package}.constants import MixPanelEvent
from {n.package}.schemas import {n.schema}

logger = structlog.get_logger(__name__)


class {n.helper}:
    """Tracks {n.domain} events into the outbox, in the caller's transaction."""

{methods}'''

SQL_METHODS = '''\
    @classmethod
    def {n.method}(
        cls,
        session: Session | Connection,
        *,
        employee_id: str,
        organization_id: str,
        organization_name: str,
        role: SystemRole | None,
        subject_id: str,
        occurred_at: dt.datetime | None = None,
        strict: bool | None = None,
    ) -> str | None:
        """Track ``{n.event}``.

        Call when TODO: the trigger. Returns the event's ``$insert_id``, or ``None`` when
        tracking failed and was logged (in strict mode, as in tests, it raises instead).
        """
        try:
            return cls._{n.method}(
                session,
                employee_id=employee_id,
                organization_id=organization_id,
                organization_name=organization_name,
                role=role,
                subject_id=subject_id,
                occurred_at=occurred_at,
                strict=strict,
            )
        except Exception:
            if is_strict(strict):
                raise
            # Fire-and-forget: a tracking failure must never break the business operation.
            logger.exception(
                "{n.log_event}",
                employee_id=employee_id,
            )
            return None

    @staticmethod
    def _{n.method}(
        session: Session | Connection,
        *,
        employee_id: str,
        organization_id: str,
        organization_name: str,
        role: SystemRole | None,
        subject_id: str,
        occurred_at: dt.datetime | None,
        strict: bool | None,
    ) -> str | None:
        properties = {n.schema}(
            employee_id=employee_id,
            organization_id=organization_id,
            organization_name=organization_name,
            role=role,
            impersonation=False,
            subject_id=subject_id,
        )
        return track(
            session,
            event=MixPanelEvent.{n.constant},
            distinct_id=employee_id,
            properties=properties,
            occurred_at=occurred_at,
            strict=strict,
        )
'''

#: Names the helper methods use, by flavour: name -> the module to import it from.
DJANGO_NEEDS = {
    "is_strict": "relay",
    "track": "relay.contrib.django",
    "MixPanelEvent": "{package}.constants",
    "fetch_employee_info": "{directory}",
}
SQL_NEEDS = {
    "SystemRole": "relay",
    "is_strict": "relay",
    "track": "relay",
    "MixPanelEvent": "{package}.constants",
    "Session": "sqlalchemy.orm",
    "Connection": "sqlalchemy.engine",
}

TESTS_INIT = '''\
"""Tests of the package's analytics events."""
'''

TESTS_CONFTEST = '''\
"""Fixtures of the analytics tests (relay's plugin is enabled in the project's root conftest)."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps

from {n.package}.service.directory import EMPLOYEE_MODEL


@pytest.fixture
def optimo_employee(db: None) -> Any:
    """Create an employee of a new organization (TODO: the project's required fields)."""
    employee_model = apps.get_model(EMPLOYEE_MODEL)
    organization_model = employee_model._meta.get_field("organization").related_model
    organization = organization_model.objects.create(name="Test Org")
    return employee_model.objects.create(organization=organization, role="employee")
'''

DJANGO_TEST = '''\
"""Tests for ``{n.event}`` tracking."""

from __future__ import annotations

import uuid
from typing import Any
from unittest.mock import patch

import pytest
from relay.testing.plugin import OutboxCapture

from {n.package}.constants import MixPanelEvent
from {registry} import EVENT_SCHEMA_REGISTRY, is_event_registered
from {n.package}.schemas import {n.schema}
from {n.package}.service import {n.helper}

pytestmark = [pytest.mark.django_db]


class Test{n.schema}:
    """Schema validation."""

    def test_schema_creation_with_valid_properties(self) -> None:
        """The schema accepts valid properties."""
        schema = {n.schema}(
            employee_id=str(uuid.uuid4()),
            organization_id=str(uuid.uuid4()),
            organization_name="Test Org",
            role=None,
            impersonation=False,
            subject_id=str(uuid.uuid4()),
        )
        assert schema.subject_id


class Test{n.schema}Registry:
    """Registry registration."""

    def test_event_is_registered(self) -> None:
        """The event is registered with its schema."""
        assert is_event_registered(MixPanelEvent.{n.constant})
        assert EVENT_SCHEMA_REGISTRY[MixPanelEvent.{n.constant}] is {n.schema}


class Test{n.schema}Tracking:
    """The helper writes the event into the outbox, in the test's transaction."""

    def test_tracking_writes_the_event(
        self,
        relay_outbox: OutboxCapture,
        optimo_employee: Any,
    ) -> None:
        """The event is in the outbox with the employee's organization."""
        employee_id = str(optimo_employee.uuid)
        subject_id = str(uuid.uuid4())
        {n.helper}.{n.method}(
            employee_id=employee_id,
            subject_id=subject_id,
        )
        relay_outbox.assert_tracked(
            MixPanelEvent.{n.constant},
            distinct_id=employee_id,
            organization_id=str(optimo_employee.organization.uuid),
            subject_id=subject_id,
        )


class Test{n.schema}NonBlocking:
    """Fire-and-forget behaviour."""

    def test_exception_does_not_propagate(self) -> None:
        """A tracking failure is logged and swallowed outside strict mode."""
        boom = RuntimeError("boom")
        with patch.object({n.helper}, "_{n.method}", side_effect=boom):
            result = {n.helper}.{n.method}(
                employee_id=str(uuid.uuid4()),
                subject_id=str(uuid.uuid4()),
                strict=False,
            )
        assert result is None

    def test_strict_mode_raises(self) -> None:
        """In strict mode (every test, under relay's plugin) the failure is raised."""
        with pytest.raises(LookupError):
            {n.helper}.{n.method}(
                employee_id=str(uuid.uuid4()),
                subject_id=str(uuid.uuid4()),
            )
'''

SQL_TEST = '''\
"""Tests for ``{n.event}`` tracking."""

from __future__ import annotations

import uuid
from unittest.mock import patch

from relay import EVENT_SCHEMA_REGISTRY, is_event_registered

from {n.package}.constants import MixPanelEvent
from {n.package}.schemas import {n.schema}
from {n.package}.service import {n.helper}


class Test{n.schema}:
    """Schema validation."""

    def test_schema_creation_with_valid_properties(self) -> None:
        """The schema accepts valid properties."""
        schema = {n.schema}(
            employee_id=str(uuid.uuid4()),
            organization_id=str(uuid.uuid4()),
            organization_name="Test Org",
            role=None,
            impersonation=False,
            subject_id=str(uuid.uuid4()),
        )
        assert schema.subject_id


class Test{n.schema}Registry:
    """Registry registration."""

    def test_event_is_registered(self) -> None:
        """The event is registered with its schema."""
        assert is_event_registered(MixPanelEvent.{n.constant})
        assert EVENT_SCHEMA_REGISTRY[MixPanelEvent.{n.constant}] is {n.schema}


class Test{n.schema}NonBlocking:
    """Fire-and-forget behaviour (the tracking test needs the host's session: TODO)."""

    def test_exception_does_not_propagate(self) -> None:
        """A tracking failure is logged and swallowed outside strict mode."""
        boom = RuntimeError("boom")
        with patch.object({n.helper}, "_{n.method}", side_effect=boom):
            result = {n.helper}.{n.method}(
                None,  # type: ignore[arg-type]
                employee_id=str(uuid.uuid4()),
                organization_id=str(uuid.uuid4()),
                organization_name="Test Org",
                role=None,
                subject_id=str(uuid.uuid4()),
                strict=False,
            )
        assert result is None
'''
