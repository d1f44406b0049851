"""The registry as Lexicon schemas, and the diff against what Lexicon holds, without HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from relay.plan.docs import catalog_registry
from relay.plan.lexicon import diff, lexicon_type, registry_entries, schema_differences

DEFS = {"Role": {"enum": ["a", "b"], "type": "string"}}


@pytest.mark.parametrize(
    ("prop", "expected"),
    [
        ({"type": "string"}, "string"),
        ({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]}, "integer"),
        ({"$ref": "#/$defs/Role"}, "string"),
        ({"anyOf": [{"$ref": "#/$defs/Role"}, {"type": "null"}]}, "string"),
        ({"type": ["null", "number"]}, "number"),
        ({"type": "array", "items": {"type": "string"}}, "array"),
        ({"type": "null"}, "null"),
        ({}, "string"),
    ],
)
def test_each_property_gets_one_lexicon_type(prop: dict[str, Any], expected: str) -> None:
    """An optional value takes its non-null type, a reference its target's, unknown: string."""
    assert lexicon_type(prop, DEFS) == expected


def test_shipped_catalog_entries_are_event_schemas_with_described_properties() -> None:
    """Every shipped event is an event entry; every property has a type and a description."""
    entries = registry_entries(catalog_registry(["hr_catalog"]))
    assert len(entries) == 6
    for name, entry in entries.items():
        assert entry["entityType"] == "event"
        assert entry["name"] == name
        assert entry["schemaJson"]["description"]
        for prop in entry["schemaJson"]["properties"].values():
            assert prop["type"] in {"string", "integer", "number", "boolean", "array", "object"}
            assert prop["description"]


def test_diff_sorts_events_into_added_changed_and_only_in_lexicon() -> None:
    """Names only ours are added, in both but different are changed, only theirs are kept."""
    ours = {
        "a": {"entityType": "event", "name": "a", "schemaJson": {"description": "A"}},
        "b": {"entityType": "event", "name": "b", "schemaJson": {"description": "B"}},
        "c": {"entityType": "event", "name": "c", "schemaJson": {"description": "C"}},
    }
    held = [
        {"entityType": "event", "name": "b", "schemaJson": {"description": "B"}},
        {"entityType": "event", "name": "c", "schemaJson": {"description": "old"}},
        {"entityType": "event", "name": "z", "schemaJson": {}},
        {"entityType": "profile", "name": "a", "schemaJson": {}},  # not an event: ignored
    ]
    result = diff(ours, held)
    assert result.added == ("a",)
    assert [(c.name, c.differences) for c in result.changed] == [("c", ("description",))]
    assert result.only_in_lexicon == ("z",)
    assert [e["name"] for e in result.uploads()] == ["a", "c"]
    assert not result.in_sync
    assert diff(ours, [ours[k] for k in ours]).in_sync


def test_differences_name_each_property_and_key() -> None:
    """Added, removed and changed properties, metadata and Lexicon-only keys are each named."""
    ours = {"properties": {"x": {"type": "string"}, "y": {"type": "integer"}}, "metadata": {}}
    theirs = {
        "properties": {"y": {"type": "number"}, "z": {"type": "string"}},
        "metadata": {"com.mixpanel": {"hidden": True}},
        "owner": "me",
    }
    assert schema_differences(ours, theirs) == (
        "property x: added",
        "property z: removed",
        "property y: type",
        "metadata",
        "owner: only in Lexicon",
    )
