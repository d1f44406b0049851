"""Pause and resume delivery, for everything or one event name, audited.

A pause is one row of ``relay_pause``; the relays keep running and simply do not claim the rows
it covers (their state, due time and attempts stay as they were), so resuming picks them up
where they were. Setting and lifting a pause each write an audit entry (actions ``pause`` and
``resume``) in the same transaction as the change: the trail never disagrees with the table.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from relay._errors import EventNameError, FilterError
from relay._event.naming import check_event_name
from relay._store import audit as audit_store
from relay._store import pauses as pause_store
from relay._store import transaction
from relay._store.pauses import Pause
from relay._tables import PAUSE_REASON_MAX_LENGTH
from relay.admin._audit import default_actor

__all__ = ["Pause", "PauseChange", "list_pauses", "pause", "resume"]


@dataclass(frozen=True, slots=True)
class PauseChange:
    """What ``pause``/``resume`` did: ``changed`` is ``False`` when there was nothing to do."""

    event: str | None
    changed: bool
    pause: Pause | None


def _check_event(event: str | None) -> None:
    if event is None:
        return
    try:
        check_event_name(event)
    except EventNameError as exc:
        raise FilterError(f"--event: {exc}", field="event") from None


def pause(
    engine: Engine, *, event: str | None, reason: str, actor: str | None, now: dt.datetime
) -> PauseChange:
    """Pause delivery of ``event`` (``None``: of everything); audited when it changes anything.

    Raises :class:`FilterError` for an empty or over-long reason or a malformed event name,
    before anything is written. Pausing what is already paused changes nothing (the first
    pause's reason stays) and writes no audit entry.
    """
    _check_event(event)
    reason = reason.strip()
    if not reason:
        raise FilterError("--reason must not be empty", field="reason")
    if len(reason) > PAUSE_REASON_MAX_LENGTH:
        raise FilterError(
            f"--reason is longer than {PAUSE_REASON_MAX_LENGTH} characters", field="reason"
        )
    who = actor or default_actor()
    with transaction(engine, write=True) as conn:
        changed = pause_store.set_pause(conn, event=event, reason=reason, actor=who, now=now)
        if changed:
            audit_store.add_entry(
                conn,
                at=now,
                actor=who,
                action="pause",
                filter={"event": event},
                count=0,
                detail=reason,
            )
        current = next((p for p in pause_store.list_pauses(conn) if p.event == event), None)
    return PauseChange(event=event, changed=changed, pause=current)


def resume(
    engine: Engine, *, event: str | None, actor: str | None, now: dt.datetime
) -> PauseChange:
    """Lift the pause of ``event`` (``None``: the pause of everything); audited when it existed.

    Resuming one event does not lift a pause of everything, nor the reverse.
    """
    _check_event(event)
    who = actor or default_actor()
    with transaction(engine, write=True) as conn:
        lifted = pause_store.lift_pause(conn, event=event)
        if lifted is not None:
            audit_store.add_entry(
                conn,
                at=now,
                actor=who,
                action="resume",
                filter={"event": event},
                count=0,
                detail=f"paused since {lifted.paused_at.isoformat()}: {lifted.reason}",
            )
    return PauseChange(event=event, changed=lifted is not None, pause=lifted)


def list_pauses(engine: Engine) -> list[Pause]:
    """Every pause in force, the pause of everything first."""
    with transaction(engine) as conn:
        return pause_store.list_pauses(conn)
