"""Profile updates in the outbox: their row, the per-profile ordered claim, and erasure.

A profile update is an outbox row of kind ``user`` or ``group`` (:class:`relay._tables.RowKind`)
with a ``profile_key`` naming its profile. The claim here takes, for each profile, only the
head of its queue: the pending update with the lowest id, and only when no earlier update of
the same profile is pending (leased by some relay, waiting for a retry, or not yet due). So
for one profile, updates take effect in outbox order across retries, crashes and several
relays, and one request never carries two updates of one profile.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from relay._event.properties import datetime_to_timestamp_ms
from relay._store import lanes
from relay._store._base import id_is_one_of, state_is, translate_errors
from relay._store.claims import Claim, is_due, lease_is_live, lease_rows
from relay._tables import DEFAULT_DESTINATION, OutboxState, RowKind, UTCDateTime, outbox

#: The kinds of row that are profile updates, and so are claimed here.
PROFILE_KINDS = (RowKind.USER.value, RowKind.GROUP.value)


def profile_key(kind: RowKind, *identity: str, destination: str = DEFAULT_DESTINATION) -> str:
    """The ``profile_key`` of a profile: SHA-256 hex of its kind and identity.

    ``identity`` is ``(distinct_id,)`` for a user, ``(group_key, group_id)`` for a group. A
    digest keeps the key short enough for an index on every dialect. A profile in another
    destination than ``default`` is another profile (another Mixpanel project), queued on its
    own: its key adds the destination. The ``default`` key is the one rows had before
    destinations existed, so their order holds across the upgrade.
    """
    parts: list[object] = [kind.value, *identity]
    if destination != DEFAULT_DESTINATION:
        parts.append({"destination": destination})
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()


def profile_row(
    *,
    kind: RowKind,
    insert_id: str,
    operation: str,
    identity: str,
    key: str,
    update_json: bytes,
    now: dt.datetime,
    destination: str = DEFAULT_DESTINATION,
) -> dict[str, Any]:
    """The column values of a new pending profile-update row at ``now``, for ``destination``.

    ``event`` holds the operation (``$set`` ...), ``distinct_id`` the user's distinct_id or the
    group's id, ``properties`` the update object without ``$token`` and ``$ip``, as the JSON
    text that was checked (stored as is, as an event's properties are).
    """
    return {
        "insert_id": insert_id,
        "event": operation,
        "distinct_id": identity,
        "time_ms": datetime_to_timestamp_ms(now),
        "properties": update_json.decode(),
        "state": OutboxState.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
        "kind": kind.value,
        "profile_key": key,
    } | ({"destination": destination} if destination != DEFAULT_DESTINATION else {})


@dataclass(frozen=True, slots=True)
class ProfileClaim:
    """Profile updates leased by one claim (``claim.events``) and each one's kind by id.

    ``more``: the claim stopped at its limit, or passed over updates queued behind the ones
    it took, so more may be due once these are acked.
    """

    claim: Claim
    kinds: dict[int, str]
    more: bool


def _earlier_pending() -> sa.Exists:
    earlier = outbox.alias("earlier")
    return (
        sa.select(earlier.c.id)
        .where(
            earlier.c.profile_key == outbox.c.profile_key,
            earlier.c.state == sa.literal_column(f"'{OutboxState.PENDING.value}'", sa.String()),
            earlier.c.id < outbox.c.id,
        )
        .exists()
    )


def _pending_profile_rows() -> list[sa.ColumnElement[bool]]:
    # Both predicates of ix_relay_outbox_profile_pending, literal, so the planner can use it.
    return [state_is(OutboxState.PENDING), outbox.c.profile_key.is_not(None)]


@functools.cache
def _heads() -> sa.Select[Any]:
    """The due heads of the profiles' queues (bind parameters ``destination``, ``now`` and
    ``limit``): built once, as this read runs every drain cycle, updates pending or not."""
    return (
        sa.select(outbox.c.id)
        .where(
            *_pending_profile_rows(),
            outbox.c.destination == sa.bindparam("destination", type_=outbox.c.destination.type),
            is_due(sa.bindparam("now", type_=UTCDateTime())),
            ~_earlier_pending(),
        )
        .order_by(outbox.c.id)
        .limit(sa.bindparam("limit", type_=sa.Integer()))
    )


@translate_errors
def claim_profile_updates(
    conn: Connection,
    *,
    now: dt.datetime,
    limit: int,
    lease_seconds: float,
    destination: str = DEFAULT_DESTINATION,
) -> ProfileClaim:
    """Lease up to ``limit`` due profile updates of ``destination``, each the head of its
    profile's queue.

    Two steps. First a plain (non-locking) read of the heads: due pending updates with no
    pending update of the same profile before them (``NOT EXISTS``, which sees updates leased
    by other relays and updates waiting for a retry: both are still pending). Then the heads
    are locked ``FOR UPDATE SKIP LOCKED`` (PostgreSQL, MariaDB; SQLite holds its write lock)
    and re-checked due, and leased as event rows are (:func:`relay._store.claims.lease_rows`).
    The read does not lock, so a head another relay is leasing at the same moment still
    counts as earlier for the rows behind it: a locking read with SKIP LOCKED would skip it
    and take the update behind it, out of order. A head stays a head until it is delivered
    or dead (ids only grow), so the lock step never takes a row that stopped being one.
    A pause of all delivery (``relay pause``), or of the destination, covers profile updates
    too. A pending update of the same profile for another destination still counts as earlier
    (the queue is the profile's, wherever it goes), so the order holds across a reroute.

    Lock: the heads leased. Guard: ``state = 'pending'`` and :func:`relay._store.is_due`.
    """
    token = uuid.uuid4().hex
    if lanes.claim_exclusion(conn, destination=destination).everything:
        return ProfileClaim(claim=Claim(token=token, events=[]), kinds={}, more=False)
    mine = outbox.c.destination == destination
    heads = [
        int(row_id)
        for row_id in conn.execute(
            _heads(), {"destination": destination, "now": now, "limit": limit}
        ).scalars()
    ]
    if not heads:
        return ProfileClaim(claim=Claim(token=token, events=[]), kinds={}, more=False)
    lock = (
        sa.select(outbox.c.id, outbox.c.kind)
        .where(id_is_one_of(conn, heads), *_pending_profile_rows(), mine, is_due(now))
        .order_by(outbox.c.id)
    )
    if conn.dialect.name != "sqlite":
        lock = lock.with_for_update(skip_locked=True)
    kinds = {int(row_id): str(kind) for row_id, kind in conn.execute(lock).all()}
    if not kinds:
        return ProfileClaim(claim=Claim(token=token, events=[]), kinds={}, more=True)
    lease_until = now + dt.timedelta(seconds=lease_seconds)
    events = lease_rows(conn, list(kinds), token=token, lease_until=lease_until, now=now)
    events.sort(key=lambda e: e.id)
    more = len(heads) >= limit or _has_queued(conn, taken=len(kinds), destination=destination)
    return ProfileClaim(claim=Claim(token=token, events=events), kinds=kinds, more=more)


def _has_queued(conn: Connection, *, taken: int, destination: str) -> bool:
    """Whether pending profile updates of ``destination`` beyond the ``taken`` just leased
    exist (one short read)."""
    pending = conn.execute(
        sa.select(sa.func.count()).select_from(
            sa.select(outbox.c.id)
            .where(*_pending_profile_rows(), outbox.c.destination == destination)
            .limit(taken + 1)
            .subquery()
        )
    ).scalar_one()
    return int(pending) > taken


# --- erasure ---------------------------------------------------------------------------------


def _person_rows(distinct_id: str) -> sa.ColumnElement[bool]:
    """Rows of one person: events with that distinct_id, and updates of that user's profile."""
    return sa.and_(
        outbox.c.distinct_id == distinct_id,
        sa.or_(outbox.c.kind == RowKind.EVENT.value, outbox.c.kind == RowKind.USER.value),
    )


@translate_errors
def count_person_rows(conn: Connection, *, distinct_id: str) -> dict[str, int]:
    """How many rows of the person ``distinct_id`` the outbox holds, by kind and state."""
    rows = conn.execute(
        sa.select(outbox.c.kind, outbox.c.state, sa.func.count())
        .where(_person_rows(distinct_id))
        .group_by(outbox.c.kind, outbox.c.state)
    ).all()
    return {f"{kind}/{state}": int(count) for kind, state, count in rows}


@translate_errors
def delete_person_rows(conn: Connection, *, distinct_id: str) -> int:
    """Delete every outbox row of the person ``distinct_id``; returns how many.

    Lock: the rows deleted (a row a relay holds is deleted too: its fenced ack then changes
    nothing, and it is not sent again).
    """
    return conn.execute(sa.delete(outbox).where(_person_rows(distinct_id))).rowcount


@translate_errors
def fence_person_rows(
    conn: Connection, *, distinct_id: str, token: str, until: dt.datetime, now: dt.datetime
) -> int:
    """Hold every pending row of the person that no relay holds, so no relay claims it.

    The rows are leased under ``token`` until ``until``, as a claim leases them: claims,
    replays and requeues then pass them by. Returns how many of the person's rows a relay
    holds at ``now`` (in flight: their request may still reach Mixpanel). Lock: the rows
    fenced. Guard: not leased at ``now``, so a relay's lease is never taken over (its ack
    stays valid); a row whose lease ran out is fenced (its relay's late ack then changes
    nothing).
    """
    mine = outbox.c.lease_token == token
    conn.execute(
        sa.update(outbox)
        .where(
            _person_rows(distinct_id), state_is(OutboxState.PENDING), sa.not_(lease_is_live(now))
        )
        .values(lease_token=token, lease_expires_at=until)
    )
    held = conn.execute(
        sa.select(sa.func.count())
        .select_from(outbox)
        .where(
            _person_rows(distinct_id),
            state_is(OutboxState.PENDING),
            lease_is_live(now),
            sa.not_(mine),
        )
    ).scalar_one()
    return int(held)


@translate_errors
def release_fence(conn: Connection, *, token: str) -> int:
    """Lift a fence :func:`fence_person_rows` set: the rows are claimable again. Lock: them."""
    return conn.execute(
        sa.update(outbox)
        .where(outbox.c.lease_token == token)
        .values(lease_token=None, lease_expires_at=None)
    ).rowcount


@translate_errors
def profile_updates_waiting(conn: Connection, *, destination: str | None = None) -> int:
    """How many profile updates are pending (read from ``ix_relay_outbox_profile_pending``),
    for one destination or (``None``) for all."""
    where = _pending_profile_rows()
    if destination is not None:
        where.append(outbox.c.destination == destination)
    return int(
        conn.execute(sa.select(sa.func.count()).select_from(outbox).where(*where)).scalar_one()
    )
