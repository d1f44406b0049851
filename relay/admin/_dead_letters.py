"""Dead letters: rows Mixpanel refused or that ran out of attempts, grouped by their reason.

Ten thousand rows that died of one cause read as one group. A group (or any selection of dead
rows) can be requeued for the relay, as a replay would, or discarded: deleted, with the
operator's reason and the count kept in the audit trail.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection, Engine

from relay._errors import FilterError
from relay._store import requeue as requeue_store
from relay._store import stats as stats_store
from relay._store import transaction
from relay._store.selection import Candidate, EventFilter
from relay._tables import OutboxState
from relay.admin._filters import check_filter
from relay.admin._inspection import EventDetail, inspect_event
from relay.admin._replay import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_SAMPLE_SIZE,
    BatchResult,
    OnBatch,
    Preview,
    describe,
    requeue_change,
    run_operation,
)

_DEAD = (OutboxState.DEAD,)


@dataclass(frozen=True, slots=True)
class DeadLetterGroup:
    """Dead rows sharing one reason: how many, when the first and last died, per event name."""

    reason: str
    count: int
    first_at: dt.datetime | None
    last_at: dt.datetime | None
    events: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready values (instants in ISO 8601)."""
        return {
            "reason": self.reason,
            "count": self.count,
            "first_at": None if self.first_at is None else self.first_at.isoformat(),
            "last_at": None if self.last_at is None else self.last_at.isoformat(),
            "events": self.events,
        }


def dead_letters(
    engine: Engine, *, destination: str | None = None, latest: int | None = None
) -> list[DeadLetterGroup]:
    """Every dead row (going to ``destination``, if given) grouped by reason, largest first.

    ``latest``: group only the ``latest`` most recently dead rows (the Django admin's pages:
    a cost bounded by ``latest``, not by how many rows are dead); ``None``: every dead row.
    """
    with transaction(engine) as conn:
        found = stats_store.dead_groups(conn, destination=destination, latest=latest)
    # Gathered in plain dicts first, each group built once: thousands of (reason, event)
    # pairs are common (the admin's sample of 5,000 rows may hold as many reasons).
    counts: dict[str, int] = {}
    firsts: dict[str, dt.datetime | None] = {}
    lasts: dict[str, dt.datetime | None] = {}
    events: dict[str, dict[str, int]] = {}
    for g in found:
        counts[g.reason] = counts.get(g.reason, 0) + g.count
        firsts[g.reason] = _earliest(firsts.get(g.reason), g.first_at)
        lasts[g.reason] = _latest(lasts.get(g.reason), g.last_at)
        per_event = events.setdefault(g.reason, {})
        per_event[g.event] = per_event.get(g.event, 0) + g.count
    groups = [
        DeadLetterGroup(
            reason=reason,
            count=count,
            first_at=firsts[reason],
            last_at=lasts[reason],
            events=dict(sorted(events[reason].items(), key=lambda kv: (-kv[1], kv[0]))),
        )
        for reason, count in counts.items()
    ]
    return sorted(groups, key=lambda g: (-g.count, g.reason))


def _earliest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return min((x for x in (a, b) if x is not None), default=None)


def _latest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return max((x for x in (a, b) if x is not None), default=None)


def show_dead_letter(engine: Engine, key: str) -> EventDetail:
    """One dead row in full, by outbox id or ``$insert_id`` (see ``inspect_event``).

    Raises :class:`FilterError` when ``key`` names no row, or a row that is not dead.
    """
    detail = inspect_event(engine, key)
    if detail.row.state is not OutboxState.DEAD:
        raise FilterError(
            f"event {detail.row.event.id} is {detail.row.state.value}, not a dead letter",
            field="key",
        )
    return detail


def preview_dead_letters(
    engine: Engine,
    f: EventFilter,
    *,
    now: dt.datetime,
    allow_all: bool = False,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
) -> Preview:
    """The dry run of a requeue or discard: the dead rows ``f`` selects. Changes nothing."""
    dead = f.with_states(_DEAD)
    with transaction(engine) as conn:
        check_filter(conn, f, allow_all=allow_all)
        return describe(conn, dead, now=now, sample_size=sample_size)


def requeue_dead_letters(
    engine: Engine,
    f: EventFilter,
    *,
    now: dt.datetime,
    actor: str | None = None,
    allow_all: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: OnBatch | None = None,
) -> BatchResult:
    """Replay the dead rows ``f`` selects (select a group with ``EventFilter(errors=(reason,))``).

    Audited as ``requeue``. Raises :class:`FilterError` before changing anything for a bad or
    (without ``allow_all``) empty filter, or one asking for rows that are not dead.
    """
    dead = f.with_states(_DEAD)
    return run_operation(
        engine,
        dead,
        checked=f,
        allow_all=allow_all,
        action="requeue",
        done="requeued",
        change=requeue_change(dead, now=now),
        now=now,
        actor=actor,
        batch_size=batch_size,
        on_batch=on_batch,
    )


def discard_dead_letters(
    engine: Engine,
    f: EventFilter,
    *,
    reason: str,
    now: dt.datetime,
    actor: str | None = None,
    allow_all: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: OnBatch | None = None,
) -> BatchResult:
    """Delete the dead rows ``f`` selects, in audited batches; ``reason`` says why, for the audit.

    Only dead rows are ever deleted. Raises :class:`FilterError` before changing anything for a
    blank ``reason``, a bad or (without ``allow_all``) empty filter.
    """
    if not reason.strip():
        raise FilterError("a discard needs a reason (why these events are dropped)", field="reason")
    dead = f.with_states(_DEAD)

    def change(conn: Connection, chosen: list[Candidate]) -> tuple[int, int]:
        return requeue_store.delete_dead(conn, dead, ids=[c.id for c in chosen]), 0

    return run_operation(
        engine,
        dead,
        checked=f,
        allow_all=allow_all,
        action="discard",
        done="discarded",
        change=change,
        now=now,
        actor=actor,
        batch_size=batch_size,
        on_batch=on_batch,
        note=f"reason: {reason}",
    )
