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
from collections.abc import Collection, Mapping, Sequence, Sized
from typing import Any

import orjson

from relay._errors import EventValidationError
from relay._event.pii import name_refusal, value_refusal

#: Mixpanel accepts at most 2000 events per ``/import`` request (``RELAY_BATCH_MAX_EVENTS``).
MAX_BATCH_EVENTS = 2000
#: 2 MiB of uncompressed ``/import`` body: the only limit seen in Mixpanel's own 413 error
#: text (the default of ``RELAY_BATCH_MAX_BYTES``).
MAX_REQUEST_BYTES = 2 * 1024 * 1024
MAX_PROPERTIES = 254  # "fewer than 255 properties", time/distinct_id/$insert_id/ip included
#: Properties the client writes into every ``/import`` event besides the stored ones:
#: ``time``, ``distinct_id``, ``$insert_id`` and ``ip`` (a stored ``ip`` is replaced).
SPLICED_PROPERTIES = 4
MAX_NAME_LENGTH = 255
MAX_STRING_LENGTH = 255
#: "String properties have a limit of 255 bytes" (data-type docs); longer ones are truncated.
MAX_STRING_BYTES = 255
#: "Event Property max 8KB" for a list or object property, read as 8,000 bytes as sent.
MAX_COLLECTION_PROPERTY_BYTES = 8_000
MAX_COLLECTION_ITEMS = 254  # objects < 255 keys, lists < 255 elements
MAX_NESTING_DEPTH = 3
MAX_EVENT_BYTES = 1_000_000  # "each event must be smaller than 1MB of uncompressed JSON"
#: The ``/import`` envelope around the stored members (``relay._mixpanel.encoding``), without
#: the event name, time, distinct_id and ``$insert_id`` values.
_ENVELOPE = b'{"event":,"properties":{"time":,"distinct_id":,"$insert_id":,"ip":"0",}}'
#: When the distinct_id is not known yet: 255 characters, each escaped to at most 6 bytes.
_DISTINCT_ID_WORST_BYTES = 2 + 255 * 6
_INSERT_ID_WORST_BYTES = 2 + 36
_TIME_WORST_DIGITS = 20
#: Profiles (``mixpanel-docs/user-profiles.mdx``: "up to 2000 properties"; ``data-type.mdx``:
#: a list or object "User Profile Property = 256KB", read as 256,000 bytes as sent;
#: ``user-profile-limits.mdx``: each update "a maximum of 1 MB").
MAX_PROFILE_PROPERTIES = 2000
MAX_PROFILE_COLLECTION_BYTES = 256_000
MAX_PROFILE_UPDATE_BYTES = 1_000_000
#: What the relay adds to each update when sending it: ``{"$token":"<token>","$ip":0,`` in
#: place of the opening brace, the token counted at up to 255 bytes.
PROFILE_SEND_OVERHEAD_BYTES = len(b'{"$token":"","$ip":0,') - 1 + 255
MAX_INSERT_ID_LENGTH = 36
#: Mixpanel rejects times before 1971-01-01 and reads ``time`` as seconds when it is below
#: 1e11, so a millisecond time before 1973-03-03T09:46:40Z would be read as a date centuries
#: ahead and refused. The earliest unambiguous millisecond time is therefore the floor.
MIN_EVENT_TIME_MS = 100_000_000_000
#: How far ahead of the tracking host's clock an event's ``time`` may be: clock skew between
#: hosts, no more. Mixpanel overwrites a ``time`` ahead of its own clock with the ingestion
#: time, which changes the deduplication key, so a re-send of such an event would count twice;
#: a row whose time is still ahead when the relay claims it waits until it is not.
MAX_CLOCK_SKEW_MS = 60_000
#: Kept for callers of the old name: the future bound is the clock-skew bound.
MAX_FUTURE_MS = MAX_CLOCK_SKEW_MS
#: PostgreSQL's JSONB text of any JSON document is at most this many times orjson's compact
#: text of it: a space after every ``:`` and ``,`` at most doubles it, and a number in exponent
#: form grows at most 61-fold (``1e+308``: 6 bytes, written out as 309 digits).
STORED_GROWTH_BOUND = 64
#: orjson writes finite floats between these magnitudes positionally, as PostgreSQL does.
_POSITIONAL_MIN = 1e-5
_POSITIONAL_MAX = 1e16
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
    if len(value) > MAX_STRING_LENGTH:  # before the cache: only short strings are kept there
        problem: str | None = (
            f"string {what} is {len(value)} characters; Mixpanel keeps at most {MAX_STRING_LENGTH}"
        )
    else:
        problem = _string_problem(value, what)
    if problem is not None:
        raise EventValidationError(problem, event=event, field=path)


