"""Checks on an event's values at track time: Mixpanel's limits and the PII-by-value guard.

Mixpanel truncates long strings and drops oversized events silently; the relay refuses them
loudly instead, before they reach the outbox, so that nothing in the outbox is an event
Mixpanel would reject or change. Every error names the event and the property path, never the
value (the value may be the very personal data being refused).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence, Sized
from typing import Any

import orjson

from relay.errors import EventValidationError
from relay.pii import name_refusal, value_refusal

MAX_PROPERTIES = 254  # "fewer than 255 properties", time/distinct_id/$insert_id included
MAX_NAME_LENGTH = 255
MAX_STRING_LENGTH = 255
MAX_COLLECTION_ITEMS = 254  # objects < 255 keys, lists < 255 elements
MAX_NESTING_DEPTH = 3
MAX_EVENT_BYTES = 1_000_000  # an event must be under 1 MB of JSON
MAX_INSERT_ID_LENGTH = 36
#: Mixpanel rejects times before 1971-01-01 and reads ``time`` as seconds when it is below
#: 1e11, so a millisecond time before 1973-03-03T09:46:40Z would be read as a date centuries
#: ahead and refused. The earliest unambiguous millisecond time is therefore the floor.
MIN_EVENT_TIME_MS = 100_000_000_000
MAX_FUTURE_MS = 3_600_000  # Mixpanel rejects events more than an hour ahead of its clock
_INT64 = 2**63
#: Mixpanel's own properties the relay may set itself (no schema may declare them): ``ip``
#: is the GeoIP input, ``0`` unless the caller supplies a location on purpose (DESIGN §7).
RELAY_SET_PROPERTIES = frozenset({"ip"})

#: Placeholder values Mixpanel refuses as ``distinct_id`` and ``$insert_id``.
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

_INSERT_ID = re.compile(r"[A-Za-z0-9-]{1,36}")  # used with fullmatch: "$" would allow "\n"


def _check_string(event: str, path: str, value: str, *, what: str = "value") -> None:
    if len(value) > MAX_STRING_LENGTH:
        raise EventValidationError(
            f"string {what} is {len(value)} characters; Mixpanel keeps at most {MAX_STRING_LENGTH}",
            event=event,
            field=path,
        )
    if "\x00" in value:
        raise EventValidationError(
            f"string {what} contains a NUL character", event=event, field=path
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise EventValidationError(
            f"string {what} is not valid UTF-8 (lone surrogate)", event=event, field=path
        ) from None
    # A property name is judged like a value (it may itself be an email), and by its words.
    refusal = value_refusal(value) if what == "value" else name_refusal(value)
    if refusal is not None:
        label = "value" if what == "value" else "property name"
        raise EventValidationError(
            f"{label} looks like {refusal} (personal data)", event=event, field=path
        )


def _check_key(event: str, parent: str | None, index: int, key: object) -> str:
    """Check an object key; return the path of its value.

    A refused key is named by its position (``payload[key 2]``), never by itself: the key
    may be the very personal data being refused. A key that passed is safe to name.
    """
    if not (isinstance(key, str) and _is_safe_key(key)):
        where = f"{parent or 'properties'}[key {index}]"
        if not isinstance(key, str):
            raise EventValidationError("object keys must be strings", event=event, field=where)
        if parent is None and key in RELAY_SET_PROPERTIES:
            return key
        _check_string(event, where, key, what="name")
    return key if parent is None else f"{parent}.{key}"


@functools.lru_cache(maxsize=4096)
def _is_safe_key(key: str) -> bool:
    """Whether ``_check_string`` passes ``key`` as a name; cached, keys repeat on every event."""
    try:
        _check_string("", "", key, what="name")
    except EventValidationError:
        return False
    return True


def safe_field_path(parts: Sequence[str | int], root: object) -> str | None:
    """A value-free path for a location in ``root`` (a pydantic error's ``loc``).

    A key that would be refused (too long, unprintable, personal data) is replaced by its
    position, as :func:`check_properties` names it; a key that passes is named.
    """
    path: str | None = None
    node = root
    for part in parts:
        if isinstance(part, int):
            path = f"{path or 'properties'}[{part}]"
            in_range = isinstance(node, list | tuple) and -len(node) <= part < len(node)
            node = node[part] if in_range else None  # type: ignore[index]
            continue
        if _is_safe_key(part):
            path = part if path is None else f"{path}.{part}"
        else:
            keys = list(node) if isinstance(node, Mapping) else []
            index = keys.index(part) if part in keys else "?"
            path = f"{path or 'properties'}[key {index}]"
        node = node.get(part) if isinstance(node, Mapping) else None
    return path


def _check_value(event: str, path: str, value: Any, depth: int) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        _check_string(event, path, value)
    elif isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise EventValidationError("integer does not fit in 64 bits", event=event, field=path)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise EventValidationError("number is NaN or infinite", event=event, field=path)
    elif isinstance(value, Mapping):
        _check_collection(event, path, value, depth, kind="object", unit="keys")
        for index, (key, item) in enumerate(value.items()):
            _check_value(event, _check_key(event, path, index, key), item, depth + 1)
    elif isinstance(value, list | tuple):
        _check_collection(event, path, value, depth, kind="list", unit="elements")
        for i, item in enumerate(value):
            _check_value(event, f"{path}[{i}]", item, depth + 1)
    else:
        raise EventValidationError(
            f"{type(value).__name__} is not a JSON value", event=event, field=path
        )


def _check_collection(
    event: str, path: str, value: Sized, depth: int, *, kind: str, unit: str
) -> None:
    if depth >= MAX_NESTING_DEPTH:
        raise EventValidationError(
            f"{kind}s nest deeper than {MAX_NESTING_DEPTH} levels", event=event, field=path
        )
    if len(value) > MAX_COLLECTION_ITEMS:
        raise EventValidationError(
            f"{kind} has {len(value)} {unit}; at most {MAX_COLLECTION_ITEMS}",
            event=event,
            field=path,
        )


def check_properties(event: str, properties: Mapping[str, Any]) -> bytes:
    """Check serialised properties against Mixpanel's limits and the PII guard.

    Returns the properties as JSON bytes (the exact text stored in the outbox).
    """
    if len(properties) + 3 > MAX_PROPERTIES:
        raise EventValidationError(
            f"{len(properties) + 3} properties (with time, distinct_id, $insert_id); "
            f"Mixpanel accepts fewer than {MAX_PROPERTIES + 1}",
            event=event,
        )
    for index, (key, value) in enumerate(properties.items()):
        _check_value(event, _check_key(event, None, index, key), value, depth=0)
    encoded = orjson.dumps(properties)
    if len(encoded) >= MAX_EVENT_BYTES:
        raise EventValidationError(
            f"event is {len(encoded)} bytes of JSON; Mixpanel accepts under {MAX_EVENT_BYTES}",
            event=event,
        )
    return encoded


def check_distinct_id(event: str, distinct_id: str) -> str:
    """Refuse a ``distinct_id`` that is empty, too long, a banned placeholder or personal data."""
    if not isinstance(distinct_id, str) or not distinct_id:
        raise EventValidationError("distinct_id must be a non-empty string", event=event)
    if distinct_id.strip().lower() in BANNED_IDS:
        raise EventValidationError(
            "distinct_id is a placeholder value Mixpanel refuses", event=event, field="distinct_id"
        )
    _check_string(event, "distinct_id", distinct_id)
    return distinct_id


def check_insert_id(event: str, insert_id: str) -> str:
    """Refuse an ``$insert_id`` that is not 1-36 characters of ``[A-Za-z0-9-]`` or is banned."""
    if not isinstance(insert_id, str) or not _INSERT_ID.fullmatch(insert_id):
        raise EventValidationError(
            f"$insert_id must be 1-{MAX_INSERT_ID_LENGTH} characters of [A-Za-z0-9-]",
            event=event,
            field="$insert_id",
        )
    if insert_id.lower() in BANNED_IDS:
        raise EventValidationError(
            "$insert_id is a placeholder value Mixpanel refuses", event=event, field="$insert_id"
        )
    return insert_id


def check_time_ms(event: str, time_ms: int, *, now_ms: int) -> int:
    """Refuse an event time Mixpanel would reject: before 1971 or over an hour in the future."""
    if time_ms < MIN_EVENT_TIME_MS:
        raise EventValidationError(
            "time is before 1973-03-03T09:46:40Z; Mixpanel would read it as seconds and reject it",
            event=event,
            field="time",
        )
    if time_ms > now_ms + MAX_FUTURE_MS:
        raise EventValidationError(
            "time is more than an hour in the future; Mixpanel rejects it",
            event=event,
            field="time",
        )
    return time_ms
