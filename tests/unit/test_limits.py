"""Mixpanel's per-event limits and the PII-by-value guard, checked at track time."""

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay._errors import EventValidationError, ProfileUpdateError
from relay._event.limits import (
    MAX_CLOCK_SKEW_MS,
    MAX_EVENT_BYTES,
    MIN_EVENT_TIME_MS,
    STORED_GROWTH_BOUND,
    check_distinct_id,
    check_insert_id,
    check_properties,
    check_time_ms,
    stored_json_size,
)
from relay._event.pii import looks_like_email, looks_like_phone
from relay._tables import RowKind
from relay._tracking.profiles import prepare_profile_update

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
    """250 stored properties plus time, distinct_id, $insert_id and the relay's ip make 254,
    Mixpanel's most ("fewer than 255"); 251 are refused, and a stored ip is not counted twice."""
    check_properties(EV, {f"p{i}": i for i in range(250)})
    with pytest.raises(EventValidationError, match="255 properties"):
        check_properties(EV, {f"p{i}": i for i in range(251)})
    check_properties(EV, {f"p{i}": i for i in range(249)} | {"ip": "0"})


def test_the_import_envelope_counts_toward_the_megabyte() -> None:
    """Properties just under 1 MB are refused once the event name, time, ids and ip that the
    relay wraps around them take the event to 1 MB."""
    properties = {f"p{i}": ["x" * 250] * 30 for i in range(131)}
    # PostgreSQL's text of it (a space after each separator) is the longer form relay sends.
    size = stored_json_size(properties)
    assert len(orjson.dumps(properties)) < size < 1_000_000
    envelope = 1_000_000 - size
    check_properties(EV, properties, envelope=envelope - 1)
    with pytest.raises(EventValidationError, match=r"\b1000000 bytes"):
        check_properties(EV, properties, envelope=envelope)


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
    """Times read as seconds or beyond the clock-skew bound are refused; the edges pass."""
    assert check_time_ms(EV, MIN_EVENT_TIME_MS, now_ms=NOW_MS)
    assert check_time_ms(EV, NOW_MS + MAX_CLOCK_SKEW_MS, now_ms=NOW_MS)
    with pytest.raises(EventValidationError, match="before 1973-03-03T09:46:40Z"):
        check_time_ms(EV, MIN_EVENT_TIME_MS - 1, now_ms=NOW_MS)
    with pytest.raises(EventValidationError, match="60 s ahead of this host's clock"):
        check_time_ms(EV, NOW_MS + MAX_CLOCK_SKEW_MS + 1, now_ms=NOW_MS)


def test_a_time_ten_minutes_ahead_is_refused() -> None:
    """A time past the 60 s clock-skew bound (once accepted up to an hour) is refused."""
    assert MAX_CLOCK_SKEW_MS == 60_000
    with pytest.raises(EventValidationError) as info:
        check_time_ms(EV, NOW_MS + 600_000, now_ms=NOW_MS)
    assert info.value.field == "time"


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (1e308, "1" + "0" * 308),
        (-1e308, "-1" + "0" * 308),
        (1.5e-7, "0.00000015"),
        (1e-300, "0." + "0" * 299 + "1"),
        (5e-324, "0." + "0" * 323 + "5"),
        (1.2345678901234568e20, "123456789012345680000"),
        (-0.0, "0.0"),
        (1.5, "1.5"),
        (10**18, "1000000000000000000"),
    ],
)
def test_stored_size_of_a_number_is_its_positional_rendering(value: float, stored: str) -> None:
    """A number's stored size is that of PostgreSQL's positional text of it, all digits."""
    assert stored_json_size(value) == len(stored)


def test_stored_size_counts_jsonb_separators() -> None:
    """JSONB text puts a space after every colon and comma of an object or a list."""
    assert stored_json_size({"a": [1, 2], "b": {}}) == len('{"a": [1, 2], "b": {}}')


def test_event_that_grows_past_the_limit_in_storage_is_refused_naming_the_field() -> None:
    """452 KB of 1e308 floats, 20 MB once PostgreSQL renders them, is refused as too large."""
    props = {"ok": "x", "floats": [[1e308] * 250] * 250}
    assert len(orjson.dumps(props)) < MAX_EVENT_BYTES
    with pytest.raises(EventValidationError) as info:
        check_properties(EV, props)
    assert info.value.field == "floats"
    # Mixpanel's 8 KB bound on one list property, measured as stored, refuses it first.
    assert f"{stored_json_size(props['floats'])} bytes" in str(info.value)


