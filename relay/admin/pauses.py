"""Pause and resume delivery, for everything, one event name or one destination, audited.

A pause is one row of ``relay_pause``; the relays keep running and simply do not claim the rows
it covers (their state, due time and attempts stay as they were), so resuming picks them up
where they were. Setting and lifting a pause each write an audit entry (actions ``pause`` and
``resume``) in the same transaction as the change: the trail never disagrees with the table.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from relay._errors import EventNameError, FilterError
from relay._event.naming import check_event_name
from relay._store import audit as audit_store
from relay._store import pauses as pause_store
from relay._store import transaction
from relay._store.pauses import Pause
from relay._tables import (
    DESTINATION_NAME_MAX_LENGTH,
    DESTINATION_NAME_PATTERN,
    PAUSE_REASON_MAX_LENGTH,
)
from relay.admin._audit import default_actor

__all__ = ["Pause", "PauseChange", "check_destination_name", "list_pauses", "pause", "resume"]

#: A well-formed destination name.
DESTINATION_NAME = re.compile(DESTINATION_NAME_PATTERN)


@dataclass(frozen=True, slots=True)
class PauseChange:
    """What ``pause``/``resume`` did: ``changed`` is ``False`` when there was nothing to do."""

    event: str | None
    changed: bool
    pause: Pause | None
    destination: str | None = None


def _check_event(event: str | None) -> None:
    if event is None:
        return
    try:
        check_event_name(event)
    except EventNameError as exc:
        raise FilterError(f"--event: {exc}", field="event") from None


def check_destination_name(name: str, *, option: str = "--destination") -> str:
    """``name`` if it can be a destination's (``[a-z][a-z0-9_-]{0,63}``); :class:`FilterError`."""
    if not DESTINATION_NAME.fullmatch(name):
        raise FilterError(
            f"{option}: {name[:DESTINATION_NAME_MAX_LENGTH]!r} is not a destination name "
            f"({DESTINATION_NAME_PATTERN})",
            field="destination",
        )
    return name


def _check_scope(event: str | None, destination: str | None) -> None:
    _check_event(event)
    if destination is None:
        return
    if event is not None:
        raise FilterError(
            "--event and --destination exclude each other: a pause covers one event name "
            "or one destination",
            field="destination",
        )
    check_destination_name(destination)


def _filter(event: str | None, destination: str | None) -> dict[str, str | None]:
    return {"event": event} if destination is None else {"destination": destination}


def pause(
    engine: Engine,
    *,
    event: str | None,
    reason: str,
    actor: str | None,
    now: dt.datetime,
    destination: str | None = None,
) -> PauseChange:
    """Pause delivery of ``event`` or to ``destination`` (neither: of everything); audited when
    it changes anything.

    Raises :class:`FilterError` for an empty or over-long reason, a malformed event or
    destination name, or both given, before anything is written. Pausing what is already
    paused changes nothing (the first pause's reason stays) and writes no audit entry.
    Whether ``destination`` is configured is the caller's check (``relay pause`` makes it).
    """
    _check_scope(event, destination)
    reason = reason.strip()
    if not reason:
        raise FilterError("--reason must not be empty", field="reason")
    if len(reason) > PAUSE_REASON_MAX_LENGTH:
        raise FilterError(
            f"--reason is longer than {PAUSE_REASON_MAX_LENGTH} characters", field="reason"
        )
    who = actor or default_actor()
    with transaction(engine, write=True) as conn:
        changed = pause_store.set_pause(
            conn, event=event, reason=reason, actor=who, now=now, destination=destination
        )
        if changed:
            audit_store.add_entry(
                conn,
                at=now,
                actor=who,
                action="pause",
                filter=_filter(event, destination),
                count=0,
                detail=reason,
            )
        current = next(
            (
                p
                for p in pause_store.list_pauses(conn)
                if p.event == event and p.destination == destination
            ),
            None,
        )
    return PauseChange(event=event, changed=changed, pause=current, destination=destination)


def resume(
    engine: Engine,
    *,
    event: str | None,
    actor: str | None,
    now: dt.datetime,
    destination: str | None = None,
) -> PauseChange:
    """Lift the pause of ``event`` or ``destination`` (neither: the pause of everything);
    audited when it existed.

    Resuming one event or destination does not lift a pause of everything, nor the reverse.
    """
    _check_scope(event, destination)
    who = actor or default_actor()
    with transaction(engine, write=True) as conn:
        lifted = pause_store.lift_pause(conn, event=event, destination=destination)
        if lifted is not None:
            audit_store.add_entry(
                conn,
                at=now,
                actor=who,
                action="resume",
                filter=_filter(event, destination),
                count=0,
                detail=f"paused since {lifted.paused_at.isoformat()}: {lifted.reason}",
            )
    return PauseChange(
        event=event, changed=lifted is not None, pause=lifted, destination=destination
    )


def list_pauses(engine: Engine) -> list[Pause]:
    """Every pause in force, the pause of everything first."""
    with transaction(engine) as conn:
        return pause_store.list_pauses(conn)
