"""Reads behind ``relay stats`` and the dead-letter listing, each walking a state-leading index.

With millions of delivered rows present none of these visits a delivered row it does not
count: pending rows come from the partial index ``ix_relay_outbox_pending_due``, dead and
recently finished rows from ``ix_relay_outbox_state_finished_at`` (``state, finished_at``).
The pending gauges themselves are :func:`relay._store.maintenance.pending_gauges`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from relay._store._base import state_is, translate_errors
from relay._store.claims import is_due, lease_is_live
from relay._store.maintenance import PENDING_INDEX, PendingGauges
from relay._tables import OutboxState, outbox


def _of(destination: str | None) -> list[sa.ColumnElement[bool]]:
    """The extra predicate of a read narrowed to one destination (none for all of them)."""
    return [] if destination is None else [outbox.c.destination == destination]


def _count_where(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


@dataclass(frozen=True, slots=True)
class DeadGroup:
    """Dead rows sharing one ``reason`` (``last_error``) and one event name."""

    reason: str
    event: str
    count: int
    first_at: dt.datetime | None
    last_at: dt.datetime | None


@translate_errors
def dead_groups(
    conn: Connection, *, destination: str | None = None, latest: int | None = None
) -> list[DeadGroup]:
    """Count dead rows per (reason, event), with the first and last time each group died;
    only those going to ``destination`` when it is given.

    ``latest``: only the ``latest`` most recently dead rows (by ``finished_at``), so that the
    cost is bounded whatever the number of dead rows; ``None``: all of them.

    Lock: none (a plain read). Guard: ``state = 'dead'``, read through
    ``ix_relay_outbox_state_finished_at`` (with ``latest``, backwards from the newest: at most
    ``latest`` entries and rows).
    """
    dead = [state_is(OutboxState.DEAD), *_of(destination)]
    source: Any = outbox
    if latest is not None:
        source = (
            sa.select(outbox.c.last_error, outbox.c.event, outbox.c.finished_at)
            .where(*dead)
            .order_by(outbox.c.finished_at.desc())
            .limit(latest)
            .subquery("latest_dead")
        )
    reason = sa.func.coalesce(source.c.last_error, "")
    query = sa.select(
        reason,
        source.c.event,
        sa.func.count(),
        sa.func.min(source.c.finished_at),
        sa.func.max(source.c.finished_at),
    ).group_by(reason, source.c.event)
    if latest is None:
        query = query.where(*dead)
    found = conn.execute(query).all()
    return [DeadGroup(r, e, int(n), first, last) for r, e, n, first, last in found]


@translate_errors
def finished_since(
    conn: Connection,
    *,
    state: OutboxState,
    since: Sequence[dt.datetime],
    destination: str | None = None,
) -> list[int]:
    """How many ``state`` rows (going to ``destination``, if given) finished at or after each
    instant in ``since``, in one pass.

    Lock: none (a plain read). Guard: ``state = :state AND finished_at >= min(since)``, a range
    scan of ``ix_relay_outbox_state_finished_at`` (index-only on PostgreSQL once vacuumed).
    """
    if not since:
        return []
    counts = [
        sa.func.coalesce(sa.func.sum(sa.case((outbox.c.finished_at >= t, 1), else_=0)), 0)
        for t in since
    ]
    row = conn.execute(
        sa.select(*counts).where(
            state_is(state), outbox.c.finished_at >= min(since), *_of(destination)
        )
    ).one()
    return [int(n) for n in row]


@translate_errors
def finished_before(
    conn: Connection, *, state: OutboxState, before: dt.datetime, destination: str | None = None
) -> int:
    """How many ``state`` rows (going to ``destination``, if given) finished before ``before``:
    what a purge would delete.

    Lock: none (a plain read). Guard: ``state = :state AND finished_at < :before``, a range
    scan of ``ix_relay_outbox_state_finished_at``.
    """
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(outbox)
            .where(state_is(state), outbox.c.finished_at < before, *_of(destination))
        ).scalar_one()
    )


@translate_errors
def pending_by_event(conn: Connection, *, destination: str | None = None) -> dict[str, int]:
    """Pending rows (going to ``destination``, if given) per event name, largest first.

    Lock: none (a plain read). Guard: ``state = 'pending'``, read through the partial index
    ``ix_relay_outbox_pending_due``.
    """
    count = sa.func.count()
    found = conn.execute(
        sa.select(outbox.c.event, count)
        .where(state_is(OutboxState.PENDING), *_of(destination))
        .group_by(outbox.c.event)
        .order_by(count.desc(), outbox.c.event)
    ).all()
    return {event: int(n) for event, n in found}


@translate_errors
def pending_by_destination(conn: Connection, *, excluding: Collection[str] = ()) -> dict[str, int]:
    """Pending rows per destination, by name, leaving out the destinations in ``excluding``
    (given the configured ones: the rows no relay of these settings delivers).

    Lock: none (a plain read). Guard: ``state = 'pending'``, grouped by ``destination``: the two
    leading columns of the partial index ``ix_relay_outbox_pending_due`` (index-only on
    PostgreSQL once vacuumed; forced on MySQL/MariaDB, as for the pending gauges); no delivered
    or dead row is visited.
    """
    where = [state_is(OutboxState.PENDING)]
    if excluding:
        where.append(outbox.c.destination.not_in(list(excluding)))
    query = (
        sa.select(outbox.c.destination, sa.func.count())
        .where(*where)
        .group_by(outbox.c.destination)
        .order_by(outbox.c.destination)
    )
    for dialect in ("mysql", "mariadb"):
        # As in maintenance.pending_gauges: with pending rows a sizeable share of the table
        # MySQL/MariaDB's optimizer picks a full scan; the cost must follow the backlog.
        query = query.with_hint(outbox, f"FORCE INDEX ({PENDING_INDEX})", dialect_name=dialect)
    found = conn.execute(query).all()
    return {name: int(n) for name, n in found}


@translate_errors
def outbox_is_empty(conn: Connection) -> bool:
    """Whether the outbox holds no row at all, in any state (nothing was ever tracked here, or
    retention removed everything).

    Lock: none (a plain read of at most one row through the primary key).
    """
    return conn.execute(sa.select(outbox.c.id).limit(1)).first() is None


@translate_errors
def pending_gauges_of(conn: Connection, *, now: dt.datetime, destination: str) -> PendingGauges:
    """:func:`relay._store.maintenance.pending_gauges` for the rows going to ``destination``.

    Lock: none (a plain read). Guard: ``state = 'pending' AND destination = :name``, the two
    leading columns of ``ix_relay_outbox_pending_due``.
    """
    row = conn.execute(
        sa.select(
            sa.func.count().label("pending"),
            _count_where(is_due(now)).label("due"),
            _count_where(lease_is_live(now)).label("inflight"),
            sa.func.min(outbox.c.created_at).label("oldest"),
        ).where(state_is(OutboxState.PENDING), *_of(destination))
    ).one()
    return PendingGauges(
        pending=int(row.pending),
        due=int(row.due),
        inflight=int(row.inflight),
        oldest_created_at=row.oldest,
    )


@dataclass(frozen=True, slots=True)
class DestinationCounts:
    """One destination's rows: pending (``due`` now, ``inflight`` leased), dead, and delivered
    since the instant the caller gave."""

    destination: str
    pending: int
    due: int
    inflight: int
    dead: int
    delivered_recently: int


@translate_errors
def by_destination(
    conn: Connection, *, now: dt.datetime, delivered_since: dt.datetime
) -> list[DestinationCounts]:
    """Pending, dead and recently delivered rows per destination, by name.

    Lock: none (plain reads). Guard: pending rows through ``ix_relay_outbox_pending_due``
    (which leads with state and destination), dead and recently delivered ones through
    ``ix_relay_outbox_state_finished_at``; no delivered row older than ``delivered_since`` is
    visited.
    """
    pending = conn.execute(
        sa.select(
            outbox.c.destination,
            sa.func.count(),
            _count_where(is_due(now)),
            _count_where(lease_is_live(now)),
        )
        .where(state_is(OutboxState.PENDING))
        .group_by(outbox.c.destination)
    ).all()
    dead = conn.execute(
        sa.select(outbox.c.destination, sa.func.count())
        .where(state_is(OutboxState.DEAD))
        .group_by(outbox.c.destination)
    ).all()
    delivered = conn.execute(
        sa.select(outbox.c.destination, sa.func.count())
        .where(state_is(OutboxState.DELIVERED), outbox.c.finished_at >= delivered_since)
        .group_by(outbox.c.destination)
    ).all()
    names = sorted({r[0] for r in (*pending, *dead, *delivered)})
    p = {r[0]: (int(r[1]), int(r[2]), int(r[3])) for r in pending}
    d = {r[0]: int(r[1]) for r in dead}
    x = {r[0]: int(r[1]) for r in delivered}
    return [
        DestinationCounts(name, *p.get(name, (0, 0, 0)), d.get(name, 0), x.get(name, 0))
        for name in names
    ]
