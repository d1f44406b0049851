"""Mixpanel's per-record ``/import`` and ``/track`` rules as pure functions, for the stand-in.

Each rule takes a parsed record (and ``now`` in ms where time matters) and returns a verdict;
none does I/O, so they are unit-tested without HTTP and the server only wires them. The rules
are this project's own reading of Mixpanel's documentation (``/work/shared/reference``:
``mixpanel.md`` §2.6, §4, §5 and ``mixpanel-docs/import-events.mdx``), written independently
of ``relay._event.limits`` on purpose: a mistake in the relay's rules must not also be
the stand-in's.
Where the documents leave a number ambiguous ("8KB", "1MB") the stricter reading is taken, so
a relay that passes the stand-in also passes Mixpanel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

MAX_PROPERTIES = 255  # "fewer than 255 properties"
MAX_PROPERTY_NAME_LENGTH = 255
MAX_INSERT_ID_LENGTH = 36
MIN_TIME_MS = 31_536_000_000  # 1971-01-01T00:00:00Z: earlier times are rejected
MAX_FUTURE_MS = 3_600_000  # "more than 1 hour in the future" is rejected
SECONDS_THRESHOLD = 100_000_000_000  # smaller times are seconds, larger are milliseconds
TRACK_MAX_AGE_MS = 5 * 24 * 3_600_000  # /track silently drops older events
MAX_COLLECTION_ITEMS = 255  # objects "fewer than 255 keys", arrays "fewer than 255 elements"
MAX_NESTING_DEPTH = 3  # "max nesting depth is 3": a property value nests at most 3 containers
#: "Event Property = 8KB" for list and object values: 8,000 rather than 8,192, the stricter.
MAX_COLLECTION_BYTES = 8_000
#: "Each event must be smaller than 1MB of uncompressed JSON": 1,000,000, the stricter.
MAX_EVENT_BYTES = 1_000_000
#: "We truncate all strings down to 255 characters"; "String properties have a limit of 255
#: bytes". A string over either is reported as one Mixpanel would truncate.
MAX_STRING_LENGTH = 255

#: Values Mixpanel refuses as ``distinct_id`` and ``$insert_id`` (compared case-insensitively).
BANNED_IDS = frozenset(
    {
        "00000000-0000-0000-0000-000000000000",
        "anon",
        "anonymous",
        "nil",
        "none",
        "null",
        "n/a",
        "na",
        "undefined",
        "unknown",
        "<nil>",
        "0",
        "-1",
        "true",
        "false",
        "[]",
        "{}",
    }
)
_INSERT_ID = re.compile(r"[A-Za-z0-9-]{1,36}")  # with fullmatch: "$" would let "\n" through
_UTF8_MESSAGE = "is invalid: string should be valid utf8"  # the wording of Mixpanel's example

Key = tuple[str, str, int, str]
_CONTAINERS = frozenset({dict, list})


class Failure(NamedTuple):
    """Why Mixpanel refuses a record: ``field`` and ``message`` of its ``failed_records`` row."""

    field: str
    message: str


class EventTime(NamedTuple):
    """A record's time in ms as sent, and as Mixpanel stores it (its ingestion time if ahead)."""

    sent_ms: int
    stored_ms: int

    @property
    def overwritten(self) -> bool:
        """Whether Mixpanel replaced a future time with its ingestion time."""
        return self.stored_ms != self.sent_ms


@dataclass(frozen=True, slots=True)
class Accepted:
    """A record Mixpanel ingests: its dedup key (with the stored time) and the time as sent."""

    key: Key
    time: EventTime


Verdict = Accepted | Failure | None  # None: /track's silent drop of an event older than 5 days


