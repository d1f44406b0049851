"""``relay events new``: writes the seven checklist steps for one event into a new host package.

The files follow the shipped catalog's shape: ``constants.py`` (step 1), ``schemas.py`` with a
described field and the registration (steps 2-3), ``<domain>.py`` with the fire-and-forget
helper (step 4), ``__init__.py`` exporting it (step 5) and ``tests/test_<action>_event.py``
with the four test classes of the seed (step 6). Step 7, calling the helper from business
logic, is the host's. Nothing is ever overwritten: if any target file exists, nothing is
written and the existing paths are named.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from relay._errors import RelayError
from relay._event.naming import check_event_name


class ScaffoldExistsError(RelayError):
    """A file ``events new`` would write already exists; nothing was written."""


@dataclass(frozen=True, slots=True)
class _Names:
    event: str
    package: str
    domain: str
    action: str
    constant: str
    schema: str
    helper: str
    method: str

    @property
    def init_imports(self) -> str:
        """The package's import lines, sorted by module as isort wants."""
        lines = {
            "constants": "MixPanelEvent",
            self.domain: self.helper,
            "schemas": self.schema,
        }
        return "\n".join(f"from {self.package}.{m} import {lines[m]}" for m in sorted(lines))

    @property
    def test_imports(self) -> str:
        """The names the test module imports, sorted."""
        return ", ".join(sorted(["MixPanelEvent", self.helper, self.schema]))

    @property
    def exports(self) -> str:
        """The package's ``__all__``, sorted as ruff's RUF022 wants."""
        names = sorted(["MixPanelEvent", self.helper, self.schema])
        return "[" + ", ".join(f'"{name}"' for name in names) + "]"


def _camel(text: str) -> str:
    return "".join(part.capitalize() for part in text.replace(".", "_").split("_") if part)


def _names(event: str, package: str) -> _Names:
    check_event_name(event)
    segments = event.split(".")
    domain = segments[1]
    action = "_".join(segments[2:])
    return _Names(
        event=event,
        package=package,
        domain=domain,
        action=action,
        constant=action.upper(),
        schema=f"Mxp{_camel(domain)}{_camel(action)}EventSchema",
        helper=f"{_camel(domain)}TrackHelper",
        method=f"track_{action}",
    )


def scaffold_event(event: str, *, package_dir: Path) -> list[Path]:
    """Write the event's files into ``package_dir`` (a new package); return the paths written.

    Raises ``EventNameError`` for a bad name and ``ScaffoldExistsError`` naming every target
    that already exists (then nothing is written).
    """
    n = _names(event, package_dir.name)
    files = {
        package_dir / "__init__.py": _INIT,
        package_dir / "constants.py": _CONSTANTS,
        package_dir / "schemas.py": _SCHEMAS,
        package_dir / f"{n.domain}.py": _HELPER,
        package_dir / "tests" / "__init__.py": "",
        package_dir / "tests" / f"test_{n.action}_event.py": _TEST,
    }
    existing = [path for path in files if path.exists()]
    if existing:
        raise ScaffoldExistsError(
            "refusing to overwrite: " + ", ".join(str(p) for p in existing) + " exist(s)"
        )
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(n=n) if template else "", encoding="utf-8")
    return list(files)


_INIT = '''\
"""{n.package}: analytics events, registered with relay at import."""

{n.init_imports}

__all__ = {n.exports}
'''

_CONSTANTS = '''\
"""Event names: {{prefix}}.{{object}}.{{action}}[.error]; never "cron" (use is_cron_job)."""

from __future__ import annotations

from typing import Final


class MixPanelEvent:
    """Names of this package's events, one constant per event."""

    {n.constant}: Final = "{n.event}"
'''

