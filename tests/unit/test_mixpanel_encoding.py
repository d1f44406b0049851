"""Encoding outbox rows as /import events and planning batches, without any I/O."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay._errors import EventValidationError
from relay._mixpanel.encoding import encode_event, plan_batches
from relay._tables import OutboxEvent

TIME_MS = 1_700_000_000_123


def _event(properties_json: str, **overrides: Any) -> OutboxEvent:
    fields: dict[str, Any] = {
        "id": 1,
        "insert_id": "0b6f1e2a-4a8c-4f63-9d55-2c0e3c1f7a10",
        "event": "svc.surveys.survey_delivered",
        "distinct_id": "5d1c7a3e-0000-4000-8000-000000000001",
        "time_ms": TIME_MS,
        "properties_json": properties_json,
        "attempts": 0,
    }
    fields.update(overrides)
    return OutboxEvent(**fields)


def _expected(event: OutboxEvent, stored: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "event": event.event,
            "properties": {
                "time": event.time_ms,
                "distinct_id": event.distinct_id,
                "$insert_id": event.insert_id,
                "ip": "0",
                **stored,
            },
        }
    )


@pytest.mark.parametrize("text", ["{}", "{ }", " {\n} ", "\t{}\r\n"])
def test_empty_stored_properties_encode_only_the_spliced_keys(text: str) -> None:
    """An empty stored object, however spaced, adds nothing after the four spliced keys."""
    event = _event(text)
    assert encode_event(event) == _expected(event, {})


@pytest.mark.parametrize(
    "stored",
    [
        {"organization_id": "org-1", "is_cron_job": False, "count": 3, "ratio": 0.5},
        {"nested": {"a": [1, 2, {"b": None}], "c": {"d": "e"}}, "list": []},
        {"organization_name": "Zürich Ærø 東京 🚀", "quote": 'say "hi" \\ bye'},
    ],
    ids=["flat", "nested", "unicode"],
)
def test_spliced_event_equals_orjson_of_the_equivalent_dict(stored: dict[str, Any]) -> None:
    """Splicing orjson-stored properties gives exactly orjson's bytes for the whole event."""
    event = _event(orjson.dumps(stored).decode())
    assert encode_event(event) == _expected(event, stored)


def test_jsonb_style_spacing_is_kept_and_parses_to_the_same_event() -> None:
    """PostgreSQL's jsonb text (spaces after colons and commas) is copied as is and stays valid."""
    stored_text = '{"a": 1, "b": {"c": [1, 2]}, "name": "x y"}'
    event = _event(stored_text)
    encoded = encode_event(event)
    assert stored_text[1:-1].encode() in encoded
    assert orjson.loads(encoded) == orjson.loads(_expected(event, orjson.loads(stored_text)))


def test_event_name_and_ids_are_json_escaped() -> None:
    """Quotes, backslashes, newlines and non-ASCII in event and distinct_id are JSON-escaped."""
    event = _event('{"k":1}', event='svc.a."b"\\c', distinct_id='ü"\n')
    assert encode_event(event) == _expected(event, {"k": 1})


def test_time_is_the_stored_value_never_restamped() -> None:
    """The encoded time is the row's time_ms, to the millisecond."""
    event = _event("{}", time_ms=1_000_000_000_001)
    assert orjson.loads(encode_event(event))["properties"]["time"] == 1_000_000_000_001


def test_stored_copies_of_spliced_keys_never_override_the_columns() -> None:
    """A stored time, distinct_id or $insert_id is dropped: the dedup key comes from the columns."""
    stored = {"time": 1, "distinct_id": "other", "$insert_id": "other", "keep": "me"}
    event = _event(orjson.dumps(stored).decode())
    assert encode_event(event) == _expected(event, {"keep": "me"})


def test_spliced_key_names_as_values_do_not_change_the_event() -> None:
    """A property value that merely reads "time" leaves every stored property in place."""
    stored = {"unit": "time", "label": "distinct_id"}
    event = _event(orjson.dumps(stored).decode())
    assert encode_event(event) == _expected(event, stored)


