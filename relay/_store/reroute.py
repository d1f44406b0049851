"""Moving undelivered rows to another destination (``relay reroute``), and what a dry run shows.

Like :mod:`relay._store.requeue`, the write takes ids chosen by
:func:`relay._store.selection.next_batch` in the same transaction and re-checks everything in
its own WHERE: still pending or dead (a row delivered meanwhile stays where it went), still
matching the filter, and not leased by a relay right now (a row a relay is sending is never
moved from under it: it is skipped, and counted so). Run it in
``transaction(engine, write=True)``: one batch, one atomic transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from relay._store._base import state_is, translate_errors
from relay._store.profiles import profile_key
from relay._store.requeue import IDS_PER_STATEMENT
from relay._store.selection import EventFilter, leased, where
from relay._tables import OutboxState, RowKind, outbox

#: What reroute may move: never a delivered row (it is in the old project for good).
MOVABLE = (OutboxState.PENDING, OutboxState.DEAD)


def _chunks(ids: Collection[int]) -> list[list[int]]:
    ordered = list(ids)
    return [ordered[i : i + IDS_PER_STATEMENT] for i in range(0, len(ordered), IDS_PER_STATEMENT)]


def _movable() -> sa.ColumnElement[bool]:
    return sa.or_(*(state_is(s) for s in MOVABLE))


@dataclass(frozen=True, slots=True)
class RerouteGroup:
    """Rows a reroute selects, for one (kind, state, current destination); ``leased`` of them
    held by a relay right now (skipped, not moved)."""

    kind: str
    state: str
    destination: str
    count: int
    leased: int

    def to_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "kind": self.kind,
            "state": self.state,
            "from_destination": self.destination,
            "count": self.count,
            "leased": self.leased,
        }


@translate_errors
def reroute_breakdown(conn: Connection, f: EventFilter, *, now: dt.datetime) -> list[RerouteGroup]:
    """Count the movable rows matching ``f`` per (kind, state, destination).

    Lock: none (a plain read). Guard: none needed, nothing is written.
    """
    held = sa.func.coalesce(sa.func.sum(sa.case((leased(now), 1), else_=0)), 0)
    c = outbox.c
    rows = conn.execute(
        sa.select(c.kind, c.state, c.destination, sa.func.count(), held)
        .where(where(f), _movable())
        .group_by(c.kind, c.state, c.destination)
        .order_by(c.destination, c.kind, c.state)
    ).all()
    return [RerouteGroup(k, s, d, int(n), int(h)) for k, s, d, n, h in rows]


@translate_errors
def reroute(
    conn: Connection, f: EventFilter, *, ids: Collection[int], to: str, now: dt.datetime
) -> int:
    """Move the rows in ``ids`` that still match ``f``, are pending or dead and are not leased
    at ``now`` to destination ``to``; returns how many moved.

    Their state, due time, attempts and lane stay as they were: a pending row is sent to its
    new destination when it falls due, a dead one stays dead (requeue it there). A profile
    update gets its new destination's ``profile_key`` (one profile's queue per project:
    :func:`relay._store.profiles.profile_key`). Lock: the rows updated. Guard: ``f``,
    ``state IN ('pending', 'dead')`` and not leased, all again in the UPDATE.
    """
    guard = sa.and_(where(f), _movable(), sa.not_(leased(now)), outbox.c.destination != to)
    moved = 0
    for chunk in _chunks(ids):
        kinds = conn.execute(
            sa.select(
                outbox.c.id,
                outbox.c.kind,
                outbox.c.distinct_id,
                outbox.c.properties["$group_key"].as_string(),
            ).where(outbox.c.id.in_(chunk), outbox.c.kind != RowKind.EVENT.value)
        ).all()
        profiles = {row_id for row_id, *_ in kinds}
        events = [i for i in chunk if i not in profiles]
        if events:
            moved += conn.execute(
                sa.update(outbox)
                .where(outbox.c.id.in_(events), guard)
                .values(destination=to, updated_at=now)
            ).rowcount
        for row_id, kind, identity, group_key in kinds:
            parts = (identity,) if kind == RowKind.USER.value else (group_key or "", identity)
            moved += conn.execute(
                sa.update(outbox)
                .where(outbox.c.id == row_id, guard)
                .values(
                    destination=to,
                    profile_key=profile_key(RowKind(kind), *parts, destination=to),
                    updated_at=now,
                )
            ).rowcount
    return moved