_SCHEMAS = '''\
"""Event schemas, registered with relay at import."""

from __future__ import annotations

from pydantic import Field
from relay import STRICT_MODEL_CONFIG, MixpanelSuperEventPropertiesSchema, register_event

from {n.package}.constants import MixPanelEvent


class {n.schema}(MixpanelSuperEventPropertiesSchema):
    """Properties of ``{n.event}``.

    Tracked when TODO: describe when this event fires.
    """

    # Identifiers as str, never personal data; the base fields are inherited, not redefined.
    subject_id: str = Field(description="TODO: UUID as string of what the event is about")

    model_config = STRICT_MODEL_CONFIG


register_event(MixPanelEvent.{n.constant}, {n.schema})
'''

_HELPER = '''\
"""Tracking helpers for ``{n.domain}`` events: fire-and-forget unless strict."""

from __future__ import annotations

import datetime as dt

import structlog
from relay import is_strict, track
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from {n.package}.constants import MixPanelEvent
from {n.package}.schemas import {n.schema}

logger = structlog.get_logger(__name__)


class {n.helper}:
    """Tracks {n.domain} events into the outbox, in the caller's transaction."""

    @classmethod
    def {n.method}(
        cls,
        session: Session | Connection,
        *,
        employee_id: str,
        organization_id: str,
        organization_name: str,
        subject_id: str,
        occurred_at: dt.datetime | None = None,
        strict: bool | None = None,
    ) -> str | None:
        """Track ``{n.event}``.

        Call when TODO: the trigger. Returns the event's ``$insert_id``, or ``None`` when
        tracking failed and was logged.
        """
        try:
            return cls._{n.method}(
                session,
                employee_id=employee_id,
                organization_id=organization_id,
                organization_name=organization_name,
                subject_id=subject_id,
                occurred_at=occurred_at,
                strict=strict,
            )
        except Exception:
            if is_strict(strict):
                raise
            # Fire-and-forget: a tracking failure must never break the business operation.
            logger.exception("mixpanel_{n.action}_tracking_failed", employee_id=employee_id)
            return None

    @staticmethod
    def _{n.method}(
        session: Session | Connection,
        *,
        employee_id: str,
        organization_id: str,
        organization_name: str,
        subject_id: str,
        occurred_at: dt.datetime | None,
        strict: bool | None,
    ) -> str | None:
        properties = {n.schema}(
            employee_id=employee_id,
            organization_id=organization_id,
            organization_name=organization_name,
            role=None,
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

_TEST = '''\
"""Tests for ``{n.event}`` tracking."""

from __future__ import annotations

import uuid
from unittest.mock import patch

from relay import EVENT_SCHEMA_REGISTRY, is_event_registered

from {n.package} import {n.test_imports}


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
    """The helper tracks the event (TODO: run against the host's outbox session)."""

    def test_tracking_calls_track(self) -> None:
        """The helper passes the event to relay's track()."""
        with patch("{n.package}.{n.domain}.track", return_value="insert-id") as tracked:
            result = {n.helper}.{n.method}(
                None,  # type: ignore[arg-type]  # TODO: a real session
                employee_id=str(uuid.uuid4()),
                organization_id=str(uuid.uuid4()),
                organization_name="Test Org",
                subject_id=str(uuid.uuid4()),
                strict=True,
            )
        assert result == "insert-id"
        assert tracked.call_args.kwargs["event"] == MixPanelEvent.{n.constant}


class Test{n.schema}NonBlocking:
    """Fire-and-forget behaviour."""

    def test_exception_does_not_propagate(self) -> None:
        """A tracking failure is logged and swallowed outside strict mode."""
        boom = RuntimeError("boom")
        with patch.object({n.helper}, "_{n.method}", side_effect=boom):
            result = {n.helper}.{n.method}(
                None,  # type: ignore[arg-type]
                employee_id=str(uuid.uuid4()),
                organization_id=str(uuid.uuid4()),
                organization_name="Test Org",
                subject_id=str(uuid.uuid4()),
                strict=False,
            )
        assert result is None
'''
