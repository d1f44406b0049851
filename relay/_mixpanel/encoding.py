"""Encoding of outbox rows for Mixpanel's ``/import``: one event's bytes, and batches of them.

Events are encoded by splicing bytes: the stored properties text is never parsed or re-encoded,
and ``time`` is the stored value, so every re-send carries the same deduplication key
(event, distinct_id, time, ``$insert_id``).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from relay._errors import EventValidationError
from relay._tables import OutboxEvent

#: Keys the client writes itself; a stored copy of one would compete with the outbox columns
#: (or, for ``ip``, turn Mixpanel's GeoIP lookup back on).
_SPLICED_KEYS = ("time", "distinct_id", "$insert_id", "ip")
#: Outside JSON strings, JSON allows only these four whitespace bytes.
_JSON_WHITESPACE = " \t\r\n"
#: ``"ip":"0"`` tells /import to skip GeoIP: without ``ip`` it geolocates the request's address,
#: which for a relay is its data centre. Explicit ``$city``/``$region``/``mp_country_code``
#: stored by ``track()`` pass through untouched.
_EVENT_WITH_MEMBERS = (
    b'{"event":%b,"properties":{"time":%d,"distinct_id":%b,"$insert_id":%b,"ip":"0",%b}}'
)
_EVENT_WITHOUT_MEMBERS = (
    b'{"event":%b,"properties":{"time":%d,"distinct_id":%b,"$insert_id":%b,"ip":"0"%b}}'
)
EMPTY_BATCH_BYTES = len(b"[]")


def encode_event(event: OutboxEvent) -> bytes:
    """One ``/import`` event object as compact JSON bytes.

    ``time``, ``distinct_id`` and ``$insert_id`` come from the outbox columns and are spliced in
    front of the stored properties, whose text is copied unchanged. Raises
    ``EventValidationError`` if the stored properties are not a JSON object, and ``ValueError`` or
    ``TypeError`` for text that cannot be encoded as UTF-8 (lone surrogates).
    """
    members = _stored_members(event)
    template = _EVENT_WITH_MEMBERS if members else _EVENT_WITHOUT_MEMBERS
    return template % (
        orjson.dumps(event.event),
        event.time_ms,
        orjson.dumps(event.distinct_id),
        orjson.dumps(event.insert_id),
        members,
    )


def _stored_members(event: OutboxEvent) -> bytes:
    """The stored object's members (the text between its braces), ``b""`` if it has none."""
    text = event.properties_json.strip(_JSON_WHITESPACE)
    if len(text) < 2 or text[0] != "{" or text[-1] != "}":
        raise EventValidationError(
            "stored properties are not a JSON object", event=event.event, field="properties"
        )
    # Searching the str is several times faster than searching its UTF-8 bytes in CPython.
    if '"time"' in text or '"distinct_id"' in text or '"$insert_id"' in text or '"ip"' in text:
        # Rare slow path (the marker may just be a value): drop stored copies of the spliced
        # keys so a duplicate key can never override the dedup key taken from the columns.
        return _members_without_spliced_keys(text.encode(), event)
    return text[1:-1].strip(_JSON_WHITESPACE).encode()


def _members_without_spliced_keys(raw: bytes, event: OutboxEvent) -> bytes:
    try:
        properties = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EventValidationError(
            "stored properties are not valid JSON", event=event.event, field="properties"
        ) from exc
    if not isinstance(properties, dict):
        raise EventValidationError(
            "stored properties are not a JSON object", event=event.event, field="properties"
        )
    for key in _SPLICED_KEYS:
        properties.pop(key, None)
    return orjson.dumps(properties)[1:-1]


def plan_batches(encoded: Sequence[bytes], *, max_events: int, max_bytes: int) -> list[range]:
    """Split encoded events into consecutive batches by count and by JSON-array body size.

    A batch's size is that of ``b"[" + b",".join(batch) + b"]"``. An event too large for any
    batch on its own is given a batch of its own; the caller must refuse it rather than send it.
    """
    if max_events < 1:
        raise ValueError("max_events must be at least 1")
    batches: list[range] = []
    start = 0
    count = 0
    size = EMPTY_BATCH_BYTES
    for index, item in enumerate(encoded):
        added = len(item) + (1 if count else 0)
        if count and (count >= max_events or size + added > max_bytes):
            batches.append(range(start, index))
            start, count, size = index, 0, EMPTY_BATCH_BYTES
            added = len(item)
        count += 1
        size += added
    if count:
        batches.append(range(start, len(encoded)))
    return batches


class EncodedBatch:
    """Events of one request, with their encodings, in the same order."""

    __slots__ = ("encoded", "events")

    def __init__(self, events: list[OutboxEvent], encoded: list[bytes]) -> None:
        self.events = events
        self.encoded = encoded

    def halves(self) -> tuple[EncodedBatch, EncodedBatch]:
        middle = len(self.events) // 2
        return (
            EncodedBatch(self.events[:middle], self.encoded[:middle]),
            EncodedBatch(self.events[middle:], self.encoded[middle:]),
        )
