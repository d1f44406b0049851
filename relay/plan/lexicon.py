"""``relay events push``, the pure part: the registry as Lexicon schemas, and the diff.

Each registered event becomes one ``SchemaEntry`` of the Lexicon Schemas API
(``entityType: "event"``): the schema's docstring as the description and, per property by wire
name, its Lexicon type (``string``, ``integer``, ... from the JSON Schema ``relay events docs``
prints) and its description. ``diff`` compares those entries with what Lexicon holds: added
(only in the registry), changed (both, different schema, with what differs), only in Lexicon.
No I/O here: :mod:`relay._mixpanel.lexicon` talks to Mixpanel.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from relay._escape import safe_text
from relay.plan.docs import Registry, event_json_schema

ENTITY_TYPE = "event"
#: ``metadata["com.mixpanel"]["$source"]`` of every schema relay uploads.
SOURCE = "relay"
LEXICON_TYPES = ("array", "boolean", "integer", "null", "number", "object", "string")


@dataclass(frozen=True, slots=True)
class Change:
    """One event whose Lexicon schema differs from the registry's, and what differs."""

    name: str
    differences: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """The JSON form ``--json`` prints."""
        return {"name": self.name, "differences": list(self.differences)}


@dataclass(frozen=True, slots=True)
class LexiconDiff:
    """What a push would do: entries to add and to replace, and events only Lexicon has."""

    added: tuple[str, ...] = ()
    changed: tuple[Change, ...] = ()
    only_in_lexicon: tuple[str, ...] = ()
    entries: Mapping[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def in_sync(self) -> bool:
        """Whether Lexicon already holds exactly the registry's event schemas."""
        return not (self.added or self.changed or self.only_in_lexicon)

    def uploads(self) -> list[dict[str, Any]]:
        """The entries a push without ``truncate`` sends: added and changed, sorted by name."""
        names = sorted({*self.added, *(change.name for change in self.changed)})
        return [self.entries[name] for name in names]

    def as_dict(self) -> dict[str, Any]:
        """The JSON form ``--json`` prints (without the entries themselves)."""
        return {
            "added": list(self.added),
            "changed": [change.as_dict() for change in self.changed],
            "only_in_lexicon": list(self.only_in_lexicon),
            "in_sync": self.in_sync,
        }


def registry_entries(registry: Registry) -> dict[str, dict[str, Any]]:
    """event name -> its ``SchemaEntry`` for the Lexicon Schemas API, for every event."""
    return {event: schema_entry(event, registry[event]) for event in sorted(registry)}


def schema_entry(event: str, schema: Any) -> dict[str, Any]:
    """The ``SchemaEntry`` of one registered event."""
    body = event_json_schema(event, schema)
    defs = body.get("$defs", {})
    properties: dict[str, dict[str, Any]] = {}
    for name, prop in body.get("properties", {}).items():
        definition: dict[str, Any] = {"type": lexicon_type(prop, defs)}
        description = prop.get("description") or _resolve(prop, defs).get("description")
        if description:
            definition["description"] = str(description)
        properties[name] = definition
    schema_json: dict[str, Any] = {
        "description": (inspect.getdoc(schema) or "").replace("``", "`"),
        "properties": properties,
        "metadata": {"com.mixpanel": {"$source": SOURCE}},
    }
    return {"entityType": ENTITY_TYPE, "name": event, "schemaJson": schema_json}


def lexicon_type(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> str:
    """The one Lexicon type of a JSON Schema property: its non-null type, ``string`` if unknown.

    Lexicon has a single type per property, so an optional value (``anyOf`` with ``null``)
    takes its other type, and an enum or other reference takes its target's.
    """
    prop = _resolve(prop, defs)
    kind = prop.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str) and kind in LEXICON_TYPES:
        return kind
    options = [_resolve(option, defs) for option in prop.get("anyOf", prop.get("oneOf", []))]
    kinds = [lexicon_type(option, defs) for option in options]
    return next((k for k in kinds if k != "null"), "null" if kinds else "string")


def diff(entries: Mapping[str, dict[str, Any]], held: Iterable[Mapping[str, Any]]) -> LexiconDiff:
    """Compare the registry's entries with the event ``SchemaEntry`` objects Lexicon holds."""
    lexicon = {
        str(entry.get("name")): dict(entry.get("schemaJson") or {})
        for entry in held
        if entry.get("entityType") == ENTITY_TYPE
    }
    added = tuple(name for name in sorted(entries) if name not in lexicon)
    changed = tuple(
        Change(name, differences)
        for name in sorted(entries)
        if name in lexicon
        and (differences := schema_differences(entries[name]["schemaJson"], lexicon[name]))
    )
    only = tuple(name for name in sorted(lexicon) if name not in entries)
    return LexiconDiff(added=added, changed=changed, only_in_lexicon=only, entries=entries)


def schema_differences(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> tuple[str, ...]:
    """What differs between the registry's schema and Lexicon's, one phrase each, sorted."""
    found: list[str] = []
    if (ours.get("description") or "") != (theirs.get("description") or ""):
        found.append("description")
    our_props: Mapping[str, Any] = ours.get("properties") or {}
    their_props: Mapping[str, Any] = theirs.get("properties") or {}
    found += [f"property {name}: added" for name in sorted(our_props.keys() - their_props)]
    found += [f"property {name}: removed" for name in sorted(their_props.keys() - our_props)]
    for name in sorted(our_props.keys() & their_props.keys()):
        ours_prop, theirs_prop = our_props[name], their_props[name]
        for key in sorted(set(ours_prop) | set(theirs_prop)):
            if ours_prop.get(key) != theirs_prop.get(key):
                found.append(f"property {name}: {key}")
    if (ours.get("metadata") or {}) != (theirs.get("metadata") or {}):
        found.append("metadata")
    extra = sorted(set(theirs) - {"description", "properties", "metadata"})
    found += [f"{key}: only in Lexicon" for key in extra]
    return tuple(found)


def render(result: LexiconDiff, *, project_id: str) -> list[str]:
    """The diff for people: a summary line, then one line per event (+ add, ~ change, - only).

    Names and differences may come from Lexicon (another tool wrote them): escaped, so a
    newline cannot forge a line and an escape sequence cannot reach the terminal.
    """
    lines = [
        f"Lexicon of project {project_id}: {len(result.added)} to add, "
        f"{len(result.changed)} to change, {len(result.only_in_lexicon)} only in Lexicon"
    ]
    lines += [f"+ {safe_text(name)}" for name in result.added]
    lines += [
        f"~ {safe_text(c.name)}: {safe_text('; '.join(c.differences))}" for c in result.changed
    ]
    lines += [f"- {safe_text(name)} (only in Lexicon)" for name in result.only_in_lexicon]
    return lines


def _resolve(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return dict(defs.get(ref.removeprefix("#/$defs/"), {}))
    return prop