def judge(record: Any, *, now_ms: int, track: bool = False, token: str | None = None) -> Verdict:
    """The verdict on one parsed record received at ``now_ms``: accepted, refused, or dropped.

    Rules apply in a fixed order and the first failure is the verdict. ``track`` applies
    ``/track``'s differences (float times, optional ``$insert_id``, the 5-day drop, and a
    ``properties.token`` that must equal ``token``). Strings holding lone surrogates, which a
    lenient parse yields for invalid UTF-8, fail on the field that holds them.
    """
    failure = shape_failure(record) or utf8_failure(record)
    if failure is not None:
        return failure
    properties: dict[str, Any] = record["properties"]
    event_time = resolve_time(properties.get("time"), now_ms=now_ms, allow_float=track)
    if isinstance(event_time, Failure):
        return event_time
    if track and event_time.sent_ms < now_ms - TRACK_MAX_AGE_MS:
        return None
    distinct_id = properties.get("distinct_id")
    insert_id_optional = track and "$insert_id" not in properties
    insert_id = "" if insert_id_optional else properties.get("$insert_id")
    failure = (
        distinct_id_failure(distinct_id)
        or (None if insert_id_optional else insert_id_failure(insert_id))
        or (token_failure(properties, token) if track else None)
        or value_limits_failure(properties)
        or event_size_failure(record)
    )
    if failure is not None:
        return failure
    key = (record["event"], str(distinct_id), event_time.stored_ms, str(insert_id))
    return Accepted(key=key, time=event_time)


def fast_import_key(record: Any, *, now_ms: int) -> Key | None:
    """The dedup key of an ``/import`` record that passes every rule unchanged, else ``None``.

    The common case in one pass without messages, for throughput: ``None`` means "ask
    ``judge``", never "refused". It assumes the record came from a strict UTF-8 parse and that
    the whole body is under ``MAX_EVENT_BYTES`` (the caller knows both); a future time is left
    to ``judge`` because Mixpanel changes it.
    """
    if type(record) is not dict or len(record) != 2:
        return None
    event = record.get("event")
    properties = record.get("properties")
    if type(event) is not str or not event or type(properties) is not dict:
        return None
    if len(properties) >= MAX_PROPERTIES:
        return None
    time_value = properties.get("time")
    distinct_id = properties.get("distinct_id")
    insert_id = properties.get("$insert_id")
    if type(time_value) is not int or type(distinct_id) is not str or type(insert_id) is not str:
        return None
    time_ms = time_value * 1000 if time_value < SECONDS_THRESHOLD else time_value
    if (
        MIN_TIME_MS <= time_ms <= now_ms
        and distinct_id.lower() not in BANNED_IDS
        and _INSERT_ID.fullmatch(insert_id)
        and insert_id.lower() not in BANNED_IDS
        # All names together within the limit is the cheap common case of each one within it.
        and (
            len("".join(properties)) <= MAX_PROPERTY_NAME_LENGTH
            or max(map(len, properties)) <= MAX_PROPERTY_NAME_LENGTH
        )
        # Most records hold no list or object: one C-level pass over the types says so.
        and (
            _CONTAINERS.isdisjoint(set(map(type, properties.values())))
            or value_limits_failure(properties) is None
        )
    ):
        return (event, distinct_id, time_ms, insert_id)
    return None


def shape_failure(record: Any) -> Failure | None:
    """Why a record is not ``{"event": <non-empty string>, "properties": {...}}``, if it is not."""
    failure: Failure | None = None
    if not isinstance(record, dict):
        failure = Failure("record", "each event must be a JSON object")
    elif len(record) != 2 and (extra := sorted(record.keys() - {"event", "properties"})):
        failure = Failure(extra[0], "unexpected field: only event and properties are allowed")
    elif not isinstance(event := record.get("event"), str) or not event:
        failure = Failure("event", "'event' must be a non-empty string")
    elif not isinstance(properties := record.get("properties"), dict):
        failure = Failure("properties", "'properties' must be a JSON object")
    elif len(properties) >= MAX_PROPERTIES:
        failure = Failure("properties", f"must have fewer than {MAX_PROPERTIES} properties")
    elif max(map(len, properties), default=0) > MAX_PROPERTY_NAME_LENGTH:
        failure = Failure(
            "properties", f"property names must be at most {MAX_PROPERTY_NAME_LENGTH} characters"
        )
    return failure


