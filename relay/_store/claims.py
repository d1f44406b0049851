"""The relay's claim: lease due rows under a fresh token, bounded by rows and bytes.

Also the predicates the admin commands share with it (:func:`lease_is_live`, :func:`is_due`,
:func:`stored_size`) and the columns an :class:`~relay._tables.OutboxEvent` is read from.
Run :func:`claim` in ``transaction(engine, write=True)`` and commit before sending; the fenced
acks that end a claim are in :mod:`relay._store.acks`.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from relay._store import lanes
from relay._store._base import (
    id_is_one_of,
    ids_bound,
    is_mysql,
    per_row,
    plain_rows,
    state_is,
    translate_errors,
)
from relay._store.throttle import PauseRows
from relay._tables import (
    DEFAULT_DESTINATION,
    Lane,
    OutboxEvent,
    OutboxState,
    RowKind,
    UTCDateTime,
    outbox,
)


@dataclass(frozen=True, slots=True)
class Claim:
    """Rows leased by one claim, live lane first, each lane in id order: ``token`` fences every
    ack of them (live rows first, so that they go out in the claim's first request).

    ``last_due`` is the latest ``next_attempt_at`` among the live rows the claim took (leased
    or dead-lettered; ``None`` when it took none): a following claim may resume the live lane
    there (see :func:`claim`'s ``due_from``). ``full`` says the claim stopped at its row limit,
    its byte budget or the bulk lane's cap (:func:`relay._store.lanes.bulk_cap`), so more rows
    may be due. ``too_large`` counts rows the claim found too large to ever be sent and marked
    dead instead of leasing them.
    """

    token: str
    events: list[OutboxEvent]
    last_due: dt.datetime | None = None
    full: bool = False
    too_large: int = 0


def claimed_columns(conn: Connection) -> tuple[sa.ColumnElement[Any], ...]:
    """The columns an :class:`OutboxEvent` is built from, in its field order."""
    return _claimed_columns(conn.dialect.name)


def _claimed_columns(dialect: str) -> tuple[sa.ColumnElement[Any], ...]:
    # The stored JSON text goes to the client as is: on PostgreSQL the driver would parse
    # JSONB, so the server renders it as text; elsewhere the column already is text and only
    # SQLAlchemy's JSON result processing has to be bypassed.
    if dialect == "postgresql":
        properties: sa.ColumnElement[str] = sa.cast(outbox.c.properties, sa.Text)
    else:
        properties = sa.type_coerce(outbox.c.properties, sa.Text)
    return (
        outbox.c.id,
        outbox.c.insert_id,
        outbox.c.event,
        outbox.c.distinct_id,
        outbox.c.time_ms,
        properties.label("properties_json"),
        outbox.c.attempts,
    )


#: ``OutboxEvent(*row)`` without the named tuple's ``__new__``, a Python lambda: one C call.
_new_event = functools.partial(tuple.__new__, OutboxEvent)


def _to_events(rows: Sequence[tuple[Any, ...]]) -> list[OutboxEvent]:
    """Events from claimed rows, plain tuples of :func:`claimed_columns` in field order."""
    # The rows already are the fields in order: 2,000 named tuples built in C (0.11 us a row,
    # against 0.24 us unpacked into OutboxEvent's __new__, a Python lambda).
    events: list[OutboxEvent] = list(map(_new_event, rows))
    if events and len(events[0]) != len(OutboxEvent._fields):
        raise ValueError(
            f"a claimed row has {len(events[0])} columns, not {len(OutboxEvent._fields)}"
        )
    return events


def lease_is_live(now: dt.datetime) -> sa.ColumnElement[bool]:
    """A relay holds the row at ``now``: it carries a lease token whose lease has not run out.

    The claim writes the expiry to ``lease_expires_at``. A relay older than migration 0002
    (one still running during an upgrade) wrote it to ``next_attempt_at`` instead and left
    ``lease_expires_at`` NULL; the ``coalesce`` reads such a lease too.
    """
    return sa.and_(
        outbox.c.lease_token.is_not(None),
        sa.func.coalesce(outbox.c.lease_expires_at, outbox.c.next_attempt_at) > now,
    )


def is_due(now: dt.datetime | sa.ColumnElement[dt.datetime]) -> sa.ColumnElement[bool]:
    """A pending row may be claimed at ``now``: its time has come and no live lease holds it.

    ``next_attempt_at <= now`` is the range the claim reads from ``ix_relay_outbox_pending_due``;
    the lease is checked on the row itself. (A lease written by a pre-0002 relay lies in
    ``next_attempt_at`` and so already fails the first test.)
    """
    return sa.and_(
        outbox.c.next_attempt_at <= now,
        sa.or_(outbox.c.lease_expires_at.is_(None), outbox.c.lease_expires_at <= now),
    )


def stored_size(conn: Connection) -> sa.ColumnElement[int]:
    """Bytes of a row's properties as the claim would fetch them, measured by the server.

    PostgreSQL renders JSONB as text to measure it (the text itself never leaves the server);
    SQLite and MariaDB store the text and count its bytes (SQLite's ``length`` of the text
    would count characters, hence the BLOB cast).
    """
    return _stored_size(conn.dialect.name)


def _stored_size(dialect: str) -> sa.ColumnElement[int]:
    if dialect == "postgresql":
        return sa.func.octet_length(sa.cast(outbox.c.properties, sa.Text))
    if dialect == "sqlite":
        return sa.func.length(sa.cast(sa.type_coerce(outbox.c.properties, sa.Text), sa.LargeBinary))
    return sa.func.octet_length(sa.type_coerce(outbox.c.properties, sa.Text))


def too_large_reason(size: int, row_max_bytes: int) -> str:
    """The ``last_error`` of a row dead-lettered at claim time for its size."""
    return (
        f"stored properties render to {size} bytes, over the request limit of {row_max_bytes} bytes"
    )


@dataclass(frozen=True, slots=True)
class _Pick:
    ids: list[int]
    too_large: dict[int, int]
    full: bool
    last_due: dt.datetime | None


def _pick(
    candidates: Sequence[Sequence[Any]],
    *,
    limit: int,
    max_bytes: int | None,
    row_max_bytes: int | None,
) -> _Pick:
    """The due-order prefix of ``candidates`` (id, due, size) within ``max_bytes``.

    A row over ``row_max_bytes`` is set aside to be dead-lettered and costs no budget; the
    first row that fits no request on its own never stops the claim. The first row that
    fits is always taken, so a claim with rows due is never empty.
    """
    ids: list[int] = []
    too_large: dict[int, int] = {}
    total = 0
    full = len(candidates) >= limit
    last_due: dt.datetime | None = None
    for row in candidates:
        row_id, due, size = row[0], row[1], row[2]
        if row_max_bytes is not None and size > row_max_bytes:
            too_large[row_id] = size
        else:
            if ids and max_bytes is not None and total + size > max_bytes:
                full = True
                break
            ids.append(row_id)
            total += size
        last_due = due
    return _Pick(ids=ids, too_large=too_large, full=full, last_due=last_due)


@functools.lru_cache(maxsize=64)
def _due_rows(
    dialect: str,
    measured: bool,
    lane: Lane,
    *,
    resume: bool,
    excluding: bool,
    limit_name: str = "limit",
) -> sa.Select[Any]:
    """The statement reading one lane's due candidates (id, due, size), in due order.

    Built once per shape and cached (a claim runs every drain cycle, and building this select
    cost more of the relay's CPU than running it: ``bench/drain_cycle_cost.py``); the values
    are bind parameters: ``destination``, ``now``, ``limit`` (or ``limit_name``), ``due_from``
    when ``resume`` (the claim cursor: rows due before it are skipped) and ``excluded``
    (paused event names) when ``excluding``. Candidates are locked ``FOR UPDATE SKIP LOCKED``
    except on SQLite, whose claim holds the database write lock instead.
    """
    now = sa.bindparam("now", type_=UTCDateTime())
    # PostgreSQL's driver returns timestamptz aware already: read the due time of the (up to
    # 2,000) candidates without UTCDateTime's per-row conversion, about 8 % of the
    # relay's CPU in a drain; SQLite and MariaDB return naive values and need it.
    due_at: sa.ColumnElement[dt.datetime] = (
        sa.type_coerce(outbox.c.next_attempt_at, sa.DateTime(timezone=True))
        if dialect == "postgresql"
        else outbox.c.next_attempt_at
    )
    size = _stored_size(dialect) if measured else sa.literal(0)
    # Events only: profile updates (kind user/group) are claimed per profile, in order
    # (relay._store.profiles.claim_profile_updates), and go to /engage and /groups.
    statement = (
        sa.select(outbox.c.id, due_at.label("due"), size.label("size"))
        .where(
            state_is(OutboxState.PENDING),
            outbox.c.destination == sa.bindparam("destination", type_=outbox.c.destination.type),
            outbox.c.lane == int(lane),
            is_due(now),
            outbox.c.kind == sa.literal_column(f"'{RowKind.EVENT.value}'", sa.String()),
        )
        .order_by(outbox.c.next_attempt_at, outbox.c.id)
        .limit(sa.bindparam(limit_name, type_=sa.Integer()))
    )
    if resume:
        statement = statement.where(
            outbox.c.next_attempt_at >= sa.bindparam("due_from", type_=UTCDateTime())
        )
    if excluding:
        statement = statement.where(outbox.c.event.not_in(sa.bindparam("excluded", expanding=True)))
    if dialect != "sqlite":
        statement = statement.with_for_update(skip_locked=True)
    return statement


@functools.lru_cache(maxsize=32)
def _due_rows_of_both_lanes(
    dialect: str, measured: bool, *, resume: bool, excluding: bool
) -> sa.Select[Any]:
    """Both lanes' candidates in one statement (PostgreSQL): the live lane's first ``limit``
    and the bulk lane's first ``bulk_limit``, each locked as :func:`_due_rows` locks them,
    with their lane, live first, each lane in due order. One round trip and one statement's
    overhead less per claim than reading the lanes apart."""
    live = _due_rows(dialect, measured, Lane.LIVE, resume=resume, excluding=excluding)
    bulk = _due_rows(
        dialect, measured, Lane.BULK, resume=False, excluding=excluding, limit_name="bulk_limit"
    )
    both = sa.union_all(
        sa.select(live.add_columns(outbox.c.lane).subquery("live")),
        sa.select(bulk.add_columns(outbox.c.lane).subquery("bulk")),
    ).subquery("candidates")
    return sa.select(both.c.id, both.c.due, both.c.size, both.c.lane).order_by(
        both.c.lane, both.c.due, both.c.id
    )


@translate_errors
def claim(
    conn: Connection,
    *,
    now: dt.datetime,
    limit: int,
    lease_seconds: float,
    due_from: dt.datetime | None = None,
    max_bytes: int | None = None,
    row_max_bytes: int | None = None,
    destination: str = DEFAULT_DESTINATION,
    pause_rows: PauseRows | None = None,
) -> Claim:
    """Lease up to ``limit`` due pending rows of ``destination``, live lane first, under a
    fresh token.

    Only ``destination``'s rows (``destination = :name``, the second column of
    ``ix_relay_outbox_pending_due``): one claim, and so one request, never mixes Mixpanel
    projects. Rows a pause covers are passed over (all of them while all delivery, or this
    destination, is paused: the claim is then empty). Within each lane rows go oldest due
    first; the live lane comes first and the bulk lane (replays, requeues) gets the rest of
    the claim, at least a fixed share while it has rows due and at most a cap (see
    :mod:`relay._store.lanes`).

    Sets ``lease_token`` and ``lease_expires_at = now + lease_seconds`` (an expired lease simply
    makes the row due again) and counts the attempt now, so a crash mid-send still uses one
    up. ``next_attempt_at`` is left alone: the claim touches no indexed column, so PostgreSQL
    updates each row in place on its own page (a HOT update: no new index entries, which
    were most of a claim's cost). Run it in ``transaction(engine, write=True)`` and commit
    before sending.

    Bounded by bytes as well as rows: the claim first reads the due rows' ids with their
    :func:`stored_size` (never their text), then leases the longest due-order prefix whose
    properties add up to at most ``max_bytes`` (at least one row). A row larger than
    ``row_max_bytes``, which no request could carry, is marked dead in the same transaction
    with :func:`too_large_reason` instead of being leased, so its text is never fetched and
    it never blocks the rows behind it. Locked candidates the claim does not take are
    released at commit.

    ``due_from`` (optional) skips rows due before it: the claim starts reading the index there
    instead of at its oldest entry. On PostgreSQL every finished row leaves a dead entry at the
    head of ``ix_relay_outbox_pending_due`` until VACUUM removes it, and a claim from the
    start walks all of them: during a long drain that grows to thousands of pages per claim.
    A relay passes the previous claim's :attr:`Claim.last_due` and starts from the beginning
    again often enough to pick up rows left behind (see :class:`relay._delivery.drain.ClaimCursor`).
    It applies to the live lane only.

    Lock: PostgreSQL and MySQL/MariaDB lock the candidate rows ``FOR UPDATE SKIP LOCKED``, so
    concurrent relays claim disjoint rows without waiting, and hold them to the commit; SQLite
    holds the database write lock taken by ``BEGIN IMMEDIATE``. Guard: ``state = 'pending'``
    and :func:`is_due`, read through the partial index ``ix_relay_outbox_pending_due`` (rows
    under a live lease are passed over on the heap: at most the batches in flight); the
    lease and dead-letter updates touch only rows this transaction holds.

    ``pause_rows``: ``relay_pause`` as this transaction read it already
    (:func:`relay._store.throttle.read_pause_rows`); else the claim reads the pauses itself.
    """
    token = uuid.uuid4().hex
    lease_until = now + dt.timedelta(seconds=lease_seconds)
    measured = max_bytes is not None or row_max_bytes is not None
    exclusion = lanes.claim_exclusion(conn, destination=destination, pause_rows=pause_rows)
    if exclusion.everything:
        return Claim(token=token, events=[])
    candidates = lanes.claim_candidates(
        conn,
        select_lane=functools.partial(_due_rows, conn.dialect.name, measured),
        select_both=(
            functools.partial(_due_rows_of_both_lanes, conn.dialect.name, measured)
            if conn.dialect.name == "postgresql"
            else None
        ),
        params={"destination": destination, "now": now},
        limit=limit,
        due_from=due_from,
        exclusion=exclusion,
    )
    picked = _pick(candidates.rows, limit=limit, max_bytes=max_bytes, row_max_bytes=row_max_bytes)
    # The cursor resumes the live lane only (see ClaimCursor): the last live row handled.
    last_due = candidates.last_live_due({*picked.ids, *picked.too_large})
    if picked.too_large and row_max_bytes is not None:
        _mark_too_large(conn, picked.too_large, row_max_bytes=row_max_bytes, now=now)
    events: list[OutboxEvent] = []
    if picked.ids:
        events = lease_rows(conn, picked.ids, token=token, lease_until=lease_until, now=now)
    # RETURNING has no defined order: hand events over in id (creation) order everywhere,
    # live rows first, so that they go out in the first request, not after the replay's.
    live_ids = {row[0] for row in candidates.rows[: candidates.live]}
    events.sort(key=lambda e: (e.id not in live_ids, e.id))
    return Claim(
        token=token,
        events=events,
        last_due=last_due,
        full=picked.full or candidates.more,
        too_large=len(picked.too_large),
    )


def lease_rows(
    conn: Connection, ids: list[int], *, token: str, lease_until: dt.datetime, now: dt.datetime
) -> list[OutboxEvent]:
    """Lease the locked rows ``ids`` under ``token`` and read them. Lock: held by the claim."""
    values = {"token": token, "lease_until": lease_until, "now": now, "ids": list(ids)}
    # The claimed columns have no result processor: plain rows are the same values.
    if is_mysql(conn):
        # MariaDB has no UPDATE ... RETURNING: read, then mark, under the claim's row locks.
        read, mark = _lease_statements(conn.dialect.name)
        rows = plain_rows(conn.execute(read, {"ids": values["ids"]}))
        conn.execute(mark, values)
        return _to_events(rows)
    (update,) = _lease_statements(conn.dialect.name)
    return _to_events(plain_rows(conn.execute(update, values)))


@functools.lru_cache(maxsize=8)
def _lease_statements(dialect: str) -> tuple[Any, ...]:
    """:func:`lease_rows`'s statements, built once per dialect (bind parameters ``ids``,
    ``token``, ``lease_until`` and ``now``): an ``UPDATE ... RETURNING`` of the claimed
    columns, or on MariaDB/MySQL (no ``RETURNING``) a read of them, ``attempts`` as the
    ``UPDATE`` that follows it makes it, and that ``UPDATE``."""
    lease = {
        "lease_token": sa.bindparam("token", type_=outbox.c.lease_token.type),
        "lease_expires_at": sa.bindparam("lease_until", type_=UTCDateTime()),
        "attempts": outbox.c.attempts + 1,
        "updated_at": sa.bindparam("now", type_=UTCDateTime()),
    }
    chosen = ids_bound(dialect)
    if dialect in ("mysql", "mariadb"):
        *fields, _attempts = _claimed_columns(dialect)
        leased_attempts = (outbox.c.attempts + 1).label("attempts")
        return (
            sa.select(*fields, leased_attempts).where(chosen),
            sa.update(outbox).where(chosen).values(lease),
        )
    return (sa.update(outbox).where(chosen).values(lease).returning(*_claimed_columns(dialect)),)


def _mark_too_large(
    conn: Connection, sizes: Mapping[int, int], *, row_max_bytes: int, now: dt.datetime
) -> None:
    """Dead-letter rows no request can carry. Lock: held by the claim. Guard: still pending."""
    reasons = {row_id: too_large_reason(size, row_max_bytes) for row_id, size in sizes.items()}
    conn.execute(
        sa.update(outbox)
        .where(id_is_one_of(conn, reasons), state_is(OutboxState.PENDING))
        .values(
            state=OutboxState.DEAD.value,
            finished_at=now,
            updated_at=now,
            lease_token=None,
            lease_expires_at=None,
            last_error=per_row(reasons, sa.String()),
        )
    )
