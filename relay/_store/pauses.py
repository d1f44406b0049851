"""Pauses of delivery in ``relay_pause``: set, lift, list, and what the claim must pass over.

A pause covers all delivery (scope :data:`relay._tables.PAUSE_ALL`), one event name, or one
destination (scope ``"@" + name``, :data:`relay._tables.PAUSE_DESTINATION_PREFIX`). Rows a
pause covers stay exactly as they are: pending, due, attempts untouched; the claim simply does
not take them (:func:`relay._store.lanes.claim_exclusion`), so lifting the pause resumes them
where they were.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from relay._store._base import translate_errors
from relay._tables import PAUSE_ALL, PAUSE_DESTINATION_PREFIX, PAUSE_THROTTLE, pause


@dataclass(frozen=True, slots=True)
class Pause:
    """One pause: of one ``event``, of one ``destination``, or (both ``None``) of all delivery."""

    event: str | None
    reason: str
    actor: str
    paused_at: dt.datetime
    destination: str | None = None

    @property
    def everything(self) -> bool:
        """Whether this is the pause of all delivery."""
        return self.event is None and self.destination is None

    def to_json(self) -> dict[str, str | None]:
        """JSON-ready values (``paused_at`` in ISO 8601)."""
        return {
            "event": self.event,
            "destination": self.destination,
            "reason": self.reason,
            "actor": self.actor,
            "paused_at": self.paused_at.isoformat(),
        }


def _scope(event: str | None, destination: str | None = None) -> str:
    if destination is not None:
        return PAUSE_DESTINATION_PREFIX + destination
    return PAUSE_ALL if event is None else event


@translate_errors
def set_pause(
    conn: Connection,
    *,
    event: str | None,
    reason: str,
    actor: str,
    now: dt.datetime,
    destination: str | None = None,
) -> bool:
    """Pause ``event``, ``destination`` or all delivery; ``False`` when that pause already
    existed (unchanged).

    Lock: the pause's row (primary key). Guard: the scope is the primary key, so two operators
    pausing the same scope at once leave one row; the later one gets ``False``.
    """
    scope = _scope(event, destination)
    exists = conn.execute(
        sa.select(pause.c.scope).where(pause.c.scope == scope).with_for_update()
    ).first()
    if exists is not None:
        return False
    conn.execute(sa.insert(pause).values(scope=scope, reason=reason, actor=actor, paused_at=now))
    return True


@translate_errors
def lift_pause(
    conn: Connection, *, event: str | None, destination: str | None = None
) -> Pause | None:
    """Lift the pause of ``event``, of ``destination`` or of all delivery; returns it, ``None``
    if there was none.

    Lock: the pause's row. Guard: the primary key.
    """
    scope = _scope(event, destination)
    found = _read(conn, sa.select(pause).where(pause.c.scope == scope))
    if not found:
        return None
    conn.execute(sa.delete(pause).where(pause.c.scope == scope))
    return found[0]


@translate_errors
def list_pauses(conn: Connection) -> list[Pause]:
    """Every pause: all delivery first, then destinations, then event names, each by name.

    Lock: none (a plain read). The throttle rows (``*throttle``, ``*throttle@<destination>``,
    see throttle.py) are not operators' pauses and are left out.
    """
    operators = sa.select(pause).where(
        pause.c.scope != PAUSE_THROTTLE,
        ~pause.c.scope.startswith(PAUSE_THROTTLE + PAUSE_DESTINATION_PREFIX, autoescape=True),
    )
    return sorted(
        _read(conn, operators),
        key=lambda p: (not p.everything, p.destination is None, p.destination or p.event or ""),
    )


def _read(conn: Connection, stmt: sa.Select[tuple[str, str, str, dt.datetime]]) -> list[Pause]:
    found = []
    for row in conn.execute(stmt):
        scope: str = row.scope
        destination = (
            scope[len(PAUSE_DESTINATION_PREFIX) :]
            if scope.startswith(PAUSE_DESTINATION_PREFIX)
            else None
        )
        event = None if scope == PAUSE_ALL or destination is not None else scope
        found.append(
            Pause(
                event=event,
                reason=row.reason,
                actor=row.actor,
                paused_at=row.paused_at,
                destination=destination,
            )
        )
    return found