def test_small_event_of_exponent_numbers_still_passes() -> None:
    """A few exponent-form numbers, far under the limit once written out, are accepted."""
    assert check_properties(EV, {"f": [1e308, 5e-324, 1.5e-7]})


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**63 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=10),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=5), children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_stored_size_is_at_most_the_growth_bound_times_the_compact_size(value: object) -> None:
    """No JSON value grows more than STORED_GROWTH_BOUND-fold in storage: the fast path is safe."""
    assert stored_json_size(value) <= STORED_GROWTH_BOUND * len(orjson.dumps(value))


def test_string_of_255_characters_but_over_255_bytes_is_refused() -> None:
    """Mixpanel cuts strings at 255 bytes: 200 'é' (400 bytes of UTF-8) would arrive changed."""
    with pytest.raises(EventValidationError, match="400 bytes of UTF-8") as info:
        check_properties(EV, {"label": "é" * 200})
    assert info.value.field == "label"
    assert check_properties(EV, {"label": "é" * 127})  # 254 bytes: kept whole


def test_list_property_over_8_kb_as_sent_is_refused_naming_it() -> None:
    """A list property over Mixpanel's 8 KB (90 strings of 100 characters) is refused."""
    with pytest.raises(EventValidationError, match="at most 8000") as info:
        check_properties(EV, {"tags": ["x" * 100] * 90})
    assert info.value.field == "tags"


def test_object_property_is_measured_as_stored_for_the_8_kb_bound() -> None:
    """The bound counts the stored text: exponent numbers written out in full count in full."""
    small_as_json = {f"k{i}": 1e100 for i in range(60)}  # ~600 bytes of JSON, ~6.5 KB stored
    assert check_properties(EV, {"o": small_as_json})
    grown = {f"k{i}": 1e200 for i in range(60)}  # ~12.5 KB stored
    with pytest.raises(EventValidationError, match="list or object property") as info:
        check_properties(EV, {"o": grown})
    assert info.value.field == "o"


def test_object_inside_a_list_may_not_nest_a_container() -> None:
    """'List of objects: no nesting': an object in a list holding an object is refused."""
    with pytest.raises(EventValidationError, match="no nesting") as info:
        check_properties(EV, {"cart": [{"sku": "a"}, {"brand": {"name": "Puma"}}]})
    assert info.value.field == "cart[1]"
    assert check_properties(EV, {"cart": [{"sku": "a", "qty": 2}], "grid": [[1, 2], [3]]})


def test_profile_limits_are_the_profile_docs_not_the_event_limits() -> None:
    """A $set may hold 300 properties and a 55 KB list (events may not); 2001 properties, a
    list over 256 KB and an update over 1 MB with its $token are refused as ProfileUpdateError."""
    # About 55 KB: 200 objects of 2 strings (lists stay under 255 elements, as for events).
    big_list = [{"k": f"item-{i:06d}", "v": "x" * 240} for i in range(200)]
    prepare_profile_update(
        RowKind.USER,
        operation="$set",
        properties={f"p{i}": i for i in range(300)} | {"tags": big_list},
        distinct_id="u-1",
    )
    refused: list[dict[str, object]] = [
        {f"p{i}": i for i in range(2001)},
        {"tags": [item | {f"w{n}": "w" * 240 for n in range(5)} for item in big_list]},
        {f"l{i}": big_list for i in range(20)},
    ]
    for properties in refused:
        with pytest.raises(ProfileUpdateError):
            prepare_profile_update(
                RowKind.USER, operation="$set", properties=properties, distinct_id="u-1"
            )


@pytest.mark.parametrize("item", [True, None, {"a": 1}, ["a"]], ids=["bool", "null", "obj", "list"])
def test_union_takes_only_strings_and_numbers(item: object) -> None:
    """$union list items are strings or numbers (the spec); anything else is refused."""
    prepare_profile_update(
        RowKind.USER, operation="$union", properties={"tags": ["a", 1, 2.5]}, distinct_id="u-1"
    )
    with pytest.raises(ProfileUpdateError, match="strings or numbers"):
        prepare_profile_update(
            RowKind.USER, operation="$union", properties={"tags": ["a", item]}, distinct_id="u-1"
        )
