"""Pauses of delivery in ``relay_pause``: set, lift, list, and what the claim must pass over.

A pause covers all delivery (scope :data:`relay._tables.PAUSE_ALL`) or one event name. Rows a
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
from relay._store.throttle import throttle_rows
from relay._tables import PAUSE_ALL, pause


@dataclass(frozen=True, slots=True)
class Pause:
    """One pause: ``event`` is ``None`` for all delivery."""

    event: str | None
    reason: str
    actor: str
    paused_at: dt.datetime

    def to_json(self) -> dict[str, str | None]:
        """JSON-ready values (``paused_at`` in ISO 8601)."""
        return {
            "event": self.event,
            "reason": self.reason,
            "actor": self.actor,
            "paused_at": self.paused_at.isoformat(),
        }


def _scope(event: str | None) -> str:
    return PAUSE_ALL if event is None else event


@translate_errors
def set_pause(
    conn: Connection, *, event: str | None, reason: str, actor: str, now: dt.datetime
) -> bool:
    """Pause ``event`` (or all delivery); ``False`` when that pause already existed (unchanged).

    Lock: the pause's row (primary key). Guard: the scope is the primary key, so two operators
    pausing the same scope at once leave one row; the later one gets ``False``.
    """
    exists = conn.execute(
        sa.select(pause.c.scope).where(pause.c.scope == _scope(event)).with_for_update()
    ).first()
    if exists is not None:
        return False
    conn.execute(
        sa.insert(pause).values(scope=_scope(event), reason=reason, actor=actor, paused_at=now)
    )
    return True


@translate_errors
def lift_pause(conn: Connection, *, event: str | None) -> Pause | None:
    """Lift the pause of ``event`` (or of all delivery); returns it, ``None`` if there was none.

    Lock: the pause's row. Guard: the primary key.
    """
    found = _read(conn, sa.select(pause).where(pause.c.scope == _scope(event)))
    if not found:
        return None
    conn.execute(sa.delete(pause).where(pause.c.scope == _scope(event)))
    return found[0]


@translate_errors
def list_pauses(conn: Connection) -> list[Pause]:
    """Every pause, all delivery first, then by event name. Lock: none (a plain read)."""
    operators = sa.select(pause).where(sa.not_(throttle_rows()))  # see throttle.py
    return sorted(_read(conn, operators), key=lambda p: (p.event is not None, p.event or ""))


def _read(conn: Connection, stmt: sa.Select[tuple[str, str, str, dt.datetime]]) -> list[Pause]:
    return [
        Pause(
            event=None if row.scope == PAUSE_ALL else row.scope,
            reason=row.reason,
            actor=row.actor,
            paused_at=row.paused_at,
        )
        for row in conn.execute(stmt)
    ]
