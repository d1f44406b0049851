"""The claim's fair lane: live rows first, replayed rows behind them with a fixed share.

A replay or requeue of a million rows makes them all due at once. Ordered by due time alone,
every live event tracked after it would wait behind the whole replay. Rows therefore carry a
:class:`relay._tables.Lane`: ``track()`` writes ``LIVE``, a replay or requeue sets ``BULK``, and
each claim reads the two lanes apart (each one range of ``ix_relay_outbox_pending_due``,
``(state, lane, next_attempt_at)``):

* the live lane first, in due order, up to the claim's limit;
* the bulk lane for the rest, and never less than ``limit // BULK_SHARE_DIVISOR`` rows while
  bulk rows are due, so a replay still progresses when live traffic alone would fill every
  claim (a live burst then waits at most that share longer);
* but never more than :func:`bulk_cap` bulk rows (a quarter of a full claim): a live event
  that commits while replay batches are in flight waits for the smaller batch ahead of it,
  not a full one. ``bench/replay_fairness.py``: a quarter cut live p99 about threefold during
  a replay for about the same drain time; an eighth cut it further but drained the replay
  40% slower.

Within a lane the order is the old one (``next_attempt_at, id``). Live rows come first in the
candidates, so the byte budget is spent on them first. Rows of paused events (``relay_pause``,
:mod:`relay._store.pauses`) are passed over in both lanes.

A claim is for one destination (one Mixpanel project): the index leads with
``(state, destination, lane, ...)``, so each destination's lanes are ranges of their own, and
a destination that is paused (scope ``"@" + name``) or throttled claims nothing while the
others go on.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from relay._store._base import plain_rows
from relay._store.throttle import PauseRows, is_throttle_scope
from relay._tables import (
    DEFAULT_DESTINATION,
    PAUSE_ALL,
    PAUSE_DESTINATION_PREFIX,
    Lane,
    pause,
)

#: The bulk lane's reserved share of each claim: one row in this many.
BULK_SHARE_DIVISOR = 8
#: The bulk lane's rows in one claim are at most a full claim divided by this...
BULK_CAP_DIVISOR = 4
#: ...but never fewer than this many (small claims gain nothing from a cap).
BULK_CAP_MIN_ROWS = 100


def bulk_cap(limit: int) -> int:
    """At most this many bulk rows go into a claim of ``limit`` rows."""
    return min(limit, max(BULK_CAP_MIN_ROWS, limit // BULK_CAP_DIVISOR))


@dataclass(frozen=True, slots=True)
class Exclusion:
    """What a claim must pass over: everything, or the rows of these events."""

    everything: bool
    events: tuple[str, ...]


def claim_exclusion(
    conn: Connection,
    *,
    destination: str = DEFAULT_DESTINATION,
    pause_rows: PauseRows | None = None,
) -> Exclusion:
    """What a claim for ``destination`` in this transaction must pass over (read at each
    claim: a small table; ``pause_rows`` when the claim's transaction has read it already).

    Everything while all delivery or this destination is paused; else the paused events.
    Other destinations' pauses and every throttle row are not this claim's business.
    Lock: none (a plain read, in the claim's transaction). A pause set while a claim runs
    takes effect from the next claim; rows already claimed are sent.
    """
    # The rate-limit throttles share the table but are the drainer's business, not pauses.
    read = (
        pause_rows.scopes()
        if pause_rows is not None
        else [str(s) for s in conn.execute(sa.select(pause.c.scope)).scalars()]
    )
    scopes = [s for s in read if not is_throttle_scope(s)]
    if PAUSE_ALL in scopes or PAUSE_DESTINATION_PREFIX + destination in scopes:
        return Exclusion(everything=True, events=())
    events = (s for s in scopes if not s.startswith(PAUSE_DESTINATION_PREFIX))
    return Exclusion(everything=False, events=tuple(sorted(events)))


@dataclass(frozen=True, slots=True)
class Candidates:
    """The rows a claim may take (id, due, size, and on PostgreSQL the lane): the first
    ``live`` of them are live rows."""

    rows: list[Sequence[Any]]
    live: int
    #: The bulk lane was read up to its cap: more bulk rows may be due.
    more: bool = False

    def last_live_due(self, taken: Container[int]) -> dt.datetime | None:
        """The latest due time among the live rows in ``taken`` (ids), ``None`` if none.

        What a following claim may resume the live lane from (a live row left behind is due
        no earlier: the lane is read in due order).
        """
        dues = [row[1] for row in self.rows[: self.live] if row[0] in taken]
        return max(dues) if dues else None


class SelectLane(Protocol):
    """Builds (or looks up) the statement that reads one lane's candidates: see
    :func:`claim_candidates`."""

    def __call__(self, lane: Lane, *, resume: bool, excluding: bool) -> sa.Select[Any]: ...


def _lane_of(row: Sequence[Any]) -> int:
    return int(row[3])


class SelectBoth(Protocol):
    """Builds (or looks up) the statement that reads both lanes' candidates at once: see
    :func:`claim_candidates`."""

    def __call__(self, *, resume: bool, excluding: bool) -> sa.Select[Any]: ...


def claim_candidates(
    conn: Connection,
    *,
    select_lane: SelectLane,
    select_both: SelectBoth | None = None,
    params: Mapping[str, Any],
    limit: int,
    due_from: dt.datetime | None,
    exclusion: Exclusion,
) -> Candidates:
    """Read up to ``limit`` candidates for a claim, lane by lane.

    ``select_lane(lane, resume=..., excluding=...)`` is the statement reading ``(id,
    next_attempt_at, size)`` of one lane's due pending rows in due order, with bind parameters
    ``limit``, ``due_from`` (when ``resume``) and ``excluded`` (when ``excluding``) filled in
    here, and ``params`` (its others). ``due_from`` applies to the live lane only (replayed
    rows share one due time, which a cursor by due time cannot skip past anyway).

    ``select_both(resume=..., excluding=...)``, where the database can lock rows read through
    a ``UNION`` (PostgreSQL), reads both lanes in one statement: ``(id, next_attempt_at, size,
    lane)``, live rows first, with ``limit`` and ``bulk_limit`` bind parameters. The bulk lane
    is then read up to its cap whatever the live lane holds, and the rows beyond its share
    are not taken (their locks end with the claim's transaction): the same rows as the
    lane-by-lane reads.
    """
    values: dict[str, Any] = {**params, "limit": limit}
    if due_from is not None:
        values["due_from"] = due_from
    excluding = bool(exclusion.events)
    if excluding:
        values["excluded"] = list(exclusion.events)
    resume = due_from is not None
    reserve = limit // BULK_SHARE_DIVISOR

    def room(live: int) -> int:
        return min(limit - min(live, limit - reserve), bulk_cap(limit))

    if select_both is not None:
        both = select_both(resume=resume, excluding=excluding)
        # PostgreSQL only, whose columns here have no result processor: plain rows.
        rows = plain_rows(conn.execute(both, {**values, "bulk_limit": bulk_cap(limit)}))
        # Live rows first (lane 0), then bulk (lane 1): split where the bulk lane begins.
        first_bulk = bisect.bisect_left(rows, int(Lane.BULK), key=_lane_of)
        live, bulk_read = rows[:first_bulk], rows[first_bulk:]
        bulk_room = room(len(live))
        bulk = bulk_read[:bulk_room]
        more = bool(bulk) and len(bulk_read) >= bulk_room
    else:
        statement = select_lane(Lane.LIVE, resume=resume, excluding=excluding)
        live = list(conn.execute(statement, values))
        bulk_room = room(len(live))
        bulk = []
        if bulk_room > 0:
            statement = select_lane(Lane.BULK, resume=False, excluding=excluding)
            values.pop("due_from", None)
            bulk = list(conn.execute(statement, {**values, "limit": bulk_room}))
        more = bool(bulk) and len(bulk) >= bulk_room
    kept = live[: limit - len(bulk)]
    return Candidates(rows=[*kept, *bulk], live=len(kept), more=more)
