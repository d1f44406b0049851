"""Reads behind ``relay stats`` and the dead-letter listing, each walking a state-leading index.

With millions of delivered rows present none of these visits a delivered row it does not
count: pending rows come from the partial index ``ix_relay_outbox_pending_due``, dead and
recently finished rows from ``ix_relay_outbox_state_finished_at`` (``state, finished_at``).
The pending gauges themselves are :func:`relay._store.maintenance.pending_gauges`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from relay._store._base import state_is, translate_errors
from relay._tables import OutboxState, outbox


@dataclass(frozen=True, slots=True)
class DeadGroup:
    """Dead rows sharing one ``reason`` (``last_error``) and one event name."""

    reason: str
    event: str
    count: int
    first_at: dt.datetime | None
    last_at: dt.datetime | None


@translate_errors
def dead_groups(conn: Connection, *, latest: int | None = None) -> list[DeadGroup]:
    """Count dead rows per (reason, event), with the first and last time each group died.

    ``latest``: only the ``latest`` most recently dead rows (by ``finished_at``), so that the
    cost is bounded whatever the number of dead rows; ``None``: all of them.

    Lock: none (a plain read). Guard: ``state = 'dead'``, read through
    ``ix_relay_outbox_state_finished_at`` (with ``latest``, backwards from the newest: at most
    ``latest`` entries and rows).
    """
    source: Any = outbox
    if latest is not None:
        source = (
            sa.select(outbox.c.last_error, outbox.c.event, outbox.c.finished_at)
            .where(state_is(OutboxState.DEAD))
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
        query = query.where(state_is(OutboxState.DEAD))
    found = conn.execute(query).all()
    return [DeadGroup(r, e, int(n), first, last) for r, e, n, first, last in found]


@translate_errors
def finished_since(
    conn: Connection, *, state: OutboxState, since: Sequence[dt.datetime]
) -> list[int]:
    """How many ``state`` rows finished at or after each instant in ``since``, in one pass.

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
        sa.select(*counts).where(state_is(state), outbox.c.finished_at >= min(since))
    ).one()
    return [int(n) for n in row]


@translate_errors
def finished_before(conn: Connection, *, state: OutboxState, before: dt.datetime) -> int:
    """How many ``state`` rows finished before ``before``: what a purge would delete.

    Lock: none (a plain read). Guard: ``state = :state AND finished_at < :before``, a range
    scan of ``ix_relay_outbox_state_finished_at``.
    """
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(outbox)
            .where(state_is(state), outbox.c.finished_at < before)
        ).scalar_one()
    )


@translate_errors
def pending_by_event(conn: Connection) -> dict[str, int]:
    """Pending rows per event name, largest first.

    Lock: none (a plain read). Guard: ``state = 'pending'``, read through the partial index
    ``ix_relay_outbox_pending_due``.
    """
    count = sa.func.count()
    found = conn.execute(
        sa.select(outbox.c.event, count)
        .where(state_is(OutboxState.PENDING))
        .group_by(outbox.c.event)
        .order_by(count.desc(), outbox.c.event)
    ).all()
    return {event: int(n) for event, n in found}


@translate_errors
def outbox_is_empty(conn: Connection) -> bool:
    """Whether the outbox holds no row at all, in any state (nothing was ever tracked here, or
    retention removed everything).

    Lock: none (a plain read of at most one row through the primary key).
    """
    return conn.execute(sa.select(outbox.c.id).limit(1)).first() is None
