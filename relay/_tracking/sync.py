"""``track()``: validate an event and write it to the outbox inside the caller's transaction.

The caller owns the transaction: ``track()`` never commits, begins or rolls it back, and takes
no SAVEPOINT (see :mod:`relay._store.outbox` for why, and how each foreseeable failure is kept
from touching the caller's transaction: validation first, a duplicate ``$insert_id`` skipped by
the INSERT itself, the tables checked once per connection). Committing the caller's transaction
commits the event; rolling it back leaves no event.

Tracking is fire-and-forget, as the seed demands: by default a failure is logged (event name
and ids, never property values) and ``track()`` returns ``None``. In strict mode it raises the
relay error instead; strict mode is set per call, per block (``strict_tracking()``), or for the
process from ``RelaySettings.strict_tracking`` (``configure_tracking``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import structlog
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from relay._errors import RelayError
from relay._event.location import Location
from relay._event.properties import MixpanelSuperEventPropertiesSchema
from relay._event.registry import loggable_event_name
from relay._store import pending_row, write_event
from relay._tracking import config
from relay._tracking.observers import notify_tracked
from relay._tracking.prepare import PreparedEvent, prepare_event

logger = structlog.get_logger("relay.tracking")


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
    strict = config.is_strict(strict)
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
    except Exception as exc:  # fire-and-forget: no failure may reach the business code
        report_failure(event, exc)
        if strict:
            raise
        return None
    notify_tracked(prepared.event)
    return prepared.insert_id


def _write(session: Session | Connection, prepared: PreparedEvent) -> None:
    values = pending_row(
        insert_id=prepared.insert_id,
        event=prepared.event,
        distinct_id=prepared.distinct_id,
        time_ms=prepared.time_ms,
        properties_json=prepared.properties_json,
        now=dt.datetime.now(dt.UTC),
    )
    write_event(session, values=values)


def report_failure(event: object, exc: BaseException) -> None:
    """Log a tracking failure: the event's name and the error, never property values.

    Relay's own errors name the field and say what is wrong without values; a foreign
    exception's message may quote property values, so only its type and place are logged.
    """
    if isinstance(exc, RelayError):
        logger.error(
            "mixpanel_event_tracking_failed",
            event_name=loggable_event_name(event),
            error_type=type(exc).__name__,
            field=getattr(exc, "field", None),
            reason=str(exc),
        )
        return
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    logger.error(
        "mixpanel_event_tracking_failed",
        event_name=loggable_event_name(event),
        error_type=type(exc).__name__,
        at=f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else None,
    )
