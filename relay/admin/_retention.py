"""``relay purge``: the retention job's deletes, run by hand with explicit windows.

Deletes delivered and dead rows by ``finished_at`` through
:func:`relay._store.maintenance.purge_finished_batch` (the statement the retention job runs),
in bounded batches of one short transaction each; every batch also adds to the audit entry's
count, so an interrupted purge is audited exactly. A dry run counts instead, through the same
index, and writes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from relay._config import PURGE_BATCH_SIZE
from relay._errors import FilterError
from relay._store import audit as audit_store
from relay._store import maintenance, transaction
from relay._store import stats as stats_store
from relay._tables import OutboxState
from relay.admin._audit import begin_entry, finish_entry
from relay.admin._filters import MIN_INSTANT


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """Rows deleted (or, in a dry run, that would be) per state, and the cut-offs used.

    A ``None`` cut-off means that state was not purged. ``audit_id`` is ``None`` for a dry run.
    """

    dry_run: bool
    delivered: int
    dead: int
    delivered_before: dt.datetime | None
    dead_before: dt.datetime | None
    audit_id: int | None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready values (cut-offs in ISO 8601)."""
        return {
            "dry_run": self.dry_run,
            "delivered": self.delivered,
            "dead": self.dead,
            "delivered_before": _iso(self.delivered_before),
            "dead_before": _iso(self.dead_before),
            "audit_id": self.audit_id,
        }


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def purge(
    engine: Engine,
    *,
    now: dt.datetime,
    delivered_older_than: dt.timedelta | None = None,
    dead_older_than: dt.timedelta | None = None,
    batch_size: int = PURGE_BATCH_SIZE,
    dry_run: bool = False,
    actor: str | None = None,
    on_batch: Callable[[OutboxState, int], None] | None = None,
    destination: str | None = None,
) -> PurgeResult:
    """Delete delivered rows finished more than ``delivered_older_than`` before ``now`` and
    dead rows finished more than ``dead_older_than`` before it; pending rows are never touched.
    ``destination``: only rows going there (audited in the entry's filter).

    ``on_batch(state, deleted)`` is called after each committed batch. Raises
    :class:`FilterError` when no window is given or a window is negative.
    """
    windows = {OutboxState.DELIVERED: delivered_older_than, OutboxState.DEAD: dead_older_than}
    if all(w is None for w in windows.values()):
        raise FilterError("purge needs --delivered-older-than or --dead-older-than", field="window")
    for state, window in windows.items():
        if window is not None and window < dt.timedelta():
            raise FilterError(f"the {state.value} window must not be negative", field="window")
        if window is not None and window > now - MIN_INSTANT:
            raise FilterError(
                f"the {state.value} window reaches before {MIN_INSTANT.year}", field="window"
            )
    if batch_size < 1:
        raise FilterError("batch size must be at least 1", field="batch_size")
    cutoffs = {s: now - w for s, w in windows.items() if w is not None}
    counts = dict.fromkeys(cutoffs, 0)
    entry_id: int | None = None
    if dry_run:
        with transaction(engine) as conn:
            for state, before in cutoffs.items():
                counts[state] = stats_store.finished_before(
                    conn, state=state, before=before, destination=destination
                )
    else:
        entry_id = begin_entry(
            engine,
            now=now,
            actor=actor,
            action="purge",
            filter_json={
                f"{s.value}_finished_before": cutoff.isoformat() for s, cutoff in cutoffs.items()
            }
            | ({} if destination is None else {"destination": destination}),
        )
        for state, before in cutoffs.items():
            counts[state] = _purge_state(
                engine,
                state,
                before=before,
                batch_size=batch_size,
                entry_id=entry_id,
                on_batch=on_batch,
                destination=destination,
            )
        finish_entry(
            engine,
            entry_id,
            detail="finished: "
            + ", ".join(f"{n} {state.value} deleted" for state, n in counts.items()),
        )
    return PurgeResult(
        dry_run=dry_run,
        delivered=counts.get(OutboxState.DELIVERED, 0),
        dead=counts.get(OutboxState.DEAD, 0),
        delivered_before=cutoffs.get(OutboxState.DELIVERED),
        dead_before=cutoffs.get(OutboxState.DEAD),
        audit_id=entry_id,
    )


def _purge_state(
    engine: Engine,
    state: OutboxState,
    *,
    before: dt.datetime,
    batch_size: int,
    entry_id: int,
    on_batch: Callable[[OutboxState, int], None] | None,
    destination: str | None,
) -> int:
    deleted = 0
    while True:
        with transaction(engine, write=True) as conn:
            n = maintenance.purge_finished_batch(
                conn,
                state=state,
                finished_before=before,
                limit=batch_size,
                destination=destination,
            )
            audit_store.add_to_entry(conn, entry_id=entry_id, count=n)
        deleted += n
        if on_batch is not None:
            on_batch(state, n)
        if n < batch_size:
            return deleted
