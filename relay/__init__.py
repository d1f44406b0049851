"""relay: a transactional outbox that delivers analytics events to Mixpanel.

The public API is what this module exports, plus ``relay.catalog`` (the shipped event catalog)
and ``relay.testing`` (the pytest plugin and the Mixpanel stand-in). Everything else may change.
"""

from relay.config import RelaySettings
from relay.errors import (
    ConfigurationError,
    EventContractError,
    EventValidationError,
    RelayError,
    StoreError,
)
from relay.identity import resolve_distinct_id
from relay.location import Location
from relay.registry import EVENT_SCHEMA_REGISTRY, is_event_registered, register_event
from relay.schema import (
    ALIASED_MODEL_CONFIG,
    STRICT_MODEL_CONFIG,
    MixpanelSuperEventPropertiesSchema,
    SystemRole,
    datetime_to_timestamp_ms,
)
from relay.tracking import configure_tracking, cron_run, strict_tracking, track

__all__ = [
    "ALIASED_MODEL_CONFIG",
    "EVENT_SCHEMA_REGISTRY",
    "STRICT_MODEL_CONFIG",
    "ConfigurationError",
    "EventContractError",
    "EventValidationError",
    "Location",
    "MixpanelSuperEventPropertiesSchema",
    "RelayError",
    "RelaySettings",
    "StoreError",
    "SystemRole",
    "configure_tracking",
    "cron_run",
    "datetime_to_timestamp_ms",
    "is_event_registered",
    "register_event",
    "resolve_distinct_id",
    "strict_tracking",
    "track",
]
