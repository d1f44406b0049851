"""No value the caller passed reaches an error or a log line, and no value is changed on the way
to the outbox: NaN, infinities, lone surrogates, bytes and deep nesting are refused with
``EventContractError`` in every field type (issue 21, item 8)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field
from structlog.testing import capture_logs

from relay._errors import EventContractError
from relay._event.properties import STRICT_MODEL_CONFIG, MixpanelSuperEventPropertiesSchema
from relay._event.registry import register_event
from relay._tracking.prepare import prepare_event
from relay._tracking.sync import report_failure

EMAIL = "jane.doe@example.com"
UNION_EVENT = "svc.tests.union_refused"
ANY_EVENT = "svc.tests.any_refused"


class _Card(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["card"]
    last4: str


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["wire"]
    bank: str


class UnionSchema(MixpanelSuperEventPropertiesSchema):
    """A host schema with a discriminated union."""

    model_config = STRICT_MODEL_CONFIG
    method: Annotated[_Card | _Wire, Field(discriminator="kind")]


class AnySchema(MixpanelSuperEventPropertiesSchema):
    """A host schema with free-form fields of every kind."""

    model_config = STRICT_MODEL_CONFIG
    payload: Any = None
    tags: dict[str, Any] = Field(default_factory=dict)
    items: list[Any] = Field(default_factory=list)
    ratio: float = 0.0


register_event(UNION_EVENT, UnionSchema)
register_event(ANY_EVENT, AnySchema)

BASE = {
    "employee_id": "e-1",
    "organization_id": "o-1",
    "organization_name": "Acme",
    "role": None,
    "impersonation": False,
}


def _prepare(event: str, **properties: Any) -> Any:
    return prepare_event(event=event, distinct_id="u-1", properties={**BASE, **properties})


def test_a_discriminated_union_never_quotes_the_input_in_the_error_or_the_log() -> None:
    """An email given as a union's tag appears neither in the exception nor in the log line."""
    with pytest.raises(EventContractError) as caught:
        _prepare(UNION_EVENT, method={"kind": EMAIL, "last4": "1234"})
    assert EMAIL not in str(caught.value)
    assert "jane" not in str(caught.value)
    assert caught.value.field is not None
    assert caught.value.field.startswith("method")
    assert "union_tag_invalid" in str(caught.value)
    with capture_logs() as logs:
        report_failure(UNION_EVENT, caught.value)
    assert logs, "the failure is logged"
    assert EMAIL not in repr(logs)


def test_a_host_validator_message_quoting_the_value_is_not_repeated() -> None:
    """A wrong type in a union field is named by field and error type, not pydantic's text."""
    with pytest.raises(EventContractError) as caught:
        _prepare(UNION_EVENT, method={"kind": "card", "last4": EMAIL.encode()})
    assert EMAIL not in str(caught.value)


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize(
    "where",
    [
        "payload",
        "payload-list",
        "payload-object",
        "tags",
        "items",
        "ratio",
    ],
)
def test_non_finite_numbers_are_refused_in_every_field_type(number: float, where: str) -> None:
    """NaN and infinities are refused, never stored as null, in Any, dict, list and float fields."""
    properties: dict[str, Any] = {
        "payload": {"payload": number},
        "payload-list": {"payload": [1, number]},
        "payload-object": {"payload": {"a": {"b": number}}},
        "tags": {"tags": {"score": number}},
        "items": {"items": [number]},
        "ratio": {"ratio": number},
    }[where]
    with pytest.raises(EventContractError, match="NaN or infinite") as caught:
        _prepare(ANY_EVENT, **properties)
    assert caught.value.field is not None
    assert caught.value.field.startswith(where.split("-", maxsplit=1)[0])


@pytest.mark.parametrize(
    "properties",
    [
        {"tags": {"\ud800": 1}},
        {"payload": {"ok": {"\udc80x": 1}}},
        {"payload": "\ud800"},
        {"items": ["fine", "\udfff"]},
        {"tags": {"k": "\ud83d"}},
    ],
    ids=["dict-key", "any-nested-key", "any-value", "list-value", "dict-value"],
)
def test_lone_surrogates_are_refused_in_keys_and_values(properties: dict[str, Any]) -> None:
    """A lone surrogate is refused (never turned into U+FFFD), in a key or a value."""
    with pytest.raises(EventContractError) as caught:
        _prepare(ANY_EVENT, **properties)
    assert "\ufffd" not in str(caught.value)
    assert "surrogate" in str(caught.value) or "UTF-8" in str(caught.value)


@pytest.mark.parametrize("strict_bytes", [b"\xff\xfe", b"\x80"])
def test_bytes_that_are_not_utf8_are_refused_not_raised_as_unicode_errors(
    strict_bytes: bytes,
) -> None:
    """Invalid UTF-8 bytes in an Any field raise EventContractError, not UnicodeDecodeError."""
    with pytest.raises(EventContractError) as caught:
        _prepare(ANY_EVENT, payload=strict_bytes)
    assert caught.value.field == "payload"
    assert not isinstance(caught.value, UnicodeError)


@pytest.mark.parametrize("depth", [4, 64, 300, 2000])
def test_deep_nesting_raises_the_contract_error_never_a_bare_value_error(depth: int) -> None:
    """Lists nested ``depth`` deep are refused with EventContractError naming the field."""
    nested: list[Any] = []
    inner = nested
    for _ in range(depth):
        inner.append([])
        inner = inner[0]
    with pytest.raises(EventContractError, match="nest deeper") as caught:
        _prepare(ANY_EVENT, payload=nested)
    assert caught.value.field is not None
    assert caught.value.field.startswith("payload")


def test_ordinary_values_in_any_fields_still_pass() -> None:
    """Finite numbers, valid text and UTF-8 bytes in Any fields are accepted as before."""
    prepared = _prepare(ANY_EVENT, payload={"a": [1.5, "x"]}, tags={"k": "v"}, ratio=0.25)
    assert prepared.properties["payload"] == {"a": [1.5, "x"]}
    assert prepared.properties["tags"] == {"k": "v"}
