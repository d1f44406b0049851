"""Choosing outbox rows for operators: :class:`EventFilter`, its WHERE clause, the reads over it.

An :class:`EventFilter` is plain data, checked when it is built (known states, aware datetimes,
non-empty ranges); :func:`where` turns it into the one SQLAlchemy WHERE clause that every admin
operation (replay, requeue, discard, export) selects by. The functions below run one statement
each on a connection whose transaction the caller owns; none of them writes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from relay._errors import FilterError
from relay._event.properties import datetime_to_timestamp_ms, timestamp_ms_to_datetime
from relay._store._base import state_is, translate_errors
from relay._store.claims import claimed_columns, lease_is_live
from relay._tables import DEFAULT_DESTINATION, OutboxEvent, OutboxState, RowKind, outbox

_MAX_ID = 2**63 - 1


def _aware(name: str, value: dt.datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise FilterError(
            f"{name} must be timezone-aware (naive datetimes are refused)", field=name
        )


def _range(low_name: str, low: Any, high_name: str, high: Any) -> None:
    if low is not None and high is not None and low >= high:
        raise FilterError(
            f"empty range: {low_name} ({low}) is not before {high_name} ({high})", field=low_name
        )


def to_state(value: OutboxState | str) -> OutboxState:
    """``value`` as an :class:`OutboxState`; :class:`FilterError` naming it if there is none."""
    try:
        return OutboxState(value)
    except ValueError:
        known = ", ".join(s.value for s in OutboxState)
        raise FilterError(
            f"unknown state {value!r}: expected one of {known}", field="states"
        ) from None


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which outbox rows an operation applies to: every given field must match (AND).

    Within one field any listed value matches (OR). Ranges are half-open: ``*_after`` is
    inclusive, ``*_before`` exclusive. ``event_time_*`` bound the event's own ``time``;
    ``created_*`` when the row was written. ``errors`` match ``last_error`` exactly (a dead
    letter's reason as listed), ``error_contains`` as a substring. ``destinations``: the rows
    going to those destinations (Mixpanel projects), ``not_destinations`` the rows going
    elsewhere. ``organizations``: the rows of those organizations (see
    :func:`organization_is`). Building a filter refuses
    unknown states, naive datetimes and empty ranges with :class:`FilterError`; whether event
    names exist needs the database and is checked by ``relay.admin.check_filter``.
    """

    events: tuple[str, ...] = ()
    event_time_after: dt.datetime | None = None
    event_time_before: dt.datetime | None = None
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None
    distinct_ids: tuple[str, ...] = ()
    states: tuple[OutboxState, ...] = ()
    ids: tuple[int, ...] = ()
    insert_ids: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    error_contains: str | None = None
    destinations: tuple[str, ...] = ()
    organizations: tuple[str, ...] = ()
    not_destinations: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Accept any iterable (a list from a caller, a tuple from click) and store tuples.
        for name in (
            "events",
            "distinct_ids",
            "ids",
            "insert_ids",
            "errors",
            "destinations",
            "organizations",
            "not_destinations",
        ):
            object.__setattr__(self, name, tuple(dict.fromkeys(getattr(self, name))))
        object.__setattr__(self, "states", tuple(dict.fromkeys(to_state(s) for s in self.states)))
        for name in ("event_time_after", "event_time_before", "created_after", "created_before"):
            _aware(name, getattr(self, name))
        _range(
            "event_time_after", self.event_time_after, "event_time_before", self.event_time_before
        )
        _range("created_after", self.created_after, "created_before", self.created_before)
        if any(not 0 <= i <= _MAX_ID for i in self.ids):
            # A BIGINT holds 63 bits; a larger bind parameter fails inside the driver.
            raise FilterError(f"ids must be between 0 and {_MAX_ID}", field="ids")
        if self.error_contains == "":
            raise FilterError("error_contains must not be empty", field="error_contains")

    def is_empty(self) -> bool:
        """Whether the filter selects every row."""
        return all(getattr(self, f.name) in ((), None) for f in fields(self))

    def with_states(self, states: Iterable[OutboxState]) -> EventFilter:
        """A copy restricted to ``states``; refused if the filter already asks for other states."""
        wanted = tuple(states)
        if self.states and not set(self.states) <= set(wanted):
            other = ", ".join(s.value for s in self.states if s not in wanted)
            raise FilterError(
                f"state {other} is not selectable here (only {', '.join(wanted)})", field="states"
            )
        return dataclasses.replace(self, states=self.states or wanted)

    def to_json(self) -> dict[str, Any]:
        """The non-empty fields as JSON-ready values (datetimes in ISO 8601), for the audit."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value in ((), None):
                continue
            if isinstance(value, dt.datetime):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = [v.value if isinstance(v, OutboxState) else v for v in value]
            out[f.name] = value
        return out


def where(f: EventFilter) -> sa.ColumnElement[bool]:
    """The filter as one WHERE clause on ``relay_outbox`` (``true`` for an empty filter).

    States are inlined as literals (see :func:`relay._store._base.state_is`) so PostgreSQL can
    pick the state-leading indexes.
    """
    c = outbox.c
    clauses: list[sa.ColumnElement[bool]] = []
    if f.events:
        clauses.append(c.event.in_(f.events))
    if f.event_time_after is not None:
        clauses.append(c.time_ms >= datetime_to_timestamp_ms(f.event_time_after))
    if f.event_time_before is not None:
        clauses.append(c.time_ms < datetime_to_timestamp_ms(f.event_time_before))
    if f.created_after is not None:
        clauses.append(c.created_at >= f.created_after)
    if f.created_before is not None:
        clauses.append(c.created_at < f.created_before)
    if f.distinct_ids:
        clauses.append(c.distinct_id.in_(f.distinct_ids))
    if f.states:
        clauses.append(sa.or_(*(state_is(s) for s in f.states)))
    if f.ids:
        clauses.append(c.id.in_(f.ids))
    if f.insert_ids:
        clauses.append(c.insert_id.in_(f.insert_ids))
    if f.errors:
        clauses.append(c.last_error.in_(f.errors))
    if f.error_contains is not None:
        clauses.append(c.last_error.contains(f.error_contains, autoescape=True))
    return sa.and_(sa.true(), *clauses, *_destination_clauses(f))


def _destination_clauses(f: EventFilter) -> list[sa.ColumnElement[bool]]:
    clauses: list[sa.ColumnElement[bool]] = []
    if f.destinations:
        clauses.append(outbox.c.destination.in_(f.destinations))
    if f.not_destinations:
        clauses.append(outbox.c.destination.not_in(f.not_destinations))
    if f.organizations:
        clauses.append(organization_is(f.organizations))
    return clauses


#: The property (and group key) naming an organization (relay._tracking.routing's too).
ORGANIZATION_KEY = "organization_id"


def organization_is(organizations: Collection[str]) -> sa.ColumnElement[bool]:
    """The rows of ``organizations``, as :class:`relay.Route` gives a router the organization.

    An event: its ``organization_id`` property. A group profile update: its group id, when its
    group key is ``organization_id``. A user profile update: the ``organization_id`` its
    ``$set`` or ``$set_once`` sets. JSON paths, read on PostgreSQL, MariaDB and SQLite alike;
    no index serves them, so pair them with a state (the pending and dead rows are few).
    """
    p = outbox.c.properties
    orgs = list(organizations)
    kind = outbox.c.kind
    return sa.or_(
        sa.and_(kind == RowKind.EVENT.value, p[ORGANIZATION_KEY].as_string().in_(orgs)),
        sa.and_(
            kind == RowKind.GROUP.value,
            p["$group_key"].as_string() == ORGANIZATION_KEY,
            outbox.c.distinct_id.in_(orgs),
        ),
        sa.and_(
            kind == RowKind.USER.value,
            sa.or_(
                p[("$set", ORGANIZATION_KEY)].as_string().in_(orgs),
                p[("$set_once", ORGANIZATION_KEY)].as_string().in_(orgs),
            ),
        ),
    )


def leased(now: dt.datetime) -> sa.ColumnElement[bool]:
    """Rows a relay holds right now: pending, with a lease token, the lease not yet expired."""
    return sa.and_(state_is(OutboxState.PENDING), lease_is_live(now))


def latest_updates(keys: Collection[str] | None = None) -> sa.Subquery:
    """``(profile_key, last)``: the highest outbox id of each profile's updates, any state.

    A profile update with a lower id than its profile's ``last`` is *superseded*: re-sending it
    would put the profile back in time (Mixpanel deduplicates re-sent events by ``$insert_id``,
    but applies every profile update it receives, in the order received). ``keys`` narrows it
    to those profiles. One grouped read, not a lookup per row: PostgreSQL and SQLite have no index
    of ``profile_key`` over finished rows, and a correlated lookup per update scanned the
    table once per update.
    """
    latest = outbox.alias("latest")
    clauses = [latest.c.profile_key.is_not(None)]
    if keys is not None:
        clauses.append(latest.c.profile_key.in_(keys))
    return (
        sa.select(latest.c.profile_key, sa.func.max(latest.c.id).label("last"))
        .where(*clauses)
        .group_by(latest.c.profile_key)
        .subquery("latest_updates")
    )


# --- reads ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KindCounts:
    """Rows matching a filter: ``events``, ``profile_updates``, and how many of the latter a
    later update of the same profile ``superseded`` (a replay or requeue skips those)."""

    events: int
    profile_updates: int
    superseded: int


@translate_errors
def kind_counts(conn: Connection, f: EventFilter) -> KindCounts:
    """Count the rows matching ``f`` by what they carry, and the superseded profile updates.

    Lock: none (a plain read). Guard: none needed, nothing is written.
    """
    is_event = outbox.c.kind == RowKind.EVENT.value
    events, profiles = conn.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(sa.case((is_event, 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((is_event, 0), else_=1)), 0),
        ).where(where(f))
    ).one()
    stale = 0
    if profiles:
        latest = latest_updates()
        stale = conn.execute(
            sa.select(sa.func.count())
            .select_from(outbox.join(latest, latest.c.profile_key == outbox.c.profile_key))
            .where(where(f), outbox.c.id < latest.c.last)
        ).scalar_one()
    return KindCounts(int(events), int(profiles), int(stale))


@translate_errors
def events_present(conn: Connection, names: Collection[str]) -> set[str]:
    """Which of ``names`` occur as an event name in the outbox.

    Lock: none (a plain read). Guard: none needed. No index leads with ``event``: this scans
    the table until each name is found, so call it only for names the registry does not know
    (in practice a typo, which is the case worth a full answer).
    """
    if not names:
        return set()
    present = sa.union_all(
        *(
            sa.select(sa.literal(name, sa.String()).label("event")).where(
                sa.exists().where(outbox.c.event == name)
            )
            for name in names
        )
    )
    return set(conn.execute(present).scalars())


@dataclass(frozen=True, slots=True)
class BreakdownRow:
    """Rows matching a filter, for one (event, state); ``leased`` of them held by a relay."""

    event: str
    state: OutboxState
    count: int
    leased: int

    def to_json(self) -> dict[str, Any]:
        """JSON-ready values, as ``relay ... --json`` prints them."""
        return {
            "event": self.event,
            "state": self.state.value,
            "count": self.count,
            "leased": self.leased,
        }


@translate_errors
def breakdown(conn: Connection, f: EventFilter, *, now: dt.datetime) -> list[BreakdownRow]:
    """Count the rows matching ``f`` per (event, state), and those leased by a relay at ``now``.

    Lock: none (a plain read). Guard: none needed, nothing is written.
    """
    held = sa.func.coalesce(sa.func.sum(sa.case((leased(now), 1), else_=0)), 0)
    rows = conn.execute(
        sa.select(outbox.c.event, outbox.c.state, sa.func.count(), held)
        .where(where(f))
        .group_by(outbox.c.event, outbox.c.state)
        .order_by(outbox.c.event, outbox.c.state)
    ).all()
    return [BreakdownRow(e, OutboxState(s), int(n), int(h)) for e, s, n, h in rows]


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One outbox row in full: ``event`` as the relay would send it, plus its bookkeeping."""

    event: OutboxEvent
    state: OutboxState
    next_attempt_at: dt.datetime
    lease_token: str | None
    lease_expires_at: dt.datetime | None
    last_error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None
    destination: str = DEFAULT_DESTINATION

    def to_json(self) -> dict[str, Any]:
        """JSON-ready values (instants in ISO 8601; ``time`` is the event's ``time_ms``)."""
        e = self.event
        return {
            "id": e.id,
            "insert_id": e.insert_id,
            "event": e.event,
            "distinct_id": e.distinct_id,
            "time_ms": e.time_ms,
            "time": timestamp_ms_to_datetime(e.time_ms).isoformat(),
            "state": self.state.value,
            "attempts": e.attempts,
            "next_attempt_at": _iso(self.next_attempt_at),
            "lease_token": self.lease_token,
            "lease_expires_at": _iso(self.lease_expires_at),
            "last_error": self.last_error,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "finished_at": _iso(self.finished_at),
            "destination": self.destination,
        }


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


