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

``independent=True`` is the one exception to "the caller's transaction": the event is written on
a second connection of the caller's engine, in a short transaction of its own that commits
before ``track()`` returns, so it stays when the caller's transaction rolls back. It is meant for
failure events (``.error``), which report the very failure that rolls the business work back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

import structlog
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from relay._errors import RelayError, StoreError
from relay._event.location import Location
from relay._event.properties import MixpanelSuperEventPropertiesSchema
from relay._event.registry import loggable_event_name
from relay._store import pending_row, write_event
from relay._tracking import config
from relay._tracking.guard import FireAndForget, where_raised
from relay._tracking.observers import notify_independent, notify_tracked
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
    independent: bool = False,
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

    ``independent=True`` writes the event on another connection of ``session``'s engine, in a
    transaction of its own committed before ``track()`` returns: the event is kept whatever
    becomes of the caller's transaction. For failure events (``.error``) tracked while the
    business transaction is about to roll back; never for anything else, which would lose the
    outbox's guarantee (no event without the business change, none lost with it). It costs a
    connection from the pool (and a commit) per call; an engine whose pool hands out one shared
    connection (``StaticPool``, ``SingletonThreadPool``: SQLite in memory) is refused, and so is
    SQLite inside an open transaction of the caller (SQLite has one writer at a time: the write
    would wait for the very transaction that waits for it).

    Returns the ``$insert_id`` written, or ``None`` when tracking failed and was logged.
    In strict mode a failure raises ``EventContractError`` (bad event) or ``StoreError``.
    """
    strict = config.is_strict(strict)
    with FireAndForget(
        lambda exc: report_failure(event, exc), strict=strict, report_raised=True
    ) as guard:
        prepared = prepare_event(
            event=event,
            distinct_id=distinct_id,
            properties=properties,
            occurred_at=occurred_at,
            insert_id=insert_id,
            location=location,
        )
        if independent:
            with independent_connection(session) as conn:
                _write(conn, prepared)
            notify_independent(conn.engine, [prepared.insert_id])
        else:
            _write(session, prepared)
    if guard.failed:  # fire-and-forget: no failure may reach the business code
        return None
    notify_tracked(prepared.event)
    return prepared.insert_id


def _engine_of(session: Session | Connection) -> Engine:
    bind = session.get_bind() if isinstance(session, Session) else session
    return bind.engine if isinstance(bind, Connection) else bind


@contextlib.contextmanager
def independent_connection(session: Session | Connection) -> Iterator[Connection]:
    """A second connection of ``session``'s engine, in a transaction committed on exit.

    Raises ``StoreError`` before connecting when the engine's pool would hand out the caller's
    own connection (the write would then join, and commit, the caller's transaction).
    """
    engine = _engine_of(session)
    if isinstance(engine.pool, StaticPool | SingletonThreadPool):
        raise StoreError(
            "independent=True needs a second connection to the database, and this engine's "
            f"pool ({type(engine.pool).__name__}) shares the caller's own"
        )
    if engine.dialect.name == "sqlite" and _in_sqlite_transaction(session):
        raise sqlite_refusal()
    with engine.begin() as conn:
        yield conn


def sqlite_refusal() -> StoreError:
    """Why an independent write cannot happen on SQLite inside the caller's transaction."""
    return StoreError(
        "independent=True cannot write on SQLite while the caller's transaction is open: it "
        "holds (or may take) the database's one write lock; track the failure after the rollback"
    )


def _in_sqlite_transaction(session: Session | Connection) -> bool:
    if isinstance(session, Session):
        if not session.in_transaction():
            return False
        conn = session.connection()
    else:
        conn = session
    driver = conn.connection.driver_connection
    return bool(getattr(driver, "in_transaction", False))


def _write(session: Session | Connection, prepared: PreparedEvent) -> None:
    values = pending_row(
        insert_id=prepared.insert_id,
        event=prepared.event,
        distinct_id=prepared.distinct_id,
        time_ms=prepared.time_ms,
        properties_json=prepared.properties_json,
        now=dt.datetime.now(dt.UTC),
        destination=prepared.destination,
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
    logger.error(
        "mixpanel_event_tracking_failed",
        event_name=loggable_event_name(event),
        error_type=type(exc).__name__,
        at=where_raised(exc),
    )
