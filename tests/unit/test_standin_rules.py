"""The stand-in's Mixpanel rules, as pure functions: a parsed record and now in, a verdict out."""

from __future__ import annotations

from typing import Any

import pytest

from relay.testing.mixpanel_standin import _rules as rules
from relay.testing.mixpanel_standin._rules import Accepted, EventTime, Failure

NOW_MS = 1_700_000_000_000
HOUR_MS = 3_600_000


def _record(**properties: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"time": NOW_MS - 1_000, "distinct_id": "user-1", "$insert_id": "ins-1"}
    base.update(properties)
    return {"event": "svc.test.thing_done", "properties": base}


def _nested(depth: int) -> Any:
    """A value of ``depth`` nested objects: 1 is ``{"k": 1}``."""
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value


def _failure_field(verdict: rules.Verdict) -> str:
    assert isinstance(verdict, Failure), verdict
    return verdict.field


# --- time ------------------------------------------------------------------------------------


def test_past_time_is_kept_as_sent() -> None:
    """A time at or before now is stored unchanged and is the key's time."""
    assert rules.resolve_time(NOW_MS, now_ms=NOW_MS) == EventTime(NOW_MS, NOW_MS)
    verdict = rules.judge(_record(), now_ms=NOW_MS)
    assert isinstance(verdict, Accepted)
    assert verdict.key[2] == NOW_MS - 1_000
    assert not verdict.time.overwritten


@pytest.mark.parametrize("ahead_ms", [1, 1_000, HOUR_MS], ids=["1ms", "1s", "1h"])
def test_future_time_within_an_hour_is_overwritten_with_ingestion_time(ahead_ms: int) -> None:
    """A time up to an hour ahead is accepted but stored as now, and keyed by now."""
    verdict = rules.judge(_record(time=NOW_MS + ahead_ms), now_ms=NOW_MS)
    assert isinstance(verdict, Accepted)
    assert verdict.time == EventTime(sent_ms=NOW_MS + ahead_ms, stored_ms=NOW_MS)
    assert verdict.time.overwritten
    assert verdict.key == ("svc.test.thing_done", "user-1", NOW_MS, "ins-1")


def test_future_time_in_seconds_is_overwritten_in_ms() -> None:
    """A future time in seconds is compared in ms and overwritten with now in ms."""
    time_s = NOW_MS // 1000 + 1
    assert rules.resolve_time(time_s, now_ms=NOW_MS) == EventTime(time_s * 1000, NOW_MS)


def test_resending_a_future_time_later_gives_a_new_dedup_key() -> None:
    """The same future-timed record sent at two instants gets two keys: Mixpanel counts it twice."""
    record = _record(time=NOW_MS + 10_000)
    first = rules.judge(record, now_ms=NOW_MS)
    second = rules.judge(record, now_ms=NOW_MS + 5_000)
    assert isinstance(first, Accepted)
    assert isinstance(second, Accepted)
    assert first.key != second.key


def test_time_over_an_hour_ahead_is_refused() -> None:
    """More than an hour ahead is a failure on properties.time, not an overwrite."""
    assert _failure_field(rules.judge(_record(time=NOW_MS + HOUR_MS + 1), now_ms=NOW_MS)) == (
        "properties.time"
    )


def test_fast_path_leaves_a_future_time_to_judge() -> None:
    """The fast path never keys a future time as sent: it defers, and judge overwrites it."""
    assert rules.fast_import_key(_record(time=NOW_MS + 1), now_ms=NOW_MS) is None
    assert rules.fast_import_key(_record(time=NOW_MS), now_ms=NOW_MS) == (
        "svc.test.thing_done",
        "user-1",
        NOW_MS,
        "ins-1",
    )


# --- UTF-8 -----------------------------------------------------------------------------------


def test_lone_surrogate_value_fails_on_its_field() -> None:
    """A string value holding a lone surrogate fails with Mixpanel's utf8 message on its path."""
    verdict = rules.judge(_record(utm_source="bad\ud800"), now_ms=NOW_MS)
    assert verdict == Failure(
        "properties.utm_source", "properties.utm_source is invalid: string should be valid utf8"
    )


def test_escaped_raw_byte_in_a_nested_value_fails_on_its_path() -> None:
    """A raw invalid byte (surrogateescape) deep in a list fails on that element's path."""
    verdict = rules.judge(_record(tags={"list": ["ok", "x\udcff"]}), now_ms=NOW_MS)
    assert _failure_field(verdict) == "properties.tags.list[1]"