_BOOKKEEPING = (
    outbox.c.state,
    outbox.c.next_attempt_at,
    outbox.c.lease_token,
    outbox.c.lease_expires_at,
    outbox.c.last_error,
    outbox.c.created_at,
    outbox.c.updated_at,
    outbox.c.finished_at,
    outbox.c.destination,
)


def _stored_rows(conn: Connection, statement: sa.Select[Any]) -> list[StoredRow]:
    sent = len(claimed_columns(conn))
    return [
        StoredRow(OutboxEvent(*row[:sent]), OutboxState(row[sent]), *row[sent + 1 :])
        for row in conn.execute(statement).all()
    ]


def _select_stored(conn: Connection) -> sa.Select[Any]:
    return sa.select(*claimed_columns(conn), *_BOOKKEEPING)


@translate_errors
def rows(conn: Connection, f: EventFilter, *, limit: int) -> list[StoredRow]:
    """The first ``limit`` rows matching ``f``, in id order.

    Lock: none (a plain read). Guard: none needed, nothing is written.
    """
    return _stored_rows(
        conn, _select_stored(conn).where(where(f)).order_by(outbox.c.id).limit(limit)
    )


@translate_errors
def find(
    conn: Connection, *, row_id: int | None = None, insert_id: str | None = None
) -> list[StoredRow]:
    """The rows whose id is ``row_id`` or whose ``$insert_id`` is ``insert_id`` (at most two).

    Lock: none (a plain read). Guard: none needed. Reads by primary key or through the unique
    ``insert_id`` index.
    """
    matches: list[sa.ColumnElement[bool]] = []
    if row_id is not None:
        matches.append(outbox.c.id == row_id)
    if insert_id is not None:
        matches.append(outbox.c.insert_id == insert_id)
    if not matches:
        return []
    match = sa.or_(*matches)
    return _stored_rows(conn, _select_stored(conn).where(match).order_by(outbox.c.id))


