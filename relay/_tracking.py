"""``track()``: validate an event and write it to the outbox inside the caller's transaction.

The caller owns the transaction: ``track()`` never commits, begins or rolls it back. The row
is written inside a SAVEPOINT, so a failed insert (a duplicate ``$insert_id``, a database that
was never migrated) is rolled back alone and the business transaction carries on. Committing
the caller's transaction commits the event; rolling it back leaves no event.

Tracking is fire-and-forget, as the seed demands: by default a failure is logged (event name
and ids, never property values) and ``track()`` returns ``None``. In strict mode it raises the
relay error instead; strict mode is set per call, per block (``strict_tracking()``), or for the
process from ``RelaySettings.strict_tracking`` (``configure_tracking``).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
import uuid_utils
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from relay._config import NOTIFY_CHANNEL, RelaySettings
from relay._errors import EventValidationError, RelayError, StoreError
from relay._event.limits import (
    check_distinct_id,
    check_insert_id,
    check_properties,
    check_time_ms,
    safe_field_path,
)
from relay._event.location import Location, with_location
from relay._event.properties import (
    MixpanelSuperEventPropertiesSchema,
    datetime_to_timestamp_ms,
    timestamp_ms_to_datetime,
)
from relay._event.registry import get_event_schema, loggable_event_name
from relay._store.outbox import insert_and_notify_in_one_round_trip, insert_event, notify
from relay._tables import OutboxState

logger = structlog.get_logger("relay.tracking")

_strict_override: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    "relay_strict_tracking", default=None
)
_cron_execution_ms: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "relay_cron_execution_ms", default=None
)
_process_default = {"strict": False, "notify_channel": NOTIFY_CHANNEL}
#: Called with the event name after each event ``track()`` wrote (the test plugin's coverage).
_tracked_listeners: list[Callable[[str], None]] = []


@contextlib.contextmanager
def observe_tracked_events(listener: Callable[[str], None]) -> Iterator[None]:
    """Call ``listener(event)`` for every event ``track()`` writes to an outbox, in any thread.

    For test tooling (``relay.testing.plugin``'s event coverage): it runs after the write, in
    the caller's thread, and whatever it raises is swallowed, so tracking never fails for it.
    Whether the caller's transaction later commits does not matter: the event was tracked.
    """
    _tracked_listeners.append(listener)
    try:
        yield
    finally:
        _tracked_listeners.remove(listener)


def configure_tracking(settings: RelaySettings) -> None:
    """Apply the tracking settings (strict mode, NOTIFY channel) for this process.

    Call once at the application's entry point, where ``RelaySettings`` is built.
    """
    _process_default["strict"] = settings.strict_tracking
    _process_default["notify_channel"] = settings.notify_channel


def is_strict(strict: bool | None = None) -> bool:
    """Whether tracking failures raise: per call, else per block, else for the process."""
    if strict is not None:
        return strict
    override = _strict_override.get()
    if override is not None:
        return override
    return bool(_process_default["strict"])


@contextlib.contextmanager
def strict_tracking(enabled: bool = True) -> Iterator[None]:
    """Within the block, tracking failures raise (or, with ``enabled=False``, are only logged)."""
    token = _strict_override.set(enabled)
    try:
        yield
    finally:
        _strict_override.reset(token)


@contextlib.contextmanager
def cron_run(executed_at: dt.datetime | None = None) -> Iterator[int]:
    """Mark every event tracked within the block as tracked by a cron run.

    Events get ``is_cron_job=True`` and ``cron_execution_timestamp`` (ms) of ``executed_at``
    (default: now); their ``time`` stays the ``occurred_at`` the caller passes, the time of
    the original action. Yields the execution timestamp in ms.
    """
    executed_ms = datetime_to_timestamp_ms(executed_at or dt.datetime.now(dt.UTC))
    token = _cron_execution_ms.set(executed_ms)
    try:
        yield executed_ms
    finally:
        _cron_execution_ms.reset(token)


@dataclass(frozen=True, slots=True)
class PreparedEvent:
    """A validated event, ready to be stored: what ``track()`` writes, without the database."""

    event: str
    distinct_id: str
    insert_id: str
    time_ms: int
    properties: dict[str, Any]
    properties_json: bytes


def new_insert_id() -> str:
    """A fresh ``$insert_id``: a time-ordered UUID (version 7, RFC 9562), 36 characters.

    Time-ordered rather than random (``uuid4``): each new entry of the outbox's unique
    ``insert_id`` index lands at its right edge, on a page that is already in memory, instead of
    on a random leaf of an index that grows with every row kept for replay (measured with
    5,000,000 delivered rows: the drain kept 88 % of its empty-table rate with random ids, 99 %
    with ordered ones, and +20 % events/s on an empty table; see BENCHMARKS.md). The 48-bit
    millisecond timestamp it carries is the event's creation time, which Mixpanel receives
    anyway; the other 74 bits are random and a per-process counter.
    """
    return str(uuid_utils.uuid7())


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
    ``$ip`` properties are refused.
    """
    now = now or dt.datetime.now(dt.UTC)
    schema = get_event_schema(event)
    model = _validated(event, schema, properties)
    cron_ms = _cron_execution_ms.get()
    if cron_ms is not None and not model.is_cron_job:
        model = model.model_copy(update={"is_cron_job": True, "cron_execution_timestamp": cron_ms})
    if occurred_at is not None and occurred_at.tzinfo is None:
        raise EventValidationError("occurred_at must be timezone-aware", event=event, field="time")
    time_ms = check_time_ms(
        event,
        datetime_to_timestamp_ms(occurred_at or now),
        now_ms=datetime_to_timestamp_ms(now),
    )
    dumped = with_location(event, model.model_dump(mode="json", by_alias=True), location)
    return PreparedEvent(
        event=event,
        distinct_id=check_distinct_id(event, distinct_id),
        insert_id=check_insert_id(event, insert_id if insert_id is not None else new_insert_id()),
        time_ms=time_ms,
        properties=dumped,
        properties_json=check_properties(event, dumped),
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
    cron_ms = _cron_execution_ms.get()
    if cron_ms is not None and not properties.get("is_cron_job"):
        properties = {**properties, "is_cron_job": True, "cron_execution_timestamp": cron_ms}
    try:
        return schema.model_validate(properties)
    except ValidationError as exc:
        # Pydantic's own message quotes the input; ours names the fields only.
        first = exc.errors(include_url=False, include_input=False, include_context=False)[0]
        field = safe_field_path(first["loc"], properties)
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise EventValidationError(f"{first['msg']}{more}", event=event, field=field) from None


def track(
    session: Session | Connection,
    *,
    event: str,
    distinct_id: str,
    properties: MixpanelSuperEventPropertiesSchema | Mapping[str, Any],
    occurred_at: dt.datetime | None = None,
    insert_id: str | None = None,
    strict: bool | None = None,
    location: Location | None = None,
) -> str | None:
    """Validate an event and write it to the outbox in the caller's transaction.

    ``session`` is a SQLAlchemy ``Session`` or ``Connection`` the caller owns and commits.
    ``properties`` is an instance of the event's registered schema or a mapping validated into
    it. ``occurred_at`` (aware; default now) becomes the event's ``time``; ``insert_id``
    (default: a new UUID) is Mixpanel's dedup key. Both are stored, so every re-send carries
    the same key.

    ``occurred_at`` may be at most ``relay._event.limits.MAX_CLOCK_SKEW_MS`` (60 s) ahead of this
    host's clock; such a row is stored due at its time and is not sent before it (Mixpanel
    would replace a future time by its own clock, changing the dedup key). The properties
    are checked at the size the database stores them (PostgreSQL writes numbers out in
    full): an event stored at 1 MB or more is refused.

    ``location`` (a :class:`relay.Location`) says where the event happened, on purpose:
    stored as Mixpanel's ``$city``, ``$region`` and ``mp_country_code`` properties. The relay
    sends every event with ``ip`` = 0, so Mixpanel never geolocates the relay host, and an
    ``ip`` or ``$ip`` property is refused: an end user's IP address is personal data and never
    enters the outbox.

    Returns the ``$insert_id`` written, or ``None`` when tracking failed and was logged.
    In strict mode a failure raises ``EventContractError`` (bad event) or ``StoreError``.
    """
    strict = is_strict(strict)
    try:
        prepared = prepare_event(
            event=event,
            distinct_id=distinct_id,
            properties=properties,
            occurred_at=occurred_at,
            insert_id=insert_id,
            location=location,
        )
        _write(session, prepared)
    except RelayError as exc:
        logger.error(
            "mixpanel_event_tracking_failed",
            event_name=loggable_event_name(event),
            error_type=type(exc).__name__,
            field=getattr(exc, "field", None),
            reason=str(exc),
        )
        if strict:
            raise
        return None
    except Exception as exc:  # fire-and-forget: no failure may reach the business code
        # A foreign message may quote property values: log its type and place only.
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        logger.error(
            "mixpanel_event_tracking_failed",
            event_name=loggable_event_name(event),
            error_type=type(exc).__name__,
            at=f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else None,
        )
        if strict:
            raise
        return None
    if _tracked_listeners:  # only under test tooling: nothing to pay otherwise
        for listener in list(_tracked_listeners):
            with contextlib.suppress(Exception):
                listener(prepared.event)
    return prepared.insert_id


def _write(session: Session | Connection, prepared: PreparedEvent) -> None:
    now = dt.datetime.now(dt.UTC)
    # A time ahead of the clock (within the skew) waits: Mixpanel would re-stamp it.
    due = max(now, timestamp_ms_to_datetime(prepared.time_ms))
    values = {
        "insert_id": prepared.insert_id,
        "event": prepared.event,
        "distinct_id": prepared.distinct_id,
        "time_ms": prepared.time_ms,
        "properties": prepared.properties,
        "state": OutboxState.PENDING.value,
        "attempts": 0,
        "next_attempt_at": due,
        "created_at": now,
        "updated_at": now,
    }
    channel = str(_process_default["notify_channel"])
    try:
        conn = session.connection() if isinstance(session, Session) else session
        if not insert_and_notify_in_one_round_trip(
            conn, values=values, properties_json=prepared.properties_json, channel=channel
        ):
            with session.begin_nested():
                insert_event(conn, values=values)
                # NOTIFY inside the business transaction is delivered only at its commit.
                notify(conn, channel)
    except (StoreError, SQLAlchemyError) as exc:
        # The driver's message quotes the bound parameters (property values): never chain it.
        cause = exc.__cause__ if isinstance(exc, StoreError) else exc
        driver_error = getattr(cause, "orig", cause)
        sqlstate = getattr(driver_error, "sqlstate", None)
        # SQLSTATE class 23: integrity constraint violation (SQLite's errors carry none).
        duplicate = isinstance(cause, IntegrityError) or str(sqlstate or "").startswith("23")
        hint = (
            "is this $insert_id already in the outbox?"
            if duplicate
            else "is the database reachable and migrated (relay migrate)?"
        )
        raise StoreError(
            f"outbox insert failed: {type(cause).__name__}"
            + (f" (SQLSTATE {sqlstate})" if sqlstate else "")
            + f"; {hint}"
        ) from None