def test_every_event_asks_mixpanel_to_skip_geoip() -> None:
    """Every encoded event carries "ip": "0", so Mixpanel never geolocates the relay's address."""
    for text in ("{}", '{"organization_id": "org-1"}'):
        properties = orjson.loads(encode_event(_event(text)))["properties"]
        assert properties["ip"] == "0"


@pytest.mark.parametrize("stored_ip", ["203.0.113.7", "1", 1, None])
def test_a_stored_ip_never_reaches_mixpanel(stored_ip: object) -> None:
    """A stored ``ip`` (which would turn GeoIP back on) is dropped; ``"ip": "0"`` is sent once."""
    stored = {"ip": stored_ip, "organization_id": "org-1"}
    encoded = encode_event(_event(orjson.dumps(stored).decode()))
    assert encoded.count(b'"ip":') == 1
    assert orjson.loads(encoded)["properties"] == {
        "time": TIME_MS,
        "distinct_id": "5d1c7a3e-0000-4000-8000-000000000001",
        "$insert_id": "0b6f1e2a-4a8c-4f63-9d55-2c0e3c1f7a10",
        "ip": "0",
        "organization_id": "org-1",
    }


def test_explicit_location_properties_pass_through_beside_ip_zero() -> None:
    """Stored $city, $region and mp_country_code are sent as they are, next to "ip": "0"."""
    stored = {"$city": "Zürich", "$region": "Zurich", "mp_country_code": "CH", "note": "ip"}
    event = _event(orjson.dumps(stored).decode())
    assert encode_event(event) == _expected(event, stored)


@pytest.mark.parametrize("text", ["", "[]", "null", '"x"', "{", "[{}]"])
def test_stored_properties_that_are_not_an_object_are_refused(text: str) -> None:
    """Stored text that is not a JSON object raises EventValidationError naming the field."""
    with pytest.raises(EventValidationError, match="properties"):
        encode_event(_event(text))


def test_plan_batches_caps_the_event_count() -> None:
    """Five events with a cap of two make batches of 2, 2 and 1."""
    assert plan_batches([b"{}"] * 5, max_events=2, max_bytes=10_000) == [
        range(0, 2),
        range(2, 4),
        range(4, 5),
    ]


def test_plan_batches_allows_a_body_of_exactly_max_bytes() -> None:
    """Two 4-byte events make a 11-byte body ("[" a "," b "]") that fits a cap of 11, not 10."""
    items = [b'"ab"', b'"cd"']
    assert plan_batches(items, max_events=10, max_bytes=11) == [range(0, 2)]
    assert plan_batches(items, max_events=10, max_bytes=10) == [range(0, 1), range(1, 2)]


def test_plan_batches_gives_an_oversized_event_a_batch_of_its_own() -> None:
    """An event too large for the cap is isolated so the caller can refuse it alone."""
    items = [b"1", b"x" * 50, b"2"]
    assert plan_batches(items, max_events=10, max_bytes=20) == [
        range(0, 1),
        range(1, 2),
        range(2, 3),
    ]


def test_plan_batches_of_nothing_is_no_batch() -> None:
    """No events, no batches."""
    assert plan_batches([], max_events=2000, max_bytes=1024) == []


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=60), max_size=80),
    max_events=st.integers(min_value=1, max_value=10),
    max_bytes=st.integers(min_value=2, max_value=200),
)
def test_plan_batches_covers_everything_in_order_within_both_caps(
    sizes: list[int], max_events: int, max_bytes: int
) -> None:
    """Batches are consecutive, cover every event once, and respect count and byte caps greedily."""
    encoded = [b"x" * size for size in sizes]
    batches = plan_batches(encoded, max_events=max_events, max_bytes=max_bytes)
    assert [i for batch in batches for i in batch] == list(range(len(encoded)))
    for number, batch in enumerate(batches):
        body = len(b"[" + b",".join(encoded[batch.start : batch.stop]) + b"]")
        assert 1 <= len(batch) <= max_events
        assert body <= max_bytes or len(batch) == 1
        if number + 1 < len(batches) and len(batch) < max_events:
            assert body + 1 + len(encoded[batch.stop]) > max_bytes