@dataclass(frozen=True, slots=True)
class Candidate:
    """A row chosen for a batch; ``leased`` when a relay held it when it was chosen."""

    id: int
    leased: bool


@translate_errors
def next_batch(
    conn: Connection, f: EventFilter, *, after_id: int, limit: int, now: dt.datetime
) -> list[Candidate]:
    """The next ``limit`` rows matching ``f`` with ``id > after_id``, in id order (keyset).

    Each is flagged when a relay holds it at ``now``. Lock: none (a plain read); callers that
    change the rows re-check ``f`` and the lease in their UPDATE or DELETE, in the same
    transaction. Guard: ``id > after_id``, so a batch never revisits a row.
    """
    chosen = conn.execute(
        sa.select(outbox.c.id, leased(now).label("leased"))
        .where(where(f), outbox.c.id > after_id)
        .order_by(outbox.c.id)
        .limit(limit)
    ).all()
    return [Candidate(int(row_id), bool(held)) for row_id, held in chosen]


@translate_errors
def events_page(
    conn: Connection, f: EventFilter, *, after_id: int, limit: int
) -> list[OutboxEvent]:
    """The next ``limit`` events matching ``f`` with ``id > after_id`` as the relay would send them.

    ``properties_json`` is the stored JSON text, exactly what the claim hands the client.
    Lock: none (a plain read). Guard: ``id > after_id`` (keyset), so pages never overlap.
    """
    # Events only: profile updates (kind user/group) are not /import events, and an export
    # is a file of /import event objects.
    page = conn.execute(
        sa.select(*claimed_columns(conn))
        .where(where(f), outbox.c.id > after_id, outbox.c.kind == RowKind.EVENT.value)
        .order_by(outbox.c.id)
        .limit(limit)
    ).all()
    return [OutboxEvent(*row) for row in page]
