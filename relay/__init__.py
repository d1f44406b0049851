"""relay: a transactional outbox that delivers analytics events to Mixpanel.

The public API is what this module exports, plus the public packages ``relay.admin`` (the
audited operator functions behind the admin commands), ``relay.exceptions`` (every exception a
caller may catch), ``relay.plan`` (the tracking-plan tools), ``relay.testing`` (the pytest
plugin and the Mixpanel stand-in), ``relay.contrib`` (host integrations) and ``relay.cli`` (the
``relay`` command). relay ships no events: the host defines its own. Modules whose name starts
with an underscore are private and may change in any release; import their public names from
here.

Names are loaded on first use (PEP 562), so ``import relay`` (and ``relay --help``) does not pay
for pydantic, SQLAlchemy and Alembic until something needs them.
"""

from __future__ import annotations

import importlib

#: relay's version (PEP 440); also the distribution's (pyproject reads it from here). See
#: CHANGELOG.md and the versioning policy in CONTRIBUTING.md.
__version__ = "0.2.0.dev0"

# typing.TYPE_CHECKING without importing typing (type checkers read the name itself): the
# ``relay`` command imports this package before relay.__main__ can turn an early Ctrl-C into a
# quiet stop, so the less it imports, the sooner that guard is in place.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Each public name: (private module, attribute there).
_EXPORTS: dict[str, tuple[str, str]] = {
    "RelaySettings": ("relay._config", "RelaySettings"),
    "ConfigurationError": ("relay._errors", "ConfigurationError"),
    "EventContractError": ("relay._errors", "EventContractError"),
    "EventValidationError": ("relay._errors", "EventValidationError"),
    "RelayError": ("relay._errors", "RelayError"),
    "StoreError": ("relay._errors", "StoreError"),
    "DuplicateInsertIdError": ("relay._errors", "DuplicateInsertIdError"),
    "OutboxTablesMissingError": ("relay._errors", "OutboxTablesMissingError"),
    "resolve_distinct_id": ("relay._event.identity", "resolve_distinct_id"),
    "Location": ("relay._event.location", "Location"),
    "EVENT_SCHEMA_REGISTRY": ("relay._event.registry", "EVENT_SCHEMA_REGISTRY"),
    "is_event_registered": ("relay._event.registry", "is_event_registered"),
    "register_event": ("relay._event.registry", "register_event"),
    "ALIASED_MODEL_CONFIG": ("relay._event.properties", "ALIASED_MODEL_CONFIG"),
    "STRICT_MODEL_CONFIG": ("relay._event.properties", "STRICT_MODEL_CONFIG"),
    "MixpanelSuperEventPropertiesSchema": (
        "relay._event.properties",
        "MixpanelSuperEventPropertiesSchema",
    ),
    "SystemRole": ("relay._event.properties", "SystemRole"),
    "datetime_to_timestamp_ms": ("relay._event.properties", "datetime_to_timestamp_ms"),
    "configure_tracking": ("relay._tracking", "configure_tracking"),
    "cron_run": ("relay._tracking", "cron_run"),
    "strict_tracking": ("relay._tracking", "strict_tracking"),
    "track": ("relay._tracking", "track"),
    "track_many": ("relay._tracking", "track_many"),
    "TrackItem": ("relay._tracking", "TrackItem"),
    "atrack": ("relay._tracking", "atrack"),
    "atrack_many": ("relay._tracking", "atrack_many"),
    "is_strict": ("relay._tracking", "is_strict"),
    "fire_and_forget": ("relay._tracking.guard", "fire_and_forget"),
    "Route": ("relay._tracking.routing", "Route"),
    "set_router": ("relay._tracking.routing", "set_router"),
    "update_profile": ("relay._tracking.profiles", "update_profile"),
    "update_group": ("relay._tracking.profiles", "update_group"),
    "aupdate_profile": ("relay._tracking.aio", "aupdate_profile"),
    "aupdate_group": ("relay._tracking.aio", "aupdate_group"),
    "ProfileUpdateError": ("relay._errors", "ProfileUpdateError"),
    "create_engine": ("relay._database", "create_engine"),
    "configure_sqlite": ("relay._database", "configure_sqlite"),
    "redact_url": ("relay._database", "redact_url"),
    "metadata": ("relay._tables", "metadata"),
    "upgrade_schema": ("relay._migrations", "upgrade"),
    "stamp_schema": ("relay._migrations", "stamp"),
}

# Spelled out (not derived from _EXPORTS) so type checkers see the re-exports.
__all__ = [
    "ALIASED_MODEL_CONFIG",
    "EVENT_SCHEMA_REGISTRY",
    "STRICT_MODEL_CONFIG",
    "ConfigurationError",
    "DuplicateInsertIdError",
    "EventContractError",
    "EventValidationError",
    "Location",
    "MixpanelSuperEventPropertiesSchema",
    "OutboxTablesMissingError",
    "ProfileUpdateError",
    "RelayError",
    "RelaySettings",
    "Route",
    "StoreError",
    "SystemRole",
    "TrackItem",
    "atrack",
    "atrack_many",
    "aupdate_group",
    "aupdate_profile",
    "configure_sqlite",
    "configure_tracking",
    "create_engine",
    "cron_run",
    "datetime_to_timestamp_ms",
    "fire_and_forget",
    "is_event_registered",
    "is_strict",
    "metadata",
    "redact_url",
    "register_event",
    "resolve_distinct_id",
    "set_router",
    "stamp_schema",
    "strict_tracking",
    "track",
    "track_many",
    "update_group",
    "update_profile",
    "upgrade_schema",
]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'relay' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:
    from relay._config import RelaySettings
    from relay._database import configure_sqlite, create_engine, redact_url
    from relay._errors import (
        ConfigurationError,
        DuplicateInsertIdError,
        EventContractError,
        EventValidationError,
        OutboxTablesMissingError,
        ProfileUpdateError,
        RelayError,
        StoreError,
    )
    from relay._event.identity import resolve_distinct_id
    from relay._event.location import Location
    from relay._event.properties import (
        ALIASED_MODEL_CONFIG,
        STRICT_MODEL_CONFIG,
        MixpanelSuperEventPropertiesSchema,
        SystemRole,
        datetime_to_timestamp_ms,
    )
    from relay._event.registry import EVENT_SCHEMA_REGISTRY, is_event_registered, register_event
    from relay._migrations import stamp as stamp_schema
    from relay._migrations import upgrade as upgrade_schema
    from relay._tables import metadata
    from relay._tracking import (
        TrackItem,
        atrack,
        atrack_many,
        configure_tracking,
        cron_run,
        is_strict,
        strict_tracking,
        track,
        track_many,
    )
    from relay._tracking.aio import aupdate_group, aupdate_profile
    from relay._tracking.guard import fire_and_forget
    from relay._tracking.profiles import update_group, update_profile
    from relay._tracking.routing import Route, set_router
