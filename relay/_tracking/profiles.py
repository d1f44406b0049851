"""``update_profile()`` and ``update_group()``: profile updates written to the outbox like events.

A profile update is validated (operation, identity, the PII guard on every property name and
value, Mixpanel's limits) and written as an outbox row of kind ``user`` or ``group`` inside
the caller's transaction, exactly as ``track()`` writes an event: committed with it, gone with
its rollback, fire-and-forget unless strict. The relay sends it to ``/engage`` or ``/groups``
(:mod:`relay._mixpanel.profiles`), in outbox order per profile.

Only idempotent operations are taken: delivery is at least once, so an update may reach
Mixpanel twice. ``$set``, ``$set_once``, ``$unset``, ``$union``, ``$remove`` and ``$delete``
give the same profile when applied twice in a row; ``$add`` and ``$append`` do not (a re-sent
``$add`` adds twice) and are refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from relay._errors import EventValidationError, ProfileUpdateError, RelayError
from relay._event.limits import (
    check_distinct_id,
    check_profile_properties,
    check_profile_update,
)
from relay._store import write_event
from relay._store.profiles import profile_key, profile_row
from relay._tables import DEFAULT_DESTINATION, RowKind
from relay._tracking import config
from relay._tracking.guard import FireAndForget
from relay._tracking.prepare import new_insert_id
from relay._tracking.routing import route

logger = structlog.get_logger("relay.tracking")

#: The operations a profile update may carry (all idempotent).
PROFILE_OPERATIONS = ("$set", "$set_once", "$unset", "$union", "$remove", "$delete")
#: Operations Mixpanel has that the relay refuses, and why.
REFUSED_OPERATIONS = {
    "$add": "a re-sent $add would add twice",
    "$append": "a re-sent $append would append twice",
}
#: Keys the relay sets on every update (or that name the profile): never in ``properties``.
_RESERVED_KEYS = frozenset(
    {"$token", "$ip", "ip", "$distinct_id", "$group_key", "$group_id", "$time", "$ignore_time"}
)


@dataclass(frozen=True, slots=True)
class PreparedProfileUpdate:
    """A validated profile update, ready to be stored."""

    kind: RowKind
    operation: str
    identity: str
    key: str
    update: dict[str, Any]
    update_json: bytes
    insert_id: str
    destination: str = DEFAULT_DESTINATION


def _label(kind: RowKind, operation: object) -> str:
    op = operation if isinstance(operation, str) and operation in PROFILE_OPERATIONS else "?"
    return f"{kind.value} profile {op}"


def _check_operation(kind: RowKind, operation: object) -> str:
    if operation in REFUSED_OPERATIONS:
        raise ProfileUpdateError(
            f"{operation} is refused: relay delivers at least once and "
            f"{REFUSED_OPERATIONS[str(operation)]}; use $set with the computed value, or $union",
            event=f"{kind.value} profile {operation}",
        )
    if not isinstance(operation, str) or operation not in PROFILE_OPERATIONS:
        raise ProfileUpdateError(
            f"operation must be one of {', '.join(PROFILE_OPERATIONS)}",
            event=f"{kind.value} profile ?",
        )
    return operation


def _check_value(label: str, operation: str, properties: object) -> Any:
    """The operation's value in Mixpanel's shape, checked; raises ``ProfileUpdateError``."""
    if operation == "$delete":
        if properties not in (None, {}, ""):
            raise ProfileUpdateError("$delete takes no properties (pass None)", event=label)
        return ""
    if operation == "$unset":
        if (
            isinstance(properties, str | bytes)
            or not isinstance(properties, Sequence)
            or not properties
            or not all(isinstance(name, str) for name in properties)
        ):
            raise ProfileUpdateError("$unset takes a non-empty list of property names", event=label)
        names = list(properties)
        _check_properties(label, dict.fromkeys(names, True))
        return names
    if not isinstance(properties, Mapping) or not properties:
        raise ProfileUpdateError(
            f"{operation} takes a non-empty mapping of properties", event=label
        )
    if operation == "$union":
        for index, value in enumerate(properties.values()):
            # The spec's $union: "a list of values" of strings or numbers, nothing else.
            if (
                not isinstance(value, list | tuple)
                or not value
                or not all(_is_union_item(item) for item in value)
            ):
                raise ProfileUpdateError(
                    "$union values must be non-empty lists of strings or numbers",
                    event=label,
                    field=_safe_name(properties, index),
                )
        properties = {name: list(value) for name, value in properties.items()}
    _check_properties(label, properties)
    return dict(properties)


def _is_union_item(item: object) -> bool:
    return isinstance(item, str | int | float) and not isinstance(item, bool)


def _safe_name(properties: Mapping[str, Any], index: int) -> str:
    """The name of the ``index``-th property if it passes the guard, else its position."""
    name = list(properties)[index]
    try:
        _check_properties("name", {name: True})
    except ProfileUpdateError:
        return f"properties[key {index}]"
    return str(name)


def _check_properties(label: str, properties: Mapping[str, Any]) -> None:
    for index, name in enumerate(properties):
        if isinstance(name, str) and name in _RESERVED_KEYS:
            raise ProfileUpdateError(
                "the relay sets this key itself (or it names the profile)",
                event=label,
                field=name if name.startswith("$") else f"properties[key {index}]",
            )
    try:
        check_profile_properties(label, properties)
    except EventValidationError as exc:
        raise ProfileUpdateError(exc.reason, event=label, field=exc.field) from None


def prepare_profile_update(
    kind: RowKind,
    *,
    operation: object,
    properties: object,
    distinct_id: object = None,
    group_key: object = None,
    group_id: object = None,
) -> PreparedProfileUpdate:
    """Validate a user (``distinct_id``) or group (``group_key``, ``group_id``) update.

    Pure apart from the registered router, which picks the destination (its refusal is an
    :class:`EventContractError`). Raises :class:`ProfileUpdateError` naming the update and the
    field, never a value.
    """
    op = _check_operation(kind, operation)
    label = _label(kind, op)
    if kind is RowKind.USER:
        if not isinstance(distinct_id, str):
            raise ProfileUpdateError("distinct_id must be a non-empty string", event=label)
        try:
            identity = check_distinct_id(label, distinct_id)
        except EventValidationError as exc:
            raise ProfileUpdateError(exc.reason, event=label, field="distinct_id") from None
        head: dict[str, Any] = {"$distinct_id": identity}
        key_parts: tuple[str, ...] = (identity,)
    else:
        if not isinstance(group_key, str) or not group_key:
            raise ProfileUpdateError("group_key must be a non-empty string", event=label)
        if not isinstance(group_id, str) or not group_id:
            raise ProfileUpdateError("group_id must be a non-empty string", event=label)
        # The key is a property name of every event, the id a value: both pass the PII guard.
        _check_properties(label, {group_key: group_id})
        identity = group_id
        head = {"$group_key": group_key, "$group_id": group_id}
        key_parts = (group_key, group_id)
    value = _check_value(label, op, properties)
    update = {**head, op: value}
    try:
        update_json = check_profile_update(label, update)
    except EventValidationError as exc:
        # One refusal, one type: every refused profile update is a ProfileUpdateError.
        raise ProfileUpdateError(exc.reason, event=label, field=exc.field) from None
    destination = route(
        "user" if kind is RowKind.USER else "group",
        event=op,
        distinct_id=identity,
        properties=value if isinstance(value, dict) else {},
        group_key=group_key if isinstance(group_key, str) and kind is RowKind.GROUP else None,
    )
    return PreparedProfileUpdate(
        kind=kind,
        operation=op,
        identity=identity,
        key=profile_key(kind, *key_parts, destination=destination),
        destination=destination,
        update=update,
        update_json=update_json,
        insert_id=new_insert_id(),
    )


def update_profile(
    session: Session | Connection,
    *,
    distinct_id: str,
    operation: str,
    properties: Mapping[str, Any] | Sequence[str] | None,
    strict: bool | None = None,
) -> str | None:
    """Write an update of the user profile ``distinct_id`` to the outbox, in the caller's
    transaction.

    ``operation`` is one of ``$set``, ``$set_once``, ``$unset``, ``$union``, ``$remove``,
    ``$delete``; ``$add`` and ``$append`` are refused (delivery is at least once: a re-sent
    ``$add`` would add twice). ``properties`` is a mapping for ``$set``, ``$set_once``,
    ``$union`` (lists as values) and ``$remove``; a list of names for ``$unset``; ``None`` for
    ``$delete``. Every name and value passes the PII guard and Mixpanel's limits, as event
    properties do. Updates of one profile reach Mixpanel in outbox order, one at a time.

    Returns the row's ``$insert_id``, or ``None`` when the update failed and was logged;
    strict mode (as for ``track()``) raises ``ProfileUpdateError`` or ``StoreError`` instead.
    """
    return _write(
        session,
        RowKind.USER,
        strict=strict,
        operation=operation,
        properties=properties,
        distinct_id=distinct_id,
    )


def update_group(
    session: Session | Connection,
    *,
    group_key: str,
    group_id: str,
    operation: str,
    properties: Mapping[str, Any] | Sequence[str] | None,
    strict: bool | None = None,
) -> str | None:
    """Write an update of the group profile ``(group_key, group_id)`` to the outbox.

    As :func:`update_profile`, for Mixpanel's group profiles (``/groups``): ``group_key`` is
    the group key's property name (``organization_id``), ``group_id`` the group's id.
    """
    return _write(
        session,
        RowKind.GROUP,
        strict=strict,
        operation=operation,
        properties=properties,
        group_key=group_key,
        group_id=group_id,
    )


def _write(
    session: Session | Connection,
    kind: RowKind,
    *,
    strict: bool | None,
    operation: object,
    properties: object,
    **identity: object,
) -> str | None:
    strict = config.is_strict(strict)
    label = _label(kind, operation)
    with FireAndForget(
        lambda exc: _report_failure(label, exc), strict=strict, report_raised=True
    ) as guard:
        prepared = prepare_profile_update(
            kind, operation=operation, properties=properties, **identity
        )
        values = profile_row(
            kind=prepared.kind,
            insert_id=prepared.insert_id,
            operation=prepared.operation,
            identity=prepared.identity,
            key=prepared.key,
            update_json=prepared.update_json,
            now=dt.datetime.now(dt.UTC),
            destination=prepared.destination,
        )
        write_event(session, values=values)
    if guard.failed:  # fire-and-forget: no failure may reach the business code
        return None
    return prepared.insert_id


def _report_failure(label: str, exc: Exception) -> None:
    """Log a failed profile update: relay's errors say what is wrong, others only their type."""
    if isinstance(exc, RelayError):
        logger.error(
            "mixpanel_profile_update_failed",
            update=label,
            error_type=type(exc).__name__,
            field=getattr(exc, "field", None),
            reason=str(exc),
        )
        return
    logger.error("mixpanel_profile_update_failed", update=label, error_type=type(exc).__name__)
