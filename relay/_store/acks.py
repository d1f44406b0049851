"""The fenced acks that end a claim: delivered, dead, retry later, or handed back unsent.

Every statement is fenced by the claim's token (``lease_token = token AND state = 'pending'``),
so a relay whose lease expired and whose rows were claimed again changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from relay._store._base import clip_error, id_is_one_of, per_row, state_is, translate_errors
from relay._store.claims import Claim
from relay._tables import OutboxState, UTCDateTime, outbox


def _fenced(conn: Connection, token: str, ids: Collection[int]) -> sa.ColumnElement[bool]:
    return sa.and_(
        id_is_one_of(conn, ids),
        outbox.c.lease_token == token,
        state_is(OutboxState.PENDING),
    )


def _delivered(now: dt.datetime | sa.ColumnElement[dt.datetime]) -> dict[str, Any]:
    """The columns an ack of accepted rows sets: finished now, lease and error cleared."""
    return {
        "state": OutboxState.DELIVERED.value,
        "finished_at": now,
        "updated_at": now,
        "lease_token": None,
        "lease_expires_at": None,
        "last_error": None,
    }


@translate_errors
def mark_delivered(
    conn: Connection, *, token: str, ids: Collection[int], now: dt.datetime, keep: bool = True
) -> int:
    """Record that Mixpanel accepted ``ids``; returns how many rows changed.

    ``keep=False`` deletes the rows instead of marking them ``delivered``
    (``RELAY_DELIVERED_RETENTION_HOURS=0``: no delivered row is kept, and PostgreSQL is spared
    the new row version and the index entries an update of ``state`` writes).

    Lock: the rows updated (or deleted). Guard: fenced,
    ``lease_token = token AND state = 'pending'``, so a worker whose lease expired and was
    re-claimed changes nothing.
    """
    if not ids:
        return 0
    fence = _fenced(conn, token, ids)
    statement = (
        sa.update(outbox).where(fence).values(_delivered(now))
        if keep
        else sa.delete(outbox).where(fence)
    )
    return conn.execute(statement).rowcount


#: A claim is acked by its id range when the range holds fewer than this many rows per
#: claimed row, and by its list of ids otherwise.
DENSE_CLAIM_SPAN = 4


@translate_errors
def mark_claim_delivered(
    conn: Connection, *, claim: Claim, now: dt.datetime, keep: bool = True
) -> int:
    """Record that Mixpanel accepted every row of ``claim``; returns how many rows changed.

    The same as :func:`mark_delivered` with all of the claim's ids (``keep=False`` deletes
    them). When those ids are dense (rows tracked one after the other, the usual case) the
    statement names only the claim's lowest and highest id: the claim's rows are exactly the
    rows in that range that still hold its token (a fresh one per claim), and the primary key
    walks the range once instead of looking up 2000 ids one by one. A claim that mixes old rows
    (retries) with new ones would stretch that range, and the walk, towards the whole table: it
    is acked by its ids.

    Lock: the rows updated (or deleted). Guard: fenced,
    ``lease_token = token AND state = 'pending'``, so a worker whose lease expired and was
    re-claimed changes nothing; other rows in the range hold other tokens or none.
    """
    if not claim.events:
        return 0
    first_id = min(e.id for e in claim.events)
    last_id = max(e.id for e in claim.events)
    if last_id - first_id >= DENSE_CLAIM_SPAN * len(claim.events):
        ids = [e.id for e in claim.events]
        return mark_delivered(conn, token=claim.token, ids=ids, now=now, keep=keep)
    if keep:
        params = {"first_id": first_id, "last_id": last_id, "token": claim.token, "now": now}
        return conn.execute(_DELIVERED_RANGE, params).rowcount
    params = {"first_id": first_id, "last_id": last_id, "token": claim.token}
    return conn.execute(_DELETED_RANGE, params).rowcount


def _claim_range() -> sa.ColumnElement[bool]:
    """The claim's rows by id range: those in it that still hold its token (see above)."""
    return sa.and_(
        outbox.c.id.between(
            sa.bindparam("first_id", type_=sa.BigInteger()),
            sa.bindparam("last_id", type_=sa.BigInteger()),
        ),
        outbox.c.lease_token == sa.bindparam("token", type_=outbox.c.lease_token.type),
        state_is(OutboxState.PENDING),
    )


