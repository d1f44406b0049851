"""The stand-in's reading of Lexicon request bodies agrees with the spec's JSON Schema.

``_lexicon_rules`` is hand-written (the stand-in needs no JSON Schema library); each body here
is judged by it and by jsonschema over the OpenAPI document, and the two must agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from relay.testing.mixpanel_standin import _lexicon_rules as rules

SPEC = Path(__file__).resolve().parents[1] / "contracts" / "mixpanel-lexicon-schemas.openapi.yaml"
_DOC = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
_BODY = _DOC["paths"]["/projects/{projectId}/schemas"]["post"]["requestBody"]["content"]
BATCH = jsonschema.Draft7Validator(
    {**_BODY["application/json"]["schema"], "components": _DOC["components"]}
)


def _entry(**schema_json: Any) -> dict[str, Any]:
    return {"entityType": "event", "name": "svc.a.b_done", "schemaJson": schema_json}


VALID: list[Any] = [
    {"entries": []},
    {"entries": [], "truncate": True},
    {"entries": [_entry()]},
    {"entries": [_entry(description="d", properties={"k": {"type": "string"}})]},
    {"entries": [_entry(properties={"k": {"type": "null", "description": "x"}})]},
    {"entries": [_entry(anything_else=1)]},  # Schema itself allows other keys
    {
        "entries": [
            _entry(
                metadata={"com.mixpanel": {"$source": "relay", "tags": ["a"], "hidden": False}},
                properties={
                    "k": {"type": "integer", "metadata": {"com.mixpanel": {"displayName": "K"}}}
                },
            )
        ]
    },
    {"entries": [{**_entry(), "entityType": "profile"}]},
]

INVALID: list[tuple[Any, str]] = [
    ([], "body"),
    ({}, "body.entries"),
    ({"entries": {}}, "body.entries"),
    ({"entries": [], "truncate": "yes"}, "body.truncate"),
    ({"entries": [], "extra": 1}, "body.extra"),
    ({"entries": [{"name": "x", "schemaJson": {}}]}, "body.entries[0].entityType"),
    ({"entries": [{**_entry(), "entityType": "group"}]}, "body.entries[0].entityType"),
    ({"entries": [{**_entry(), "name": 3}]}, "body.entries[0].name"),
    ({"entries": [{**_entry(), "id": 3}]}, "body.entries[0].id"),
    ({"entries": [_entry(description=3)]}, "body.entries[0].schemaJson.description"),
    ({"entries": [_entry(properties={"k": {}})]}, "body.entries[0].schemaJson.properties.k.type"),
    (
        {"entries": [_entry(properties={"k": {"type": "date"}})]},
        "body.entries[0].schemaJson.properties.k.type",
    ),
    (
        {"entries": [_entry(properties={"k": {"type": "string", "required": True}})]},
        "body.entries[0].schemaJson.properties.k.required",
    ),
    (
        {"entries": [_entry(metadata={"com.mixpanel": {"owner": "me"}})]},
        "body.entries[0].schemaJson.metadata.com.mixpanel.owner",
    ),
    (
        {"entries": [_entry(metadata={"com.mixpanel": {"hidden": "no"}})]},
        "body.entries[0].schemaJson.metadata.com.mixpanel.hidden",
    ),
    (
        {"entries": [_entry(metadata={"com.mixpanel": {"tags": [1]}})]},
        "body.entries[0].schemaJson.metadata.com.mixpanel.tags",
    ),
]


@pytest.mark.parametrize("body", VALID)
def test_bodies_the_spec_accepts_are_accepted(body: Any) -> None:
    """A body valid by the spec's JSON Schema has no problem by the stand-in's rules."""
    BATCH.validate(body)
    assert rules.batch_problem(body) is None


@pytest.mark.parametrize(("body", "path"), INVALID, ids=[p for _, p in INVALID])
def test_bodies_the_spec_refuses_are_refused_naming_the_field(body: Any, path: str) -> None:
    """A body the spec refuses is refused by the stand-in, which names the offending field."""
    assert not BATCH.is_valid(body)
    problem = rules.batch_problem(body)
    assert problem is not None
    assert problem.split(": ", 1)[0] == path
