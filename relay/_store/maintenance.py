"""Keeping the outbox small and visible: retention in bounded batches, and cheap gauges.

Both read the table only through its two state-leading indexes, so they cost the same with
millions of delivered rows present: retention walks ``ix_relay_outbox_state_finished_at``
from its old end, the pending gauges walk the partial index ``ix_relay_outbox_pending_due``
(pending rows only), the dead count walks ``(state, finished_at)`` for ``state = 'dead'``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from relay._config import RelaySettings
from relay._store import audit as audit_store
from relay._store._base import is_mysql, state_is, transaction, translate_errors
from relay._store.claims import is_due, lease_is_live
from relay._tables import OutboxState, outbox

_FINISHED_STATES = frozenset({OutboxState.DELIVERED, OutboxState.DEAD})
#: The partial index of pending rows, named in MySQL/MariaDB index hints.
PENDING_INDEX = "ix_relay_outbox_pending_due"
#: The actor and action of the audit entries automatic retention writes.
RETENTION_ACTOR = "relay (automatic retention)"
RETENTION_ACTION = "retention"


@translate_errors
def purge_finished_batch(
    conn: Connection,
    *,
    state: OutboxState,
    finished_before: dt.datetime,
    limit: int,
    destination: str | None = None,
) -> int:
    """Delete up to ``limit`` rows in ``state`` finished before ``finished_before`` (going to
    ``destination`` only, when it is given).

    ``state`` is ``delivered`` or ``dead``; pending rows are never touched. Returns how many
    rows were deleted. Lock: the deleted rows (PostgreSQL skips rows another purge holds).
    Guard: ``state = :state AND finished_at < :finished_before``, read through
    ``ix_relay_outbox_state_finished_at``.
    """
    if state not in _FINISHED_STATES:
        raise ValueError(f"only delivered or dead rows are purged, not {state!r}")
    old = sa.and_(state_is(state), outbox.c.finished_at < finished_before)
    if destination is not None:
        old = sa.and_(old, outbox.c.destination == destination)
    if is_mysql(conn):
        # MySQL/MariaDB refuse LIMIT in an IN subquery but take DELETE ... LIMIT directly.
        stmt = sa.delete(outbox).where(old).with_dialect_options(mysql_limit=limit)
    elif conn.dialect.name == "postgresql":
        # id = ANY(ARRAY(subquery)): the subquery runs once, rows are then fetched by primary
        # key; "id IN (subquery)" may be planned as a hash semi-join over the whole table.
        victims = sa.select(outbox.c.id).where(old).limit(limit).with_for_update(skip_locked=True)
        stmt = sa.delete(outbox).where(
            outbox.c.id == sa.any_(sa.func.array(victims.scalar_subquery()))
        )
    else:
        victims = sa.select(outbox.c.id).where(old).limit(limit)
        stmt = sa.delete(outbox).where(outbox.c.id.in_(victims.scalar_subquery()))
    return conn.execute(stmt).rowcount


def purge_finished(
    engine: Engine,
    *,
    state: OutboxState,
    finished_before: dt.datetime,
    batch_size: int,
    max_batches: int | None = None,
    on_batch: Callable[[Connection, int], None] | None = None,
) -> int:
    """Delete every ``state`` row finished before ``finished_before``, one short transaction
    per batch of at most ``batch_size`` rows, so neither locks nor undo logs grow with the
    backlog. Stops after ``max_batches`` batches when given. Returns the rows deleted.

    ``on_batch(conn, deleted)`` runs inside each batch's transaction (to audit it atomically).
    """
    deleted = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        with transaction(engine, write=True) as conn:
            n = purge_finished_batch(
                conn, state=state, finished_before=finished_before, limit=batch_size
            )
            if on_batch is not None:
                on_batch(conn, n)
        deleted += n
        batches += 1
        if n < batch_size:
            break
    return deleted


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """Rows deleted by one retention run, and its audit entry (``None`` if nothing went)."""

    delivered_deleted: int
    dead_deleted: int
    audit_id: int | None = None


def run_retention(
    engine: Engine,
    settings: RelaySettings,
    *,
    now: dt.datetime,
    max_batches: int | None = None,
    actor: str = RETENTION_ACTOR,
) -> RetentionResult:
    """Delete delivered rows older than ``settings.delivered_retention_hours`` and dead rows
    older than ``settings.dead_retention_hours`` (by ``finished_at``), in batches of
    ``settings.purge_batch_size``.

    A run that deletes something writes one ``retention`` entry to the audit trail, in the
    transaction of its first deleting batch; every later batch adds its count (and rewrites
    the per-state detail) in its own transaction, so the entry is exact even if the run dies
    half-way. A run that deletes nothing writes nothing: the trail grows with deletions, not
    with the schedule.
    """
    cutoffs = {
        OutboxState.DELIVERED: now - dt.timedelta(hours=settings.delivered_retention_hours),
        OutboxState.DEAD: now - dt.timedelta(hours=settings.dead_retention_hours),
    }
    window = {f"{s.value}_finished_before": c.isoformat() for s, c in cutoffs.items()}
    counts = dict.fromkeys(cutoffs, 0)
    entry_id: int | None = None

    def audit_batch(state: OutboxState) -> Callable[[Connection, int], None]:
        def record(conn: Connection, deleted: int) -> None:
            nonlocal entry_id
            if not deleted:
                return
            counts[state] += deleted
            detail = "automatic: " + ", ".join(f"{n} {s.value} deleted" for s, n in counts.items())
            if entry_id is None:
                entry_id = audit_store.add_entry(
                    conn,
                    at=now,
                    actor=actor,
                    action=RETENTION_ACTION,
                    filter=window,
                    count=deleted,
                    detail=detail,
                )
            else:
                audit_store.add_to_entry(conn, entry_id=entry_id, count=deleted, detail=detail)

        return record

    for state, before in cutoffs.items():
        purge_finished(
            engine,
            state=state,
            finished_before=before,
            batch_size=settings.purge_batch_size,
            max_batches=max_batches,
            on_batch=audit_batch(state),
        )
    return RetentionResult(
        delivered_deleted=counts[OutboxState.DELIVERED],
        dead_deleted=counts[OutboxState.DEAD],
        audit_id=entry_id,
    )


# --- gauges -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PendingGauges:
    """What the pending rows look like at one moment."""

    pending: int
    due: int
    inflight: int
    oldest_created_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Gauges:
    """The outbox's health in numbers, as exported by ``relay._daemon.metrics``."""

    pending: int
    due: int
    inflight: int
    dead: int
    oldest_pending_age_seconds: float