# Built once (they run after every request; see relay._store.claims._due_rows).
_DELIVERED_RANGE = (
    sa.update(outbox)
    .where(_claim_range())
    .values(_delivered(sa.bindparam("now", type_=UTCDateTime())))
)
_DELETED_RANGE = sa.delete(outbox).where(_claim_range())


@translate_errors
def mark_dead(conn: Connection, *, token: str, errors: Mapping[int, str], now: dt.datetime) -> int:
    """Give up on the rows in ``errors`` (id -> reason, kept in ``last_error``); returns the count.

    For Mixpanel's per-record rejections and rows out of attempts. Lock: the rows updated.
    Guard: fenced, ``lease_token = token AND state = 'pending'``.
    """
    if not errors:
        return 0
    reasons = {row_id: clip_error(reason) for row_id, reason in errors.items()}
    result = conn.execute(
        sa.update(outbox)
        .where(_fenced(conn, token, reasons))
        .values(
            state=OutboxState.DEAD.value,
            finished_at=now,
            updated_at=now,
            lease_token=None,
            lease_expires_at=None,
            last_error=per_row(reasons, sa.String()),
        )
    )
    return result.rowcount


@dataclass(frozen=True, slots=True)
class Retry:
    """When to try a row again, and why the last attempt failed."""

    at: dt.datetime
    error: str


@translate_errors
def schedule_retry(
    conn: Connection, *, token: str, retries: Mapping[int, Retry], now: dt.datetime
) -> int:
    """Give up the lease on the rows in ``retries`` until each one's ``at``; returns the count.

    The attempt stays counted. Lock: the rows updated. Guard: fenced,
    ``lease_token = token AND state = 'pending'``.
    """
    if not retries:
        return 0
    result = conn.execute(
        sa.update(outbox)
        .where(_fenced(conn, token, retries))
        .values(
            next_attempt_at=per_row({i: r.at for i, r in retries.items()}, UTCDateTime()),
            last_error=per_row({i: clip_error(r.error) for i, r in retries.items()}, sa.String()),
            lease_token=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )
    return result.rowcount


@translate_errors
def release(
    conn: Connection,
    *,
    token: str,
    ids: Collection[int],
    next_attempt_at: dt.datetime,
    now: dt.datetime,
) -> int:
    """Hand claimed rows back unsent, due at ``next_attempt_at``; returns the count.

    Gives the attempt back (``attempts - 1``): used after a 401, which says nothing about the
    rows, and at shutdown for claims never sent. Lock: the rows updated. Guard: fenced,
    ``lease_token = token AND state = 'pending'``.
    """
    if not ids:
        return 0
    return _hand_back(conn, token=token, ids=ids, next_attempt_at=next_attempt_at, now=now)


@translate_errors
def postpone(
    conn: Connection, *, token: str, due: Mapping[int, dt.datetime], now: dt.datetime
) -> int:
    """Hand claimed rows back unsent, each due again at its own time; returns the count.

    For rows whose event ``time`` is still ahead of the relay's clock (Mixpanel would re-stamp
    it, changing the dedup key): gives the attempt back (``attempts - 1``) and keeps
    ``last_error``. Lock: the rows updated. Guard: fenced,
    ``lease_token = token AND state = 'pending'``.
    """
    if not due:
        return 0
    return _hand_back(
        conn, token=token, ids=due, next_attempt_at=per_row(dict(due), UTCDateTime()), now=now
    )


def _hand_back(
    conn: Connection,
    *,
    token: str,
    ids: Collection[int],
    next_attempt_at: dt.datetime | sa.ColumnElement[dt.datetime],
    now: dt.datetime,
) -> int:
    """The fenced UPDATE behind :func:`release` and :func:`postpone`: unlease, attempt back."""
    result = conn.execute(
        sa.update(outbox)
        .where(_fenced(conn, token, ids))
        .values(
            next_attempt_at=next_attempt_at,
            attempts=sa.case((outbox.c.attempts > 0, outbox.c.attempts - 1), else_=0),
            lease_token=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )
    return result.rowcount
