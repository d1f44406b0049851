"""Routing at ``track()`` time: which destination (Mixpanel project) each outbox row goes to.

The host registers a router with :func:`set_router`: a function from a :class:`Route` (the
validated event or profile update: its kind, name, distinct_id, organization and properties)
to a destination name. ``track()``, ``track_many()``, ``atrack()``, the profile updates and the
Django integration ask it for every row and store the answer in ``relay_outbox.destination``;
the relay delivers each row to that destination's project only.

A route is part of the event's contract: a name outside the ``destinations`` given to
:func:`set_router`, an answer that is not a string, or a router that raises is refused as any
contract error is (:class:`relay.EventContractError`: logged and nothing written, or raised in
strict mode), never sent to ``default`` instead. Without a router every row goes to
``default``, and the router is not consulted at all (no cost on the tracking path).

The registration is process-wide, like the schema registry: a router is the host's code, set
once at start-up (the Django app does it from ``settings.RELAY_ROUTER``).
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from relay._errors import ConfigurationError, EventContractError
from relay._tables import DEFAULT_DESTINATION, DESTINATION_NAME_PATTERN

__all__ = [
    "Route",
    "Router",
    "current_destinations",
    "refuse_routes",
    "route",
    "router_is_set",
    "set_router",
]

_NAME = re.compile(DESTINATION_NAME_PATTERN)
#: The property (and the group key) that names an organization.
ORGANIZATION_KEY = "organization_id"
#: Characters of an unknown returned name quoted in the refusal (a name is at most 64).
_QUOTED_NAME_LENGTH = 64


@dataclass(frozen=True, slots=True)
class Route:
    """What a router decides on: one validated event or profile update.

    ``kind``: ``"event"``, ``"user"`` (a user profile update) or ``"group"`` (a group profile
    update). ``event``: the event's name, or the update's operation (``"$set"``...).
    ``distinct_id``: the event's or user's distinct_id, or the group's id. ``organization_id``:
    the event's validated ``organization_id`` property (``None`` when empty); for a group
    update whose ``group_key`` is ``organization_id``, the group's id; for a user update, the
    ``organization_id`` the update sets (``$set``/``$set_once``), if any. ``properties``: the
    validated properties (for an event) or the update's properties (empty for ``$unset`` and
    ``$delete``), read-only. ``group_key``: the
    group key of a group update, else ``None``.
    """

    kind: Literal["event", "user", "group"]
    event: str
    distinct_id: str
    organization_id: str | None
    properties: Mapping[str, Any]
    group_key: str | None = None


#: A router: a :class:`Route` in, a destination name out.
Router = Callable[[Route], str]


@dataclass(frozen=True, slots=True)
class _Routing:
    router: Router | None
    destinations: frozenset[str]
    listed: str
    refusal: str | None = None


_NONE = _Routing(None, frozenset({DEFAULT_DESTINATION}), DEFAULT_DESTINATION)
_routing = _NONE


def checked_names(destinations: Iterable[str]) -> tuple[str, ...]:
    if isinstance(destinations, str | bytes) or not isinstance(destinations, Iterable):
        raise ConfigurationError(
            "set_router: destinations must be a list of destination names, not "
            f"{type(destinations).__name__}"
        )
    names = tuple(dict.fromkeys(destinations))
    if not names:
        raise ConfigurationError("set_router: destinations must name at least one destination")
    for name in names:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            shown = (
                repr(name[:_QUOTED_NAME_LENGTH]) if isinstance(name, str) else type(name).__name__
            )
            raise ConfigurationError(
                f"set_router: destination name {shown} must match {DESTINATION_NAME_PATTERN}"
            )
    return names


def set_router(router: Router | None, *, destinations: Iterable[str]) -> None:
    """Route every row tracked from now on in this process through ``router``.

    ``router(route)`` receives a :class:`Route` and returns the name of a destination, one of
    ``destinations`` (the names tracking accepts; normally ``settings.destination_names()``).
    A route outside them, an answer that is not a string or a router that raises is an
    :class:`~relay.EventContractError`: the row is refused as any invalid event is (logged
    without property values and not written; raised in strict mode), never sent elsewhere.

    ``set_router(None, destinations=...)`` removes the router: every row goes to ``default``
    again. Raises :class:`~relay.ConfigurationError` for a router that is not callable or a
    destination name that is not ``[a-z][a-z0-9_-]{0,63}``.
    """
    global _routing  # noqa: PLW0603 - one process-wide registration, replaced atomically
    names = checked_names(destinations)
    if router is not None and not callable(router):
        raise ConfigurationError(
            f"set_router: the router must be callable, not {type(router).__name__}"
        )
    if router is None:
        _routing = _NONE
        return
    _routing = _Routing(router, frozenset(names), ", ".join(sorted(names)))


def refuse_routes(reason: str) -> None:
    """Refuse every row until :func:`set_router` succeeds: the host's router could not be
    installed (``reason``, one line without values), and routing its rows to ``default``
    instead would send organizations' data to the wrong project."""
    global _routing  # noqa: PLW0603 - see set_router
    _routing = _Routing(None, frozenset(), "", refusal=reason)


def router_is_set() -> bool:
    """Whether a router is registered (else every row goes to ``default``)."""
    return _routing.router is not None


def current_destinations() -> frozenset[str]:
    """The destinations the registered router may name (``{"default"}`` without one)."""
    return _routing.destinations


def _organization(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def route(
    kind: Literal["event", "user", "group"],
    *,
    event: str,
    distinct_id: str,
    properties: Mapping[str, Any],
    group_key: str | None = None,
) -> str:
    """The destination of one validated row: the router's answer, checked; ``default`` without.

    Raises :class:`EventContractError` naming ``event`` (and the answer, never a property value)
    when the router raises, answers something that is not a string, or names a destination
    not given to :func:`set_router`.
    """
    routing = _routing
    router = routing.router
    label = event if kind == "event" else f"{kind} profile {event}"
    if router is None:
        if routing.refusal is None:
            return DEFAULT_DESTINATION
        raise EventContractError(f"no router: {routing.refusal}", event=label, field="destination")
    if kind == "event":
        organization = _organization(properties.get(ORGANIZATION_KEY))
    elif kind == "group":
        organization = distinct_id if group_key == ORGANIZATION_KEY else None
    elif event in ("$set", "$set_once"):
        organization = _organization(properties.get(ORGANIZATION_KEY))
    else:
        organization = None
    try:
        name = router(
            Route(
                kind=kind,
                event=event,
                distinct_id=distinct_id,
                organization_id=organization,
                properties=types.MappingProxyType(properties),
                group_key=group_key,
            )
        )
    except Exception as exc:  # noqa: BLE001 - any failure of the host's router is a refusal
        # The router's own message may quote property values: its type and place only.
        raise EventContractError(
            f"the router raised {type(exc).__name__}{_where(exc)}",
            event=label,
            field="destination",
        ) from None
    if not isinstance(name, str):
        raise EventContractError(
            f"the router returned a {type(name).__name__}, not a destination name",
            event=label,
            field="destination",
        )
    if name not in routing.destinations:
        raise EventContractError(
            f"the router returned {name[:_QUOTED_NAME_LENGTH]!r}, which is not a configured "
            f"destination ({routing.listed})",
            event=label,
            field="destination",
        )
    return name


def _where(exc: BaseException) -> str:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return f" at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else ""