@functools.lru_cache(maxsize=16384)
def _string_problem(value: str, what: str) -> str | None:
    """What is wrong with a string value or property name, or ``None``; a pure function.

    Cached: a batch of events repeats most of its strings (organization, role, enum values),
    and the PII guard's patterns are the bulk of validating an event. The message never
    contains the value.
    """
    if len(value) > MAX_STRING_LENGTH:
        return (
            f"string {what} is {len(value)} characters; Mixpanel keeps at most {MAX_STRING_LENGTH}"
        )
    if "\x00" in value:
        return f"string {what} contains a NUL character"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return f"string {what} is not valid UTF-8 (lone surrogate)"
    if size > MAX_STRING_BYTES:
        # Mixpanel cuts strings at 255 bytes: non-ASCII text can pass the character limit and
        # still arrive changed.
        return f"string {what} is {size} bytes of UTF-8; Mixpanel keeps at most {MAX_STRING_BYTES}"
    # A property name is judged like a value (it may itself be an email), and by its words.
    refusal = value_refusal(value) if what == "value" else name_refusal(value)
    if refusal is not None:
        label = "value" if what == "value" else "property name"
        return f"{label} looks like {refusal} (personal data)"
    return None


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


def _check_value(event: str, path: str, value: Any, depth: int, given: Any = None) -> None:
    """Check one value; ``given`` is the same value before pydantic's JSON form, if known."""
    if value is None:
        if isinstance(given, float) and not math.isfinite(given):
            # pydantic writes NaN and infinities in ``Any`` fields as null: refused, not changed.
            raise EventValidationError("number is NaN or infinite", event=event, field=path)
        return
    if isinstance(value, bool):
        return
    if isinstance(value, str):
        _check_string(event, path, value)
    elif isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise EventValidationError("integer does not fit in 64 bits", event=event, field=path)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise EventValidationError("number is NaN or infinite", event=event, field=path)
    elif isinstance(value, Mapping | list | tuple):
        _check_container(event, path, value, depth, given)
    else:
        raise EventValidationError(
            f"{type(value).__name__} is not a JSON value", event=event, field=path
        )


def _check_container(event: str, path: str, value: Any, depth: int, given: Any = None) -> None:
    """An object or a list: its own limits, then every member (its size was checked first)."""
    if isinstance(value, Mapping):
        _check_collection(event, path, value, depth, kind="object", unit="keys")
        givens = _twins(value, given)
        for index, (key, item) in enumerate(value.items()):
            given_key, given_item = givens[index] if givens else (key, None)
            if given_key != key:  # pydantic replaced a lone surrogate in this key
                where = f"{path}[key {index}]"
                _check_string(event, where, _text(given_key), what="name")
            _check_value(event, _check_key(event, path, index, key), item, depth + 1, given_item)
    else:
        _check_collection(event, path, value, depth, kind="list", unit="elements")
        twins = list(given) if isinstance(given, list | tuple) and len(given) == len(value) else []
        for i, item in enumerate(value):
            _check_list_item(event, f"{path}[{i}]", item)
            _check_value(event, f"{path}[{i}]", item, depth + 1, twins[i] if twins else None)


def _twins(value: Mapping[Any, Any], given: Any) -> list[tuple[Any, Any]]:
    """``given``'s items beside ``value``'s, when it is the same object before pydantic."""
    if isinstance(given, Mapping) and len(given) == len(value):
        return list(given.items())
    return []


def _text(key: object) -> str:
    return key if isinstance(key, str) else str(key)


def _check_list_item(event: str, path: str, item: Any) -> None:
    """An object inside a list holds no list or object ("list of objects: no nesting")."""
    if isinstance(item, Mapping) and any(
        isinstance(member, Mapping | list | tuple) for member in item.values()
    ):
        raise EventValidationError(
            "an object inside a list holds a list or object; Mixpanel allows no nesting there",
            event=event,
            field=path,
        )


