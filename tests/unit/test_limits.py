"""Mixpanel's per-event limits and the PII-by-value guard, checked at track time."""

import pytest

from relay.errors import EventValidationError
from relay.limits import (
    MIN_EVENT_TIME_MS,
    check_distinct_id,
    check_insert_id,
    check_properties,
    check_time_ms,
)
from relay.pii import looks_like_email, looks_like_phone

EV = "svc.a.b"
NOW_MS = 1_795_694_400_000


def test_ordinary_properties_pass_and_come_back_as_json() -> None:
    """Within every limit, the properties are returned as their JSON text."""
    encoded = check_properties(EV, {"a": "x", "n": 1, "f": 1.5, "l": ["a"], "o": {"k": None}})
    assert encoded == b'{"a":"x","n":1,"f":1.5,"l":["a"],"o":{"k":null}}'


@pytest.mark.parametrize(
    ("props", "field", "message"),
    [
        ({"s": "x" * 256}, "s", "256 characters; Mixpanel keeps at most 255"),
        ({"k" * 256: 1}, "properties[key 0]", "string name is 256 characters"),
        ({"o": {"a": {"b": {"c": {"d": 1}}}}}, "o.a.b.c", "nest deeper than 3"),
        ({"l": list(range(255))}, "l", "list has 255 elements"),
        ({"f": float("nan")}, "f", "NaN or infinite"),
        ({"i": 2**64}, "i", "does not fit in 64 bits"),
        ({"s": "a\x00b"}, "s", "NUL character"),
        ({"s": "\ud800"}, "s", "not valid UTF-8"),
        ({"b": b"bytes"}, "b", "bytes is not a JSON value"),
        ({"x": "write to jane.doe@example.com"}, "x", "looks like an email"),
        ({"x": ["+44 20 7946 0958"]}, "x[0]", "looks like a phone number"),
        ({"x": {"y": "(555) 123-4567"}}, "x.y", "looks like a phone number"),
    ],
)
def test_properties_beyond_a_limit_are_refused_naming_the_field(
    props: dict[str, object], field: str, message: str
) -> None:
    """Each limit is refused with the property path and the reason, never the value."""
    with pytest.raises(EventValidationError) as info:
        check_properties(EV, props)
    assert info.value.field == field
    assert message in str(info.value)
    assert "jane.doe" not in str(info.value)


def test_too_many_properties_are_refused() -> None:
    """252 properties plus time, distinct_id and $insert_id reach Mixpanel's 255 limit."""
    check_properties(EV, {f"p{i}": i for i in range(251)})
    with pytest.raises(EventValidationError, match="255 properties"):
        check_properties(EV, {f"p{i}": i for i in range(252)})


def test_events_of_a_megabyte_are_refused() -> None:
    """An event's JSON must stay under 1 MB."""
    with pytest.raises(EventValidationError, match="bytes of JSON"):
        check_properties(
            EV,
            {f"p{i}": "x" * 250 for i in range(200)}
            | {f"l{i}": ["y" * 250] * 200 for i in range(20)},
        )


@pytest.mark.parametrize(
    "value", ["2026-11-26", "2026-11-26 10:00:00", "1234567890", "12.5", "v1.2.3"]
)
def test_dates_ids_and_numbers_are_not_phone_numbers(value: str) -> None:
    """Digit strings that are ids, numbers or dates are not mistaken for phones."""
    assert not looks_like_phone(value)


@pytest.mark.parametrize("value", ["+14155550123", "415-555-0123", "(415) 555 0123"])
def test_formatted_phone_numbers_are_detected(value: str) -> None:
    """International and separated phone formats are detected."""
    assert looks_like_phone(value)


def test_email_detection_needs_a_domain() -> None:
    """'a@b.co' is an email; a bare '@handle' is not."""
    assert looks_like_email("a@b.co")
    assert not looks_like_email("@handle")


@pytest.mark.parametrize("banned", ["anonymous", "NULL", "undefined", "0", "-1", "[]", " none "])
def test_placeholder_distinct_ids_are_refused(banned: str) -> None:
    """Mixpanel's banned placeholder values are refused, whatever their case."""
    with pytest.raises(EventValidationError, match="placeholder value Mixpanel refuses"):
        check_distinct_id(EV, banned)


def test_real_distinct_ids_pass() -> None:
    """A user UUID and an org_ fallback are valid distinct_ids."""
    assert check_distinct_id(EV, "6f1c7a0e-1b2c-4d5e-8f90-123456789abc")
    assert check_distinct_id(EV, "org_6f1c7a0e")


def test_email_as_distinct_id_is_refused() -> None:
    """An email used as distinct_id is personal data and is refused."""
    with pytest.raises(EventValidationError, match="email"):
        check_distinct_id(EV, "jane@example.com")


@pytest.mark.parametrize(
    "insert_id", ["a" * 37, "has space", "under_score", "", "null", "abc-123\n"]
)
def test_malformed_insert_ids_are_refused(insert_id: str) -> None:
    """$insert_id must be 1-36 characters of [A-Za-z0-9-] and not a placeholder."""
    with pytest.raises(EventValidationError, match=r"\$insert_id"):
        check_insert_id(EV, insert_id)


def test_uuid_insert_ids_pass() -> None:
    """A 36-character UUID is a valid $insert_id."""
    assert check_insert_id(EV, "6f1c7a0e-1b2c-4d5e-8f90-123456789abc")


def test_times_outside_mixpanels_window_are_refused() -> None:
    """Times Mixpanel would read as seconds or as over an hour ahead are refused; edges pass."""
    assert check_time_ms(EV, MIN_EVENT_TIME_MS, now_ms=NOW_MS)
    assert check_time_ms(EV, NOW_MS + 3_600_000, now_ms=NOW_MS)
    with pytest.raises(EventValidationError, match="before 1973-03-03T09:46:40Z"):
        check_time_ms(EV, MIN_EVENT_TIME_MS - 1, now_ms=NOW_MS)
    with pytest.raises(EventValidationError, match="more than an hour in the future"):
        check_time_ms(EV, NOW_MS + 3_600_001, now_ms=NOW_MS)