def utf8_failure(record: Mapping[str, Any]) -> Failure | None:
    """The first string of a record (name or value, at any depth) that is not valid UTF-8.

    A lone surrogate is what both a ``\\ud800`` escape and, through ``surrogateescape``, a raw
    invalid byte become. A bad name is reported on the object holding it, so the answer never
    has to carry the invalid text itself.
    """
    for path, text, is_name in _strings(record, ""):
        if not _is_utf8(text):
            if is_name:
                return Failure(
                    path or "record", f"a name in {path or 'the record'} {_UTF8_MESSAGE}"
                )
            return Failure(path, f"{path} {_UTF8_MESSAGE}")
    return None


def resolve_time(value: object, *, now_ms: int, allow_float: bool = False) -> EventTime | Failure:
    """``properties.time`` in ms as sent and as stored, or why Mixpanel refuses it.

    "We will reject events with time values that are before 1971-01-01 or more than 1 hour in
    the future as measured on our servers. If the time value is set in the future, it will be
    overwritten with the current present time at ingestion." So a time up to an hour ahead is
    stored as ``now_ms``, which changes the record's dedup key. Values under 1e11 are seconds.
    """
    field = "properties.time"
    if isinstance(value, float) and allow_float:
        value = int(value * 1000 if value < SECONDS_THRESHOLD else value)
    if value is None:
        return Failure(field, "'properties.time' is required")
    if not isinstance(value, int) or isinstance(value, bool):
        return Failure(
            field, "'properties.time' is invalid: must be specified as seconds since epoch"
        )
    time_ms = value * 1000 if value < SECONDS_THRESHOLD else value
    if time_ms < MIN_TIME_MS:
        return Failure(field, "'properties.time' is before 1971-01-01")
    if time_ms > now_ms + MAX_FUTURE_MS:
        return Failure(field, "'properties.time' is more than 1 hour in the future")
    return EventTime(sent_ms=time_ms, stored_ms=min(time_ms, now_ms))


def distinct_id_failure(value: object) -> Failure | None:
    """Why ``properties.distinct_id`` is refused: missing, not a string, or a banned placeholder."""
    field = "properties.distinct_id"
    if value is None:
        return Failure(field, "'properties.distinct_id' is required")
    if not isinstance(value, str):
        return Failure(field, "'properties.distinct_id' must be a string")
    if value.lower() in BANNED_IDS:
        return Failure(field, "'properties.distinct_id' is not allowed")
    return None


def insert_id_failure(value: object) -> Failure | None:
    """Why ``properties.$insert_id`` is refused: missing, malformed, or a banned placeholder."""
    field = "properties.$insert_id"
    if value is None:
        return Failure(field, "'properties.$insert_id' is required")
    if not isinstance(value, str) or not _INSERT_ID.fullmatch(value):
        return Failure(
            field,
            f"'properties.$insert_id' must be 1 to {MAX_INSERT_ID_LENGTH} "
            "characters of A-Z, a-z, 0-9 and '-'",
        )
    if value.lower() in BANNED_IDS:
        return Failure(field, "'properties.$insert_id' is not allowed")
    return None


def token_failure(properties: Mapping[str, Any], token: str | None) -> Failure | None:
    """Why a ``/track`` record's ``properties.token`` is refused: it is not the project token."""
    if token is not None and properties.get("token") == token:
        return None
    return Failure("properties.token", "'properties.token' is not a valid project token")


def value_limits_failure(properties: Mapping[str, Any]) -> Failure | None:
    """The first list or object property over Mixpanel's limits (``collection_failure``)."""
    for name, value in properties.items():
        if isinstance(value, dict | list):
            failure = collection_failure(name, value)
            if failure is not None:
                return failure
    return None


