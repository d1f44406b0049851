"""Operator writes on chosen rows: requeue them for the relay, or delete dead letters.

Both take ids chosen by :func:`relay._store.selection.next_batch` in the same transaction and
re-check the filter in their own WHERE, so a row that changed since it was chosen (a relay
claimed it, delivered it) is left alone rather than overwritten. Run them in
``transaction(engine, write=True)``: one batch, one atomic transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from relay._store._base import state_is, translate_errors
from relay._store.selection import EventFilter, latest_updates, leased, where
from relay._tables import Lane, OutboxState, outbox

#: Ids sent per statement: PostgreSQL takes at most 65,535 bind parameters in one statement
#: (and the filter adds its own), so a large batch is several statements in one transaction.
IDS_PER_STATEMENT = 10_000


def _chunks(ids: Collection[int]) -> list[list[int]]:
    ordered = list(ids)
    return [ordered[i : i + IDS_PER_STATEMENT] for i in range(0, len(ordered), IDS_PER_STATEMENT)]


@translate_errors
def superseded_among(conn: Connection, ids: Collection[int]) -> set[int]:
    """Which of ``ids`` are profile updates a later update of the same profile follows.

    See :func:`relay._store.selection.latest_updates`. Lock: none (plain reads). An update
    written after this read has a higher id still, and the profile claim sends one profile's
    updates in id order: a requeued row then goes first, and the newer update after it.
    """
    found: set[int] = set()
    for chunk in _chunks(ids):
        keys = dict(
            conn.execute(
                sa.select(outbox.c.id, outbox.c.profile_key).where(
                    outbox.c.id.in_(chunk), outbox.c.profile_key.is_not(None)
                )
            ).all()
        )
        if not keys:
            continue  # events only: nothing to look up
        latest = latest_updates(set(keys.values()))
        last = dict(conn.execute(sa.select(latest.c.profile_key, latest.c.last)).all())
        found.update(i for i, key in keys.items() if i < last.get(key, i))
    return found


@translate_errors
def requeue(
    conn: Connection, f: EventFilter, *, ids: Collection[int], now: dt.datetime
) -> tuple[int, int]:
    """Make the rows in ``ids`` that still match ``f`` pending and due at ``now``, as new.

    Returns ``(changed, superseded)``: profile updates a later update of the same profile
    follows are never requeued (:func:`superseded_among`; re-sent, they would put the profile
    back in time), and counted apart.

    Resets ``attempts``, the lease, ``last_error`` and ``finished_at`` and moves the rows to the
    bulk lane (claims serve live rows first, :mod:`relay._store.lanes`); keeps ``time_ms``,
    ``insert_id`` and the properties, so a re-send carries the same deduplication key. Lock:
    the rows updated. Guard: ``f`` again, and not leased by a
    relay at ``now`` (``state = 'pending'`` and a live lease, see
    :func:`relay._store.claims.lease_is_live`): a row a relay is sending is never yanked from
    under it. (MySQL refuses a subquery on the table an UPDATE changes, so the superseded rows
    are read first rather than excluded in the UPDATE's own WHERE.)
    """
    stale = superseded_among(conn, ids)
    changed = 0
    for chunk in _chunks([i for i in ids if i not in stale]):
        result = conn.execute(
            sa.update(outbox)
            .where(outbox.c.id.in_(chunk), where(f), sa.not_(leased(now)))
            .values(
                state=OutboxState.PENDING.value,
                next_attempt_at=now,
                attempts=0,
                lease_token=None,
                lease_expires_at=None,
                last_error=None,
                finished_at=None,
                updated_at=now,
                # Behind live traffic: see relay._store.lanes.
                lane=int(Lane.BULK),
            )
        )
        changed += result.rowcount
    return changed, len(stale)


@translate_errors
def delete_dead(conn: Connection, f: EventFilter, *, ids: Collection[int]) -> int:
    """Delete the rows in ``ids`` that are dead and still match ``f``; returns the count.

    Lock: the rows deleted. Guard: ``state = 'dead'`` and ``f`` again, so a pending or
    delivered row is never deleted here.
    """
    deleted = 0
    for chunk in _chunks(ids):
        result = conn.execute(
            sa.delete(outbox).where(outbox.c.id.in_(chunk), state_is(OutboxState.DEAD), where(f))
        )
        deleted += result.rowcount
    return deleted