def test_lone_surrogate_in_a_name_fails_without_naming_it() -> None:
    """A bad property name fails on the object holding it, so the answer can be encoded."""
    verdict = rules.judge(_record(**{"bad\ud800": 1}), now_ms=NOW_MS)
    assert isinstance(verdict, Failure)
    assert verdict.field == "properties"
    verdict.field.encode()
    verdict.message.encode()


def test_lone_surrogate_in_the_event_name_fails_on_event() -> None:
    """The event name is checked like any string."""
    record = _record()
    record["event"] = "svc.\ud800.x"
    assert _failure_field(rules.judge(record, now_ms=NOW_MS)) == "event"


def test_valid_non_ascii_text_passes() -> None:
    """Real UTF-8 (accents, emoji as a surrogate pair decoded) is not a failure."""
    assert isinstance(rules.judge(_record(city="Zürich 😀"), now_ms=NOW_MS), Accepted)


# --- nesting, keys, elements, 8KB --------------------------------------------------------------


def test_objects_nested_three_deep_pass_and_four_fail() -> None:
    """Max nesting depth 3: three nested objects are accepted, a fourth level is refused."""
    assert rules.collection_failure("p", _nested(3)) is None
    failure = rules.collection_failure("p", _nested(4))
    assert failure is not None
    assert failure.field == "properties.p.k.k.k"
    assert isinstance(rules.judge(_record(p=_nested(3)), now_ms=NOW_MS), Accepted)
    assert _failure_field(rules.judge(_record(p=_nested(4)), now_ms=NOW_MS)) == "properties.p.k.k.k"


def test_lists_count_as_nesting_levels() -> None:
    """A list is a level like an object: four levels of lists are refused."""
    assert rules.collection_failure("p", [[["x"]]]) is None
    assert rules.collection_failure("p", [[[["x"]]]]) is not None


def test_objects_with_254_keys_pass_and_255_fail() -> None:
    """Nested objects must have fewer than 255 keys."""
    assert rules.collection_failure("p", {f"k{i}": i for i in range(254)}) is None
    failure = rules.collection_failure("p", {"inner": {f"k{i}": i for i in range(255)}})
    assert failure is not None
    assert failure.field == "properties.p.inner"


def test_arrays_with_254_elements_pass_and_255_fail() -> None:
    """Arrays must have fewer than 255 elements."""
    assert rules.collection_failure("p", list(range(254))) is None
    assert rules.collection_failure("p", list(range(255))) is not None


def test_objects_in_a_list_may_not_nest() -> None:
    """A list of objects holds flat objects only: an object in one may hold no list or object."""
    assert rules.collection_failure("cart", [{"brand": "Puma", "price": 30}]) is None
    failure = rules.collection_failure("cart", [{"ok": 1}, {"brand": {"name": "Puma"}}])
    assert failure is not None
    assert failure.field == "properties.cart[1]"
    assert rules.collection_failure("cart", [{"tags": ["a"]}]) is not None


def test_list_or_object_of_8000_bytes_passes_and_one_more_fails() -> None:
    """A list or object property is at most 8KB of JSON (8,000 bytes, the stricter reading)."""
    padding = "x" * (8_000 - len('{"k":""}'))
    assert rules.collection_failure("p", {"k": padding}) is None
    failure = rules.collection_failure("p", {"k": padding + "x"})
    assert failure == Failure(
        "properties.p", "properties.p is invalid: list and object values must be at most 8KB"
    )
    many = ["x" * 50] * 200  # 200 elements of 52 bytes: over 8KB with each string short
    assert rules.collection_failure("p", many) is not None


def test_8kb_limit_is_measured_in_utf8_bytes() -> None:
    """Multi-byte characters count by their UTF-8 bytes, not as characters."""
    assert rules.collection_failure("p", ["é" * 100] * 40) is not None  # 40 * 203 bytes


def test_scalar_properties_are_not_subject_to_the_collection_limits() -> None:
    """Only list and object values are checked: strings and numbers pass value_limits_failure."""
    assert rules.value_limits_failure({"s": "x" * 9_000, "n": 1}) is None


