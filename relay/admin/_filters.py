"""Turning an operator's words into an :class:`EventFilter`, and checking it before anything runs.

Durations are a number and a unit, chained: ``30m``, ``12h``, ``7d``, ``1d12h`` (units ``w d h m
s``). Instants are ISO 8601 with a UTC offset (``2026-03-01T00:00:00Z``,
``2026-03-01T09:00+09:00``) or a duration meaning "that long before now" (``12h``). A date or
time without an offset is refused rather than guessed: relay stores only aware UTC times, and a
local time silently read as UTC would shift the selection by hours.

Values are bounded to what the database can hold: ids to 63 bits (:data:`MAX_ID`), instants to
:data:`MIN_INSTANT` .. :data:`MAX_INSTANT` (MySQL's ``DATETIME`` range, the narrowest of the
supported databases), durations to :data:`MAX_DURATION`; anything beyond is refused with a
:class:`FilterError`, not passed on to fail inside the driver.

Every problem raises :class:`FilterError` (a :class:`relay._errors.RelayError`) whose message
names the field and the value at fault; nothing has been changed when it is raised.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from sqlalchemy.engine import Connection

from relay._errors import FilterError
from relay._event.registry import is_event_registered
from relay._store import selection
from relay._store.selection import EventFilter, to_state

#: The largest id a BIGINT column holds.
MAX_ID = 2**63 - 1
#: Longest organization id accepted (a ``distinct_id`` is at most 255 characters).
MAX_ORGANIZATION_LENGTH = 255
#: The instants every supported database stores (MySQL/MariaDB ``DATETIME``: years 1000-9999).
MIN_INSTANT = dt.datetime(1000, 1, 1, tzinfo=dt.UTC)
MAX_INSTANT = dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)
#: The longest duration accepted: about 1000 years, so ``now - duration`` stays in range.
MAX_DURATION = dt.timedelta(days=365_000)

_DURATION_PART = re.compile(r"(\d+)([wdhms])")
_DURATION = re.compile(r"(?:\d+[wdhms])+")
_UNIT = {
    "w": dt.timedelta(weeks=1),
    "d": dt.timedelta(days=1),
    "h": dt.timedelta(hours=1),
    "m": dt.timedelta(minutes=1),
    "s": dt.timedelta(seconds=1),
}


def parse_duration(text: str, *, field: str = "duration") -> dt.timedelta:
    """``7d``, ``12h``, ``30m``, ``1d12h`` as a timedelta; :class:`FilterError` otherwise."""
    compact = text.strip().lower()
    if not _DURATION.fullmatch(compact):
        raise FilterError(
            f"malformed duration {text!r} for {field}: expected a number and a unit "
            "(w, d, h, m, s), such as 30m, 12h, 7d or 1d12h",
            field=field,
        )
    too_long = FilterError(
        f"duration for {field} is too long: at most {MAX_DURATION.days} days", field=field
    )
    total = dt.timedelta()
    for n, unit in _DURATION_PART.findall(compact):
        # Compare before multiplying: timedelta raises OverflowError past 999,999,999 days.
        if int(n) > MAX_DURATION // _UNIT[unit]:
            raise too_long
        total += int(n) * _UNIT[unit]
        if total > MAX_DURATION:
            raise too_long
    return total


def _out_of_range(text: str, field: str) -> FilterError:
    return FilterError(
        f"date {text!r} for {field} is out of range: it must fall between "
        f"{MIN_INSTANT.date().isoformat()} and {MAX_INSTANT.date().isoformat()} UTC",
        field=field,
    )


def parse_instant(text: str, *, now: dt.datetime, field: str = "date") -> dt.datetime:
    """An ISO 8601 instant with an offset, or a duration before ``now``, as aware UTC.

    Raises :class:`FilterError` for a malformed value and for one without a UTC offset.
    """
    compact = text.strip()
    if _DURATION.fullmatch(compact.lower()):
        duration = parse_duration(compact, field=field)
        if duration > now - MIN_INSTANT:
            raise _out_of_range(text, field)
        return now - duration
    try:
        value = dt.datetime.fromisoformat(compact)
    except ValueError:
        raise FilterError(
            f"malformed date {text!r} for {field}: expected ISO 8601 with a UTC offset, such "
            "as 2026-03-01T00:00:00Z, or a duration before now, such as 12h",
            field=field,
        ) from None
    if value.tzinfo is None:
        raise FilterError(
            f"date {text!r} for {field} has no UTC offset: add Z or +HH:MM "
            "(naive times are refused, not guessed)",
            field=field,
        )
    try:
        utc = value.astimezone(dt.UTC)
    except OverflowError:  # 9999-12-31T23:59-23:59 is past year 9999 in UTC
        raise _out_of_range(text, field) from None
    if not MIN_INSTANT <= utc <= MAX_INSTANT:
        raise _out_of_range(text, field)
    return utc


def check_organization(organization: str, *, option: str = "--organization") -> str:
    """``organization`` if it can be an organization's id (not blank, at most
    :data:`MAX_ORGANIZATION_LENGTH` characters); :class:`FilterError` naming ``option``."""
    if not organization.strip():
        raise FilterError(f"{option} must not be empty", field="organization")
    if len(organization) > MAX_ORGANIZATION_LENGTH:
        raise FilterError(
            f"{option} is longer than {MAX_ORGANIZATION_LENGTH} characters", field="organization"
        )
    return organization


def _instant(text: str | None, *, now: dt.datetime, field: str) -> dt.datetime | None:
    return None if text is None else parse_instant(text, now=now, field=field)


def build_filter(
    *,
    now: dt.datetime,
    events: Iterable[str] = (),
    event_time_after: str | None = None,
    event_time_before: str | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    distinct_ids: Iterable[str] = (),
    states: Iterable[str] = (),
    ids: Iterable[int] = (),
    insert_ids: Iterable[str] = (),
    errors: Iterable[str] = (),
    error_contains: str | None = None,
    destinations: Iterable[str] = (),
    organizations: Iterable[str] = (),
) -> EventFilter:
    """An :class:`EventFilter` from text, as an operator types it (see the module docstring).

    Relative instants are resolved against ``now``; each of ``organizations`` is checked by
    :func:`check_organization`. Raises :class:`FilterError`.
    """
    return EventFilter(
        events=tuple(events),
        event_time_after=_instant(event_time_after, now=now, field="event_time_after"),
        event_time_before=_instant(event_time_before, now=now, field="event_time_before"),
        created_after=_instant(created_after, now=now, field="created_after"),
        created_before=_instant(created_before, now=now, field="created_before"),
        distinct_ids=tuple(distinct_ids),
        states=tuple(to_state(s) for s in states),
        ids=tuple(ids),
        insert_ids=tuple(insert_ids),
        errors=tuple(errors),
        error_contains=error_contains,
        destinations=tuple(destinations),
        organizations=tuple(check_organization(o, option="organizations") for o in organizations),
    )


def check_filter(conn: Connection, f: EventFilter, *, allow_all: bool = False) -> None:
    """Refuse an empty filter (unless ``allow_all``) and event names nobody knows.

    A name is unknown when it is neither registered in this process nor present in the outbox
    (the CLI does not import the host application's schemas, so rows count as knowledge).
    Raises :class:`FilterError`.
    """
    if f.is_empty() and not allow_all:
        raise FilterError(
            "empty filter: name what to select (events, dates, states, ids...), "
            "or select every row explicitly with --all (allow_all=True in Python)",
            field="filter",
        )
    unregistered = [name for name in f.events if not is_event_registered(name)]
    unknown = sorted(set(unregistered) - selection.events_present(conn, unregistered))
    if unknown:
        names = ", ".join(repr(n) for n in unknown)
        plural = "s" if len(unknown) > 1 else ""
        raise FilterError(
            f"unknown event name{plural} {names}: not registered and not found in the outbox",
            field="events",
        )
