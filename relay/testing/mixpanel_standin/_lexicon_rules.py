"""The Lexicon Schemas API's request bodies, checked as pure functions (no HTTP, no state).

This project's own reading of ``mixpanel-lexicon-schemas.openapi.yaml`` (components
``SchemaEntry`` and ``Schema`` and the body of ``POST /projects/{projectId}/schemas``), written
without a JSON Schema library so the stand-in needs nothing beyond relay's dependencies. Each
function returns the first problem as ``"<path>: <what is wrong>"``, or ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ENTITY_TYPES = ("event", "profile")
PROPERTY_TYPES = ("array", "boolean", "integer", "null", "number", "object", "string")

_ENTRY_KEYS = frozenset({"entityType", "name", "schemaJson"})
_BATCH_KEYS = frozenset({"entries", "truncate"})
_PROPERTY_KEYS = frozenset({"type", "description", "metadata"})
#: ``Schema.metadata["com.mixpanel"]``: every key and its JSON type.
_ENTITY_MIXPANEL_KEYS: Mapping[str, str] = {
    "$source": "string",
    "displayName": "string",
    "tags": "string-array",
    "hidden": "boolean",
    "dropped": "boolean",
    "contacts": "string-array",
    "teamContacts": "string-array",
}
#: A property's ``metadata["com.mixpanel"]``.
_PROPERTY_MIXPANEL_KEYS: Mapping[str, str] = {
    "displayName": "string",
    "hidden": "boolean",
    "dropped": "boolean",
}


def batch_problem(body: Any) -> str | None:  # noqa: PLR0911 -- one return per problem
    """What is wrong with a ``POST /schemas`` body: ``{"entries": [...], "truncate": bool}``."""
    if not isinstance(body, dict):
        return "body: must be a JSON object"
    if extra := sorted(body.keys() - _BATCH_KEYS):
        return f"body.{extra[0]}: unexpected field"
    if "entries" not in body:
        return "body.entries: is required"
    entries = body["entries"]
    if not isinstance(entries, list):
        return "body.entries: must be an array"
    if "truncate" in body and not isinstance(body["truncate"], bool):
        return "body.truncate: must be a boolean"
    for index, entry in enumerate(entries):
        problem = entry_problem(entry, f"body.entries[{index}]")
        if problem is not None:
            return problem
    return None


def entry_problem(entry: Any, path: str) -> str | None:
    """What is wrong with a ``SchemaEntry``: ``entityType``, ``name``, ``schemaJson``, no more."""
    if not isinstance(entry, dict):
        return f"{path}: must be a JSON object"
    if extra := sorted(entry.keys() - _ENTRY_KEYS):
        return f"{path}.{extra[0]}: unexpected field"
    for key in ("name", "entityType", "schemaJson"):
        if key not in entry:
            return f"{path}.{key}: is required"
    if not isinstance(entry["name"], str):
        return f"{path}.name: must be a string"
    if entry["entityType"] not in ENTITY_TYPES:
        return f"{path}.entityType: must be one of {', '.join(ENTITY_TYPES)}"
    return schema_problem(entry["schemaJson"], f"{path}.schemaJson")


def schema_problem(schema: Any, path: str) -> str | None:
    """What is wrong with a ``Schema``: description, properties and Mixpanel's metadata.

    ``Schema`` itself allows other keys (it has no ``additionalProperties: false``); a property
    definition and both ``com.mixpanel`` objects do not.
    """
    if not isinstance(schema, dict):
        return f"{path}: must be a JSON object"
    if "description" in schema and not isinstance(schema["description"], str):
        return f"{path}.description: must be a string"
    if "properties" in schema:
        properties = schema["properties"]
        if not isinstance(properties, dict):
            return f"{path}.properties: must be a JSON object"
        for name, definition in properties.items():
            problem = _property_problem(definition, f"{path}.properties.{name}")
            if problem is not None:
                return problem
    if "metadata" in schema:
        return _metadata_problem(schema["metadata"], f"{path}.metadata", _ENTITY_MIXPANEL_KEYS)
    return None


def _property_problem(definition: Any, path: str) -> str | None:  # noqa: PLR0911 -- likewise
    if not isinstance(definition, dict):
        return f"{path}: must be a JSON object"
    if extra := sorted(definition.keys() - _PROPERTY_KEYS):
        return f"{path}.{extra[0]}: unexpected field"
    if "type" not in definition:
        return f"{path}.type: is required"
    if definition["type"] not in PROPERTY_TYPES:
        return f"{path}.type: must be one of {', '.join(PROPERTY_TYPES)}"
    if "description" in definition and not isinstance(definition["description"], str):
        return f"{path}.description: must be a string"
    if "metadata" in definition:
        return _metadata_problem(
            definition["metadata"], f"{path}.metadata", _PROPERTY_MIXPANEL_KEYS
        )
    return None


def _metadata_problem(metadata: Any, path: str, allowed: Mapping[str, str]) -> str | None:
    if not isinstance(metadata, dict):
        return f"{path}: must be a JSON object"
    if "com.mixpanel" not in metadata:
        return None
    mixpanel = metadata["com.mixpanel"]
    path = f"{path}.com.mixpanel"
    if not isinstance(mixpanel, dict):
        return f"{path}: must be a JSON object"
    if extra := sorted(mixpanel.keys() - allowed.keys()):
        return f"{path}.{extra[0]}: unexpected field"
    for key, value in mixpanel.items():
        if not _has_type(value, allowed[key]):
            return f"{path}.{key}: must be a {allowed[key].replace('-', ' ')}"
    return None


def _has_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
