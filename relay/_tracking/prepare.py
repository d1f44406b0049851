"""Validating an event into the exact row and JSON the outbox stores, without the database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import uuid_utils
from pydantic import BaseModel, ValidationError

from relay._errors import EventValidationError
from relay._event.limits import (
    MAX_INSERT_ID_LENGTH,
    MAX_STRING_LENGTH,
    check_distinct_id,
    check_insert_id,
    check_properties,
    check_property_count,
    check_time_ms,
    envelope_bytes,
    safe_field_path,
    unserialisable,
)
from relay._event.location import Location, with_location
from relay._event.properties import MixpanelSuperEventPropertiesSchema, datetime_to_timestamp_ms
from relay._event.registry import get_event_schema
from relay._event.validation import first_error
from relay._tables import DEFAULT_DESTINATION
from relay._tracking.config import cron_execution_ms
from relay._tracking.routing import route


@dataclass(frozen=True, slots=True)
class PreparedEvent:
    """A validated event, ready to be stored: what ``track()`` writes, without the database."""

    event: str
    distinct_id: str
    insert_id: str
    time_ms: int
    properties: dict[str, Any]
    properties_json: bytes
    #: The destination the router chose (``default`` without a router).
    destination: str = DEFAULT_DESTINATION


def new_insert_id() -> str:
    """A fresh ``$insert_id``: a time-ordered UUID (version 7, RFC 9562), 36 characters.

    Time-ordered rather than random (``uuid4``): each new entry of the outbox's unique
    ``insert_id`` index lands at its right edge, on a page that is already in memory, instead of
    on a random leaf of an index that grows with every row kept for replay: the drain keeps
    more of its rate as the table grows (bench/backlog_scale.py ``--random-insert-ids`` and
    bench/drain_throughput.py ``pg1-uuid4`` compare the two; figures in BENCHMARKS.md). The 48-bit
    millisecond timestamp it carries is the event's creation time, which Mixpanel receives
    anyway; the other 74 bits are random and a per-process counter.
    """
    return str(uuid_utils.uuid7())


def _sendable(value: object, max_length: int) -> str | None:
    """``value`` when it is a string short enough to be sent unchanged, else ``None``."""
    return value if isinstance(value, str) and len(value) <= max_length else None


def prepare_event(
    *,
    event: str,
    distinct_id: str,
    properties: MixpanelSuperEventPropertiesSchema | Mapping[str, Any],
    occurred_at: dt.datetime | None = None,
    insert_id: str | None = None,
    now: dt.datetime | None = None,
    location: Location | None = None,
) -> PreparedEvent:
    """Validate an event against its registered schema and Mixpanel's limits.

    Pure apart from reading the clock when ``now`` is not given. Raises an
    ``EventContractError`` subclass that names the event and the field, never a value.
    ``location`` is added as ``$city``, ``$region`` and ``mp_country_code``; ``ip`` and
    ``$ip`` properties are refused. The registered router (:mod:`relay._tracking.routing`)
    picks the destination; its refusal is an ``EventContractError`` too.
    """
    now = now or dt.datetime.now(dt.UTC)
    schema = get_event_schema(event)
    model = _validated(event, schema, properties)
    cron_ms = cron_execution_ms()
    if cron_ms is not None and not model.is_cron_job:
        model = model.model_copy(update={"is_cron_job": True, "cron_execution_timestamp": cron_ms})
    if occurred_at is not None and occurred_at.tzinfo is None:
        raise EventValidationError("occurred_at must be timezone-aware", event=event, field="time")
    now_ms = datetime_to_timestamp_ms(now)
    time_ms = check_time_ms(
        event,
        now_ms if occurred_at is None else datetime_to_timestamp_ms(occurred_at),
        now_ms=now_ms,
    )
    # The values as given, beside their JSON form: pydantic's JSON form turns NaN and
    # infinities in ``Any`` fields into null and lone surrogates in keys into U+FFFD, which
    # the checks must see to refuse.
    given = model.model_dump(mode="python", by_alias=True)
    try:
        as_json = model.model_dump(mode="json", by_alias=True)
    except (ValueError, UnicodeError):  # too deep for pydantic, or bytes that are not UTF-8
        raise unserialisable(event, given) from None
    dumped = with_location(event, as_json, location)
    # Sizes before any scan (the ids' checks scan them): the envelope counts the ids as given
    # where they can be sent as they are, else at their worst.
    envelope = envelope_bytes(
        event,
        distinct_id=_sendable(distinct_id, MAX_STRING_LENGTH),
        insert_id=_sendable(insert_id, MAX_INSERT_ID_LENGTH),
        time_ms=time_ms,
    )
    properties_json = check_properties(event, dumped, given=given, envelope=envelope)
    checked_id = check_distinct_id(event, distinct_id)
    checked_insert_id = check_insert_id(
        event, insert_id if insert_id is not None else new_insert_id()
    )
    # Last: the router sees the event exactly as it will be stored.
    destination = route("event", event=event, distinct_id=checked_id, properties=dumped)
    return PreparedEvent(
        event=event,
        distinct_id=checked_id,
        insert_id=checked_insert_id,
        time_ms=time_ms,
        properties=dumped,
        properties_json=properties_json,
        destination=destination,
    )


def _validated(
    event: str,
    schema: type[MixpanelSuperEventPropertiesSchema],
    properties: MixpanelSuperEventPropertiesSchema | Mapping[str, Any],
) -> MixpanelSuperEventPropertiesSchema:
    if isinstance(properties, BaseModel):
        if type(properties) is not schema:
            raise EventValidationError(
                f"properties are a {type(properties).__qualname__}; "
                f"this event expects {schema.__qualname__}",
                event=event,
            )
        return properties
    if not isinstance(properties, Mapping):
        raise EventValidationError(
            f"properties must be a {schema.__qualname__} or a mapping, "
            f"not {type(properties).__name__}",
            event=event,
        )
    cron_ms = cron_execution_ms()
    if cron_ms is not None and not properties.get("is_cron_job"):
        properties = {**properties, "is_cron_job": True, "cron_execution_timestamp": cron_ms}
    # Counted before pydantic: 10,000 unknown properties made 10,000 errors before the refusal.
    check_property_count(event, properties)
    try:
        return schema.model_validate(properties)
    except ValidationError as exc:
        # Pydantic's own message may quote the input; ours names the field and the error type.
        loc, text = first_error(exc)
        field = safe_field_path(loc, properties)
        raise EventValidationError(text, event=event, field=field) from None