def _count_where(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    # SUM(CASE ...) rather than COUNT(*) FILTER, which MySQL/MariaDB lack.
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


@translate_errors
def pending_gauges(conn: Connection, *, now: dt.datetime) -> PendingGauges:
    """Count pending rows, those due at ``now`` (:func:`~relay._store.claims.is_due`), those
    under a live lease, and find the oldest one's ``created_at``, in one pass over them.

    Lock: none (a plain read). Guard: ``state = 'pending'``, read through a state-leading index
    (``ix_relay_outbox_pending_due``, forced on MySQL/MariaDB), so delivered and dead rows are
    never visited; the cost grows with the backlog only.
    """
    query = sa.select(
        sa.func.count().label("pending"),
        _count_where(is_due(now)).label("due"),
        _count_where(lease_is_live(now)).label("inflight"),
        sa.func.min(outbox.c.created_at).label("oldest"),
    ).where(state_is(OutboxState.PENDING))
    for dialect in ("mysql", "mariadb"):
        # MySQL/MariaDB's optimizer trades the index for a full scan once pending rows are a
        # sizeable share; the cost of a gauge must follow the backlog, not the table.
        query = query.with_hint(outbox, f"FORCE INDEX ({PENDING_INDEX})", dialect_name=dialect)
    row = conn.execute(query).one()
    return PendingGauges(
        pending=int(row.pending),
        due=int(row.due),
        inflight=int(row.inflight),
        oldest_created_at=row.oldest,
    )


@translate_errors
def dead_count(conn: Connection) -> int:
    """Count dead rows.

    Lock: none (a plain read). Guard: ``state = 'dead'``, answered from
    ``ix_relay_outbox_state_finished_at``.
    """
    return int(
        conn.execute(
            sa.select(sa.func.count()).select_from(outbox).where(state_is(OutboxState.DEAD))
        ).scalar_one()
    )


def read_gauges(engine: Engine, *, now: dt.datetime) -> Gauges:
    """All gauges, read in one short transaction."""
    with transaction(engine) as conn:
        pending = pending_gauges(conn, now=now)
        dead = dead_count(conn)
    oldest_age = (
        max(0.0, (now - pending.oldest_created_at).total_seconds())
        if pending.oldest_created_at is not None
        else 0.0
    )
    return Gauges(
        pending=pending.pending,
        due=pending.due,
        inflight=pending.inflight,
        dead=dead,
        oldest_pending_age_seconds=oldest_age,
    )