def _check_collection_property_size(
    event: str, path: str, value: Any, limit: int = MAX_COLLECTION_PROPERTY_BYTES
) -> None:
    """A list or object property is at most ``limit`` bytes as the relay sends it (its stored
    text): 8 KB on an event, 256 KB on a profile."""
    size = stored_json_size(value)
    if size > limit:
        raise EventValidationError(
            f"list or object property is {size} bytes of JSON; Mixpanel accepts at most {limit}",
            event=event,
            field=path,
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


def check_property_count(event: str, names: Collection[object]) -> None:
    """Refuse more properties than Mixpanel takes, counting the ones the relay writes itself
    (:data:`SPLICED_PROPERTIES`; a stored ``ip`` is replaced, not added)."""
    count = len(names) - ("ip" in names) + SPLICED_PROPERTIES
    if count > MAX_PROPERTIES:
        raise EventValidationError(
            f"{count} properties (with time, distinct_id, $insert_id and ip); "
            f"Mixpanel accepts fewer than {MAX_PROPERTIES + 1}",
            event=event,
        )


def envelope_bytes(
    event: str, *, distinct_id: str | None = None, insert_id: str | None = None, time_ms: int = 0
) -> int:
    """Bytes the ``/import`` encoding adds around an event's stored properties text.

    Unknown values are counted at their worst case.
    """
    name = len(orjson.dumps(event))
    ident = _DISTINCT_ID_WORST_BYTES if distinct_id is None else len(orjson.dumps(distinct_id))
    insert = _INSERT_ID_WORST_BYTES if insert_id is None else len(orjson.dumps(insert_id))
    digits = len(str(time_ms)) if time_ms else _TIME_WORST_DIGITS
    # The stored text's own braces are dropped: the envelope supplies them.
    return len(_ENVELOPE) + name + ident + insert + digits - 2


def check_properties(
    event: str,
    properties: Mapping[str, Any],
    *,
    given: Mapping[str, Any] | None = None,
    envelope: int | None = None,
) -> bytes:
    """Check serialised properties against Mixpanel's limits and the PII guard.

    ``given`` is the same properties before pydantic's JSON form (NaN and lone surrogates
    there are refused, not changed). Counts what the relay adds when sending: the properties
    it writes itself (:data:`SPLICED_PROPERTIES`) and the envelope (``envelope`` bytes, by
    default :func:`envelope_bytes` at its worst). The cost is bounded by the size: the count,
    the whole event's size and each list or object property's size are checked (in C) before
    any string is scanned. Returns the properties as JSON bytes (the exact text stored).
    """
    check_property_count(event, properties)
    extra = envelope_bytes(event) if envelope is None else envelope
    encoded, size = _sent_size(event, properties, extra, MAX_EVENT_BYTES, "event", strict=True)
    _check_collection_sizes(event, properties, MAX_COLLECTION_PROPERTY_BYTES)
    _check_stored_size(event, properties, size, MAX_EVENT_BYTES, "event", strict=True)
    givens = given if given is not None else {}
    for index, (key, value) in enumerate(properties.items()):
        _check_value(event, _check_key(event, None, index, key), value, 0, givens.get(key))
    return encoded


def check_profile_properties(label: str, properties: Mapping[str, Any]) -> None:
    """Check the properties of one profile update against the profile limits and PII guard.

    At most :data:`MAX_PROFILE_PROPERTIES`; a list or object value up to
    :data:`MAX_PROFILE_COLLECTION_BYTES`; names, strings, nesting as for events. Sizes are
    checked before any string is scanned, as for events.
    """
    if len(properties) > MAX_PROFILE_PROPERTIES:
        raise EventValidationError(
            f"{len(properties)} properties; a Mixpanel profile holds up to "
            f"{MAX_PROFILE_PROPERTIES}",
            event=label,
        )
    _check_collection_sizes(label, properties, MAX_PROFILE_COLLECTION_BYTES)
    for index, (key, value) in enumerate(properties.items()):
        _check_value(label, _check_key(label, None, index, key), value, depth=0)


def check_profile_update(label: str, update: Mapping[str, Any]) -> bytes:
    """The whole update as stored: at most 1 MB with the ``$token`` and ``$ip`` sent with it."""
    limit = MAX_PROFILE_UPDATE_BYTES
    encoded, size = _sent_size(
        label, update, PROFILE_SEND_OVERHEAD_BYTES, limit, "update", strict=False
    )
    _check_stored_size(label, update, size, limit, "update", strict=False)
    return encoded


def _check_collection_sizes(event: str, properties: Mapping[str, Any], limit: int) -> None:
    """Every list or object property's count and size (orjson, at C speed) before any string
    is scanned: the PII guard's cost per string is then bounded by the size of the event."""
    for index, (key, value) in enumerate(properties.items()):
        if isinstance(value, Mapping | list | tuple):
            kind, unit = ("object", "keys") if isinstance(value, Mapping) else ("list", "elements")
            try:
                _check_collection(event, "", value, 0, kind=kind, unit=unit)
                _check_collection_property_size(event, "", value, limit)
            except EventValidationError as exc:  # named only now: naming scans the key
                path = key if _is_safe_key(key) else f"properties[key {index}]"
                raise EventValidationError(exc.reason, event=event, field=path) from None


def _sent_size(
    event: str, value: Mapping[str, Any], extra: int, limit: int, what: str, *, strict: bool
) -> tuple[bytes, int]:
    """``value`` as JSON bytes and its size as sent, refused when, with ``extra`` bytes sent
    around it, it is over ``limit`` (``strict``: at or over)."""
    try:
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError:  # a lone surrogate, an integer over 64 bits, a foreign type
        raise unserialisable(event, value, json_only=True) from None
    size = len(encoded) + extra
    if size >= limit + (not strict):
        relation = "under" if strict else "at most"
        raise EventValidationError(
            f"{what} is {size} bytes of JSON as sent; Mixpanel accepts {relation} {limit}",
            event=event,
        )
    return encoded, size


def _check_stored_size(
    event: str, value: Mapping[str, Any], size: int, limit: int, what: str, *, strict: bool
) -> None:
    """Refuse ``value`` (``size`` bytes as sent) when PostgreSQL would store it over ``limit``.

    What is stored must be what was checked: PostgreSQL keeps JSON numbers as ``numeric``
    and renders them with all their digits, so a small event can come back (and be sent) many
    times larger. Only an event large enough to grow past the limit is measured.
    """
    if size * STORED_GROWTH_BOUND >= limit:
        growth = {key: _stored_growth(item) for key, item in value.items()}
        stored = size + sum(growth.values()) + _separator_growth(len(value), obj=True)
        if stored >= limit + (not strict):
            largest = max(growth, key=growth.__getitem__)
            index = list(value).index(largest)
            raise EventValidationError(
                f"{what} is {stored} bytes as stored (PostgreSQL writes numbers out in full); "
                f"Mixpanel accepts under {limit}",
                event=event,
                field=largest if _is_safe_key(largest) else f"properties[key {index}]",
            )


def stored_json_size(value: Any) -> int:
    """Bytes of PostgreSQL's JSONB text (``properties::text``) of the JSON value ``value``.

    That text is orjson's compact text with a space after every ``:`` and ``,`` and every number
    written positionally (``1e+308`` as 309 digits, ``1.5e-7`` as ``0.00000015``, ``-0.0`` as
    ``0.0``); strings are escaped alike. ``value`` must have passed :func:`check_properties`'
    value checks. SQLite and MariaDB store orjson's text as it is, which is never longer.
    """
    return len(orjson.dumps(value)) + _stored_growth(value)


def _separator_growth(items: int, *, obj: bool) -> int:
    if not items:
        return 0
    return 2 * items - 1 if obj else items - 1


def _stored_growth(value: Any) -> int:
    """How many bytes longer PostgreSQL's JSONB text of ``value`` is than orjson's."""
    if isinstance(value, float):
        return _number_growth(value)
    if isinstance(value, Mapping):
        return _separator_growth(len(value), obj=True) + sum(
            _stored_growth(item) for item in value.values()
        )
    if isinstance(value, list | tuple):
        return _separator_growth(len(value), obj=False) + sum(
            _stored_growth(item) for item in value
        )
    return 0


def _number_growth(value: float) -> int:
    if value == 0:
        return -1 if math.copysign(1.0, value) < 0 else 0  # numeric has no -0: "0.0"
    if _POSITIONAL_MIN <= abs(value) < _POSITIONAL_MAX:
        return 0
    text = orjson.dumps(value)
    mantissa, exp_mark, exponent = text.partition(b"e")
    if not exp_mark:
        return 0
    power = int(exponent)
    digits = mantissa.lstrip(b"-")
    sign = len(mantissa) - len(digits)
    fraction = len(digits) - 2 if b"." in digits else 0
    # numeric keeps max(0, fraction digits - exponent) digits after the point.
    scale = max(0, fraction - power)
    integer = 1 + power if power >= 0 else 1
    return sign + integer + (1 + scale if scale else 0) - len(text)


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
    """Refuse an event time before 1973-03-03 or more than :data:`MAX_CLOCK_SKEW_MS` ahead.

    A time ahead of ``now_ms`` but within the skew is accepted; the outbox row then waits until
    its time has come (Mixpanel would re-stamp a future time, changing the dedup key).
    """
    if time_ms < MIN_EVENT_TIME_MS:
        raise EventValidationError(
            "time is before 1973-03-03T09:46:40Z; Mixpanel would read it as seconds and reject it",
            event=event,
            field="time",
        )
    if time_ms > now_ms + MAX_FUTURE_MS:
        raise EventValidationError(
            f"time is more than {MAX_CLOCK_SKEW_MS // 1000} s ahead of this host's clock; "
            "Mixpanel would re-stamp it, breaking deduplication",
            event=event,
            field="time",
        )
    return time_ms


_JSON_TYPES = (str, int, float, type(None), Mapping, list, tuple)
#: How many values :func:`unserialisable` looks at before it gives up naming the culprit.
_SEARCH_BUDGET = 100_000


def unserialisable(event: str, properties: Any, *, json_only: bool = False) -> EventValidationError:
    """The refusal of properties that cannot be written as JSON, naming the first culprit.

    A lone surrogate (in a key or a value), bytes that are not UTF-8, an integer over 64 bits,
    a number that is NaN or infinite, a type JSON does not have, or nesting deeper than
    Mixpanel's limit; with ``json_only`` any type but JSON's own (else pydantic's Python form,
    whose dates and enums it writes itself, is searched). Breadth-first and bounded: a hostile
    structure costs at most ``_SEARCH_BUDGET`` steps, then the refusal names no field.
    """
    queue: list[tuple[str | None, Any, int]] = [(None, properties, -1)]
    for steps, (path, value, depth) in enumerate(queue):
        if steps >= _SEARCH_BUDGET:
            break
        problem = _json_problem(value)
        if problem is None and json_only and not isinstance(value, _JSON_TYPES):
            problem = f"{type(value).__name__} is not a JSON value"
        if problem is not None:
            return EventValidationError(problem, event=event, field=path)
        if isinstance(value, Mapping | list | tuple):
            if depth >= MAX_NESTING_DEPTH:
                return EventValidationError(
                    f"lists and objects nest deeper than {MAX_NESTING_DEPTH} levels",
                    event=event,
                    field=path,
                )
            items = value.items() if isinstance(value, Mapping) else enumerate(value)
            for index, (key, item) in enumerate(items):
                if isinstance(value, Mapping):
                    bad_key = (
                        "object keys must be strings"
                        if not isinstance(key, str)
                        else (_json_problem(key) or "").replace("string value", "property name")
                    )
                    if bad_key:
                        where = f"{path or 'properties'}[key {index}]"
                        return EventValidationError(bad_key, event=event, field=where)
                    child = key if path is None else f"{path}.{key}"
                else:
                    child = f"{path or 'properties'}[{key}]"
                queue.append((child, item, depth + 1))
    return EventValidationError("properties cannot be written as JSON", event=event)


def _json_problem(value: Any) -> str | None:
    """Why one scalar cannot be written as JSON text, or ``None``."""
    problem: str | None = None
    if isinstance(value, bytes | bytearray):
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            problem = "bytes that are not UTF-8"
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            problem = "string value is not valid UTF-8 (lone surrogate)"
    elif isinstance(value, int) and not isinstance(value, bool):
        if not -_INT64 <= value < _INT64:
            problem = "integer does not fit in 64 bits"
    elif isinstance(value, float) and not math.isfinite(value):
        problem = "number is NaN or infinite"
    return problem
