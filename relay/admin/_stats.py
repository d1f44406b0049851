"""``relay stats``: the backlog and its health in a handful of index-backed reads.

Cheap with millions of delivered rows present: pending numbers walk the partial pending index,
dead and recently delivered counts walk ``(state, finished_at)``; nothing counts the whole
table (see ``relay._store.stats`` and ``bench/stats_scale.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from relay._store import maintenance, transaction
from relay._store import pauses as pause_store
from relay._store import stats as stats_store
from relay._store.pauses import Pause
from relay._store.stats import DestinationCounts
from relay._store.throttle import Throttle, read_throttle
from relay._tables import DEFAULT_DESTINATION, OutboxState

MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Stats:
    """The outbox at ``at``.

    ``pending`` rows wait for the relay, ``due`` of them may be sent now, ``inflight`` are
    leased by a relay; ``oldest_pending_age_seconds`` is how long the oldest pending row has
    waited since it was written (``None`` with no pending row). ``dead_by_reason`` maps each
    dead-letter reason to its count, largest first; ``pending_by_event`` likewise per event.
    ``paused`` lists the pauses in force (``relay pause``), the pause of all delivery first.
    ``delivered_last_minute`` over 60 is the effective delivery rate of all relays
    (:attr:`delivery_rate`); ``throttle`` is Mixpanel's rate-limit throttle the relays share
    (``None`` when Mixpanel is not throttling). ``destination``: the one destination every
    number is about (``None``: all of them); ``by_destination``: pending (due, in flight), dead
    and delivered in the last hour per destination that has any (all destinations' stats only).
    ``pending_by_unconfigured_destination``: pending rows per destination that is not among the
    configured ones :func:`stats` was given: rows no relay of those settings delivers (empty
    when it was given none).
    """

    at: dt.datetime
    pending: int
    due: int
    inflight: int
    oldest_pending_age_seconds: float | None
    dead: int
    dead_by_reason: dict[str, int]
    delivered_last_hour: int
    delivered_last_day: int
    pending_by_event: dict[str, int]
    paused: list[Pause] = field(default_factory=list)
    delivered_last_minute: int = 0
    throttle: Throttle | None = None
    destination: str | None = None
    by_destination: list[DestinationCounts] = field(default_factory=list)
    pending_by_unconfigured_destination: dict[str, int] = field(default_factory=dict)

    @property
    def delivery_rate(self) -> float:
        """Events per second delivered over the last minute, by every relay."""
        return self.delivered_last_minute / 60.0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready values (``at`` in ISO 8601)."""
        out = asdict(self)
        out["at"] = self.at.isoformat()
        out["paused"] = [p.to_json() for p in self.paused]
        out["delivery_rate"] = round(self.delivery_rate, 1)
        out["throttle"] = None if self.throttle is None else self.throttle.to_json()
        out["by_destination"] = [asdict(d) for d in self.by_destination]
        return out


def stats(
    engine: Engine,
    *,
    now: dt.datetime,
    destination: str | None = None,
    configured: Collection[str] | None = None,
) -> Stats:
    """Read every number of :class:`Stats` at ``now``, in one short read transaction.

    ``destination``: count only the rows going there (the pauses and the throttle are listed
    whole). Without it, :attr:`Stats.by_destination` breaks the backlog down per destination.
    ``configured``: the destinations configured (``RelaySettings.destination_names()``);
    pending rows going elsewhere are counted in
    :attr:`Stats.pending_by_unconfigured_destination` (from the same reads, no other query).
    """
    with transaction(engine) as conn:
        if destination is None:
            pending = maintenance.pending_gauges(conn, now=now)
            per_destination = stats_store.by_destination(conn, now=now, delivered_since=now - HOUR)
        else:
            pending = stats_store.pending_gauges_of(conn, now=now, destination=destination)
            per_destination = []
        dead = stats_store.dead_groups(conn, destination=destination)
        last_day, last_hour, last_minute = stats_store.finished_since(
            conn,
            state=OutboxState.DELIVERED,
            since=(now - DAY, now - HOUR, now - MINUTE),
            destination=destination,
        )
        by_event = stats_store.pending_by_event(conn, destination=destination)
        paused = pause_store.list_pauses(conn)
        throttle = read_throttle(conn, destination=destination or DEFAULT_DESTINATION)
    by_reason: dict[str, int] = {}
    for group in dead:
        by_reason[group.reason] = by_reason.get(group.reason, 0) + group.count
    unconfigured: dict[str, int] = {}
    if configured is not None:
        counts = (
            {d.destination: d.pending for d in per_destination}
            if destination is None
            else {destination: pending.pending}
        )
        unconfigured = {n: c for n, c in counts.items() if c and n not in configured}
    oldest = pending.oldest_created_at
    return Stats(
        at=now,
        pending=pending.pending,
        due=pending.due,
        inflight=pending.inflight,
        oldest_pending_age_seconds=(
            None if oldest is None else max(0.0, (now - oldest).total_seconds())
        ),
        dead=sum(by_reason.values()),
        dead_by_reason=dict(sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))),
        delivered_last_hour=last_hour,
        delivered_last_day=last_day,
        pending_by_event=by_event,
        paused=paused,
        delivered_last_minute=last_minute,
        throttle=throttle,
        destination=destination,
        by_destination=per_destination,
        pending_by_unconfigured_destination=unconfigured,
    )
