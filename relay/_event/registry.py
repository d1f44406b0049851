"""The event registry: event name -> the schema its properties are validated against.

Registration checks the name rule and the schema's definition once, so that ``track()`` only
has to validate values.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import MappingProxyType

from relay._errors import EventRegistrationError
from relay._event.naming import check_event_name
from relay._event.properties import MixpanelSuperEventPropertiesSchema, check_schema_definition

_EVENT_SCHEMA_REGISTRY: dict[str, type[MixpanelSuperEventPropertiesSchema]] = {}
_lock = threading.Lock()

#: Read-only live view of the registry: event name -> schema class.
EVENT_SCHEMA_REGISTRY: Mapping[str, type[MixpanelSuperEventPropertiesSchema]] = MappingProxyType(
    _EVENT_SCHEMA_REGISTRY
)


def register_event(
    name: str, schema: type[MixpanelSuperEventPropertiesSchema]
) -> type[MixpanelSuperEventPropertiesSchema]:
    """Register ``schema`` for event ``name`` and return the schema.

    Registering the same schema twice is a no-op; a different schema under a name that is
    already registered raises ``EventRegistrationError``. Raises ``EventNameError`` or
    ``SchemaDefinitionError`` when the name or the schema breaks the contract.
    """
    check_event_name(name)
    check_schema_definition(name, schema)
    with _lock:
        existing = _EVENT_SCHEMA_REGISTRY.get(name)
        if existing is not None and existing is not schema:
            raise EventRegistrationError(
                f"already registered with {existing.__qualname__}; refusing {schema.__qualname__}",
                event=name,
            )
        _EVENT_SCHEMA_REGISTRY[name] = schema
    return schema


def is_event_registered(name: object) -> bool:
    """Whether an event named ``name`` is registered (``False`` for a non-string)."""
    return isinstance(name, str) and name in _EVENT_SCHEMA_REGISTRY


def registered_event_names() -> list[str]:
    """The names of every registered event, sorted."""
    with _lock:
        return sorted(_EVENT_SCHEMA_REGISTRY)


def loggable_event_name(name: object) -> str:
    """``name`` if it is a registered event, else a stand-in that does not reveal it.

    An unregistered name is whatever the caller passed, which may be personal data (an
    email pasted into the wrong argument), so logs and errors show only its length. Not a
    hash either: a hash of an email identifies it to anyone holding a list of candidates.
    """
    if is_event_registered(name):
        return str(name)
    if not isinstance(name, str):
        return f"<unregistered: not a string but {type(name).__name__}>"
    return f"<unregistered: {len(name)} characters>"


def get_event_schema(name: object) -> type[MixpanelSuperEventPropertiesSchema]:
    """The schema registered for ``name``; ``EventRegistrationError`` if there is none.

    The error names the event by :func:`loggable_event_name` only, never by ``name`` itself.
    """
    if not is_event_registered(name):
        raise EventRegistrationError(
            f"event {loggable_event_name(name)} is not registered (is its catalog imported?)"
        )
    return _EVENT_SCHEMA_REGISTRY[str(name)]