def collection_failure(name: str, value: dict[str, Any] | list[Any]) -> Failure | None:
    """Why the list or object value of property ``name`` is over Mixpanel's limits, if it is.

    From ``import-events.mdx`` (validation): objects have fewer than 255 keys and nest at most
    3 deep; arrays have fewer than 255 elements. From ``data-type.mdx``: a list or object event
    property is at most 8KB, and the objects in a list of objects hold no nested list or object.
    Lists count as a nesting level like objects: the documents do not say they don't.
    """
    path = f"properties.{name}"
    failure = _container_failure(path, value, depth=1)
    if failure is not None:
        return failure
    try:
        size = len(orjson.dumps(value))
    except orjson.JSONEncodeError:  # an integer beyond 64 bits from the lenient parse
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_COLLECTION_BYTES:
        return Failure(path, f"{path} is invalid: list and object values must be at most 8KB")
    return None


def event_size_failure(record: Mapping[str, Any]) -> Failure | None:
    """Why a record is refused for its size: 1MB or more of JSON."""
    try:
        size = len(orjson.dumps(record))
    except orjson.JSONEncodeError:
        size = len(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode())
    if size >= MAX_EVENT_BYTES:
        return Failure("record", "each event must be smaller than 1MB of uncompressed JSON")
    return None


def geolocated(properties: Mapping[str, Any], *, request_ip_used: bool = True) -> bool:
    """Whether Mixpanel would geolocate this event (GeoIP from an address or the request).

    "If you do not supply an ``ip`` property in your event payload, the IP address of the
    request will be used … set the value of ``ip`` to ``0`` and our API will skip the
    geolocation" (``import-events.mdx``). ``0`` and ``"0"`` skip it; any other value is an
    address to look up. ``request_ip_used`` is false for ``/track`` without ``ip=1``.
    """
    if "ip" not in properties:
        return request_ip_used
    ip = properties["ip"]
    return not (ip == "0" or (type(ip) is int and ip == 0))


def truncated_strings(record: Mapping[str, Any]) -> tuple[str, ...]:
    """Paths of the strings (names or values) Mixpanel would truncate: over 255 chars or bytes.

    Mixpanel accepts such a record and silently cuts the string, so this is not a failure;
    the stand-in exposes it so a test can assert the relay never sends one. A long name is
    reported by the path it names.
    """
    found: list[str] = []
    for path, text, is_name in _strings(record.get("properties", {}), "properties"):
        if _too_long(text):
            found.append(f"{path}.{text}" if is_name else path)
    return tuple(found)


def _container_failure(
    path: str, value: dict[str, Any] | list[Any], *, depth: int
) -> Failure | None:
    if depth > MAX_NESTING_DEPTH:
        return Failure(path, f"{path} is invalid: nesting deeper than {MAX_NESTING_DEPTH} levels")
    in_list = isinstance(value, list)
    if len(value) >= MAX_COLLECTION_ITEMS:
        limit = (
            "arrays must have fewer than 255 elements"
            if in_list
            else "objects must have fewer than 255 keys"
        )
        return Failure(path, f"{path} is invalid: {limit}")
    children = (
        [(f"{path}[{index}]", item) for index, item in enumerate(value)]
        if isinstance(value, list)
        else [(f"{path}.{key}", item) for key, item in value.items()]
    )
    for child_path, item in children:
        if not isinstance(item, dict | list):
            continue
        if (
            in_list
            and isinstance(item, dict)
            and any(isinstance(v, dict | list) for v in item.values())
        ):
            return Failure(child_path, f"{child_path} is invalid: objects in a list may not nest")
        failure = _container_failure(child_path, item, depth=depth + 1)
        if failure is not None:
            return failure
    return None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str, bool]]:
    """Every string under ``value`` as (path, text, whether it is an object key), depth first."""
    if isinstance(value, str):
        yield path, value, False
    elif isinstance(value, dict):
        for key, item in value.items():
            yield path, key, True
            # An invalid key never reaches a path: utf8_failure stops at it.
            yield from _strings(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _too_long(text: str) -> bool:
    # 4 bytes per character at most: a short string cannot be over the byte limit.
    if len(text) <= MAX_STRING_LENGTH // 4:
        return False
    return len(text) > MAX_STRING_LENGTH or len(text.encode("utf-8", "surrogatepass")) > (
        MAX_STRING_LENGTH
    )