def test_fast_path_refuses_nothing_it_cannot_key() -> None:
    """A record over a collection limit is never keyed by the fast path; judge refuses it."""
    record = _record(p=_nested(4))
    assert rules.fast_import_key(record, now_ms=NOW_MS) is None
    assert isinstance(rules.judge(record, now_ms=NOW_MS), Failure)
    fine = _record(p=_nested(3), tags=["a", "b"])
    assert rules.fast_import_key(fine, now_ms=NOW_MS) is not None


def test_event_of_1mb_is_refused() -> None:
    """An event of 1MB (1,000,000 bytes) or more of JSON is refused on the record."""
    big = _record(**{f"s{i}": "x" * 250 for i in range(250)})
    small = rules.event_size_failure(big)
    assert small is None
    huge = {"event": "e", "properties": {"blob": "x" * 1_000_000}}
    assert rules.event_size_failure(huge) == Failure(
        "record", "each event must be smaller than 1MB of uncompressed JSON"
    )


# --- geolocation and truncation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({}, True),
        ({"ip": "0"}, False),
        ({"ip": 0}, False),
        ({"ip": "136.24.0.114"}, True),
        ({"ip": False}, True),
        ({"ip": ""}, True),
    ],
    ids=["absent", "string-zero", "int-zero", "address", "false", "empty"],
)
def test_only_ip_zero_skips_geolocation(properties: dict[str, Any], expected: bool) -> None:
    """Without ip Mixpanel geolocates the request; only ip 0 or "0" skips GeoIP."""
    assert rules.geolocated(properties) is expected


def test_track_without_ip_flag_does_not_use_the_request_address() -> None:
    """On /track the request address is used only with ip=1; an ip property still is."""
    assert rules.geolocated({}, request_ip_used=False) is False
    assert rules.geolocated({"ip": "10.0.0.1"}, request_ip_used=False) is True


def test_strings_over_255_characters_or_bytes_are_reported_as_truncated() -> None:
    """Mixpanel cuts strings to 255; the paths of longer values and names are reported."""
    record = _record(
        short="x" * 255,
        long="x" * 256,
        wide="é" * 128,  # 128 characters, 256 bytes
        nested={"items": ["ok", "y" * 300], "n" * 256: 1},
    )
    assert rules.truncated_strings(record) == (
        "properties.long",
        "properties.wide",
        "properties.nested.items[1]",
        f"properties.nested.{'n' * 256}",
    )
    assert rules.truncated_strings(_record(short="x" * 255)) == ()


# --- the rest of the contract still holds ---------------------------------------------------------


def test_track_differences_apply_only_with_track() -> None:
    """On /track a float time and a missing $insert_id pass, and the token must match."""
    record = _record(time=NOW_MS / 1000, token="tok")
    del record["properties"]["$insert_id"]
    verdict = rules.judge(record, now_ms=NOW_MS, track=True, token="tok")
    assert isinstance(verdict, Accepted)
    assert verdict.key[3] == ""
    assert _failure_field(rules.judge(record, now_ms=NOW_MS, track=True, token="other")) == (
        "properties.token"
    )
    assert _failure_field(rules.judge(record, now_ms=NOW_MS)) == "properties.time"


def test_track_drops_events_older_than_five_days_silently() -> None:
    """/track's verdict on an event older than 5 days is None: dropped, not refused."""
    record = _record(time=NOW_MS - rules.TRACK_MAX_AGE_MS - 1, token="tok")
    assert rules.judge(record, now_ms=NOW_MS, track=True, token="tok") is None


def test_a_body_over_1mb_still_refuses_its_1mb_record_and_keys_the_others() -> None:
    """In a body of 1MB or more the fast path still refuses a record of 1MB or more (its size
    is checked), while every ordinary record beside it is keyed as judge would key it."""
    from relay.testing.mixpanel_standin._ingest import validate  # noqa: PLC0415
    from relay.testing.mixpanel_standin._wire import Body  # noqa: PLC0415

    huge = _record(**{"$insert_id": "ins-huge", "blob": "x" * 1_000_000})
    records = [_record(**{"$insert_id": f"ins-{n}"}) for n in range(3)] + [huge]
    body = Body(records=records, size=1_200_000)
    stored, failures = validate(body, track=False, now_ms=NOW_MS, token="t", refused={})
    assert (
        [key for key, _ in stored]
        == [
            rules.judge(r, now_ms=NOW_MS).key  # type: ignore[union-attr]
            for r in records[:3]
        ]
    )
    assert failures == [
        (3, Failure("record", "each event must be smaller than 1MB of uncompressed JSON"))
    ]
