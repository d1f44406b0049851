"""Mixpanel's rate-limit throttle, shared by every relay of one database through ``relay_pause``.

A 429 is the project's state, not the rows': every relay delivering to the project must slow
down together. The throttle is one row of ``relay_pause`` per destination (Mixpanel's cap is
per project), under the scope :func:`throttle_scope`: :data:`relay._tables.PAUSE_THROTTLE` for
``default``, ``*throttle@<name>`` for the others (no new table, no migration): ``paused_at``
holds the time the current backoff ends and ``reason`` its level (how many backoffs in a row
the 429s outlasted). Operators' pauses never see it (:func:`relay._store.pauses.list_pauses`
and the claim's exclusion pass over it); ``relay stats`` shows it.

Level 1 (a first 429) asks relays to slow down; from level 2 on (the 429s outlasted a whole
backoff) no relay claims until the backoff ends. The first delivery after the end lifts it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from relay._store._base import translate_errors
from relay._tables import DEFAULT_DESTINATION, PAUSE_THROTTLE, pause

_REASON_PREFIX = "Mixpanel's rate limit (HTTP 429), backoff level "
#: From this level on, no relay claims until the backoff ends.
PAUSING_LEVEL = 2


def throttle_scope(destination: str = DEFAULT_DESTINATION) -> str:
    """The ``relay_pause.scope`` of ``destination``'s throttle (``*throttle`` for ``default``)."""
    if destination == DEFAULT_DESTINATION:
        return PAUSE_THROTTLE
    return f"{PAUSE_THROTTLE}@{destination}"


def is_throttle_scope(scope: str) -> bool:
    """Whether ``scope`` is some destination's throttle row (never an operator's pause)."""
    return scope == PAUSE_THROTTLE or scope.startswith(f"{PAUSE_THROTTLE}@")


def throttle_rows() -> sa.ColumnElement[bool]:
    """``relay_pause`` rows that are a destination's throttle, as a WHERE clause."""
    return sa.or_(
        pause.c.scope == PAUSE_THROTTLE,
        pause.c.scope.startswith(f"{PAUSE_THROTTLE}@", autoescape=True),
    )


@dataclass(frozen=True, slots=True)
class Throttle:
    """The shared throttle: its backoff ``level`` and when the current backoff ends."""

    level: int
    until: dt.datetime
    actor: str

    def pause_left(self, now: dt.datetime) -> float:
        """Seconds no relay may claim for (0 at level 1, or once the backoff ended)."""
        if self.level < PAUSING_LEVEL:
            return 0.0
        return max(0.0, (self.until - now).total_seconds())

    def to_json(self) -> dict[str, str | int]:
        """JSON-ready values (``until`` in ISO 8601)."""
        return {"level": self.level, "until": self.until.isoformat(), "actor": self.actor}


def _level(reason: str) -> int:
    text = reason.removeprefix(_REASON_PREFIX)
    return int(text) if text.isdigit() else 1


def _from_row(row: sa.Row[tuple[str, str, str, dt.datetime]]) -> Throttle:
    return Throttle(level=_level(row.reason), until=row.paused_at, actor=row.actor)


@dataclass(frozen=True, slots=True)
class PauseRows:
    """Every row of ``relay_pause`` (operators' pauses and the throttles), read in one statement.

    A claim needs both its destination's throttle and the pauses it must pass over: reading the
    small table once (:func:`read_pause_rows`) instead of once for each saves the claim a round
    trip to the database.
    """

    rows: tuple[sa.Row[tuple[str, str, str, dt.datetime]], ...]

    def scopes(self) -> list[str]:
        """The scopes of every row."""
        return [str(row.scope) for row in self.rows]

    def throttle(self, destination: str) -> Throttle | None:
        """``destination``'s throttle among the rows, ``None`` if there is none."""
        scope = throttle_scope(destination)
        return next((_from_row(row) for row in self.rows if row.scope == scope), None)


@translate_errors
def read_pause_rows(conn: Connection) -> PauseRows:
    """Every row of ``relay_pause`` in one read. Lock: none (a plain read)."""
    return PauseRows(rows=tuple(conn.execute(_EVERY_PAUSE).all()))


#: Built once: :func:`read_pause_rows` runs at every claim.
_EVERY_PAUSE: sa.Select[tuple[str, str, str, dt.datetime]] = sa.select(
    pause.c.scope, pause.c.reason, pause.c.actor, pause.c.paused_at
)


def _select(destination: str) -> sa.Select[tuple[str, str, str, dt.datetime]]:
    return sa.select(pause.c.scope, pause.c.reason, pause.c.actor, pause.c.paused_at).where(
        pause.c.scope == throttle_scope(destination)
    )


@translate_errors
def read_throttle(conn: Connection, *, destination: str = DEFAULT_DESTINATION) -> Throttle | None:
    """``destination``'s shared throttle, ``None`` when Mixpanel is not throttling that project.

    Lock: none (a plain read).
    """
    row = conn.execute(_select(destination)).first()
    return None if row is None else _from_row(row)


@translate_errors
def record_throttle(
    conn: Connection,
    *,
    now: dt.datetime,
    delay: Callable[[int], float],
    actor: str,
    destination: str = DEFAULT_DESTINATION,
) -> Throttle:
    """Book a 429 answered at ``now``; returns the throttle now in force.

    A 429 during the current backoff changes nothing (the answers of one burst arrive
    together); one after it raises the level, and ``delay(level)`` seconds from ``now`` is the
    new end. Lock: the throttle's row (``FOR UPDATE``). Guard: the scope is the primary key; two
    relays booking the first 429 at once leave one row (the loser re-reads it).
    """
    scope = throttle_scope(destination)
    row = conn.execute(_select(destination).with_for_update()).first()
    if row is None:
        first = Throttle(level=1, until=now + dt.timedelta(seconds=delay(1)), actor=actor)
        try:
            with conn.begin_nested():
                conn.execute(
                    sa.insert(pause).values(
                        scope=scope,
                        reason=f"{_REASON_PREFIX}{first.level}",
                        actor=actor,
                        paused_at=first.until,
                    )
                )
        except sa.exc.IntegrityError:
            row = conn.execute(
                _select(destination).with_for_update()
            ).one()  # another relay's first 429
        else:
            return first
    current = _from_row(row)
    if current.until > now:
        return current
    level = current.level + 1
    raised = Throttle(level=level, until=now + dt.timedelta(seconds=delay(level)), actor=actor)
    conn.execute(
        sa.update(pause)
        .where(pause.c.scope == scope)
        .values(reason=f"{_REASON_PREFIX}{level}", actor=actor, paused_at=raised.until)
    )
    return raised


@translate_errors
def lift_throttle(
    conn: Connection, *, now: dt.datetime, destination: str = DEFAULT_DESTINATION
) -> bool:
    """Lift ``destination``'s throttle after a delivery at ``now``; ``False`` if none, or its
    backoff runs on.

    Lock: the throttle's row. Guard: ``paused_at <= now``, so a backoff another relay booked
    meanwhile survives a delivery that answered before it.
    """
    lifted = conn.execute(
        sa.delete(pause).where(
            pause.c.scope == throttle_scope(destination), pause.c.paused_at <= now
        )
    )
    return bool(lifted.rowcount)
