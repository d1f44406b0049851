"""Mixpanel's user and group profile updates (``/engage``, ``/groups``) as pure functions.

This project's own reading of the ingestion spec (``/engage#profile-*``, ``/groups#group-*``)
and ``mixpanel-docs/user-profiles.mdx`` / ``user-profile-limits.mdx``: each update names its
profile (``$distinct_id``, or ``$group_key`` and ``$group_id``), carries the project token in
``$token`` and exactly one operation. ``judge_update`` checks one update, ``apply_update``
computes the profile after it; neither does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from relay.testing.mixpanel_standin._rules import Failure

#: "limit ... the total number profile updates that can be sent per request to 2000".
MAX_UPDATES = 2000
#: "Each User Profile can contain up to 2000 properties"; more "will fail".
MAX_PROFILE_PROPERTIES = 2000
USER_OPERATIONS = ("$set", "$set_once", "$add", "$union", "$append", "$remove", "$unset", "$delete")
GROUP_OPERATIONS = ("$set", "$set_once", "$union", "$remove", "$unset", "$delete")
#: Optional modifiers an update may carry besides its operation.
_MODIFIERS = frozenset({"$ip", "$time", "$ignore_time", "$ignore_alias"})

#: ("user", "", distinct_id) or ("group", group_key, group_id).
ProfileKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Update:
    """One valid profile update: whose profile, which operation, and its value."""

    key: ProfileKey
    operation: str
    value: Any


def judge_update(record: Any, *, token: str, group: bool) -> Update | Failure:
    """The valid update a record is, or why Mixpanel refuses it (the first problem)."""
    if not isinstance(record, dict):
        return Failure("record", "each update must be a JSON object")
    if record.get("$token") != token:
        return Failure("$token", "'$token' is not a valid project token")
    key = _profile_key(record, group=group)
    if isinstance(key, Failure):
        return key
    allowed = GROUP_OPERATIONS if group else USER_OPERATIONS
    identity = {"$token", "$group_key", "$group_id"} if group else {"$token", "$distinct_id"}
    unknown = sorted(record.keys() - identity - _MODIFIERS - set(allowed))
    if unknown:
        return Failure(unknown[0], f"'{unknown[0]}' is not a {_kind(group)} profile operation")
    operations = [name for name in allowed if name in record]
    if len(operations) != 1:
        return Failure("record", f"an update must carry exactly one of {', '.join(allowed)}")
    operation = operations[0]
    failure = _value_failure(operation, record[operation])
    return failure or Update(key=key, operation=operation, value=record[operation])


def apply_update(
    properties: Mapping[str, Any] | None, update: Update
) -> dict[str, Any] | Failure | None:
    """The profile's properties after ``update`` (``None``: no profile), or why it fails.

    ``$set`` overwrites, ``$set_once`` only fills absent names, ``$add`` adds to a number
    (absent: 0), ``$union`` adds list items not yet present, ``$append`` appends one item,
    ``$remove`` removes every equal item, ``$unset`` drops names, ``$delete`` drops the profile.
    A result over ``MAX_PROFILE_PROPERTIES`` fails and leaves the profile as it was.
    """
    if update.operation == "$delete":
        return None
    current = dict(properties or {})
    _OPERATIONS[update.operation](current, update.value)
    if len(current) > MAX_PROFILE_PROPERTIES:
        return Failure(
            update.operation, f"a profile holds at most {MAX_PROFILE_PROPERTIES} properties"
        )
    return current


def _set(current: dict[str, Any], value: Any) -> None:
    current.update(value)


def _set_once(current: dict[str, Any], value: Any) -> None:
    current.update({k: v for k, v in value.items() if k not in current})


def _add(current: dict[str, Any], value: Any) -> None:
    for name, amount in value.items():
        base = current.get(name, 0)
        current[name] = (base if _is_number(base) else 0) + amount


def _union(current: dict[str, Any], value: Any) -> None:
    for name, items in value.items():
        existing = _as_list(current.get(name))
        current[name] = existing + [item for item in items if item not in existing]


def _append(current: dict[str, Any], value: Any) -> None:
    for name, item in value.items():
        current[name] = [*_as_list(current.get(name)), item]


def _remove(current: dict[str, Any], value: Any) -> None:
    for name, item in value.items():
        if isinstance(current.get(name), list):
            current[name] = [x for x in current[name] if x != item]


def _unset(current: dict[str, Any], value: Any) -> None:
    for name in value:
        current.pop(name, None)


_OPERATIONS: dict[str, Callable[[dict[str, Any], Any], None]] = {
    "$set": _set,
    "$set_once": _set_once,
    "$add": _add,
    "$union": _union,
    "$append": _append,
    "$remove": _remove,
    "$unset": _unset,
}


def _profile_key(record: Mapping[str, Any], *, group: bool) -> ProfileKey | Failure:
    if not group:
        distinct_id = record.get("$distinct_id")
        if not isinstance(distinct_id, str) or not distinct_id:
            return Failure("$distinct_id", "'$distinct_id' must be a non-empty string")
        return ("user", "", distinct_id)
    for name in ("$group_key", "$group_id"):
        if not isinstance(record.get(name), str) or not record[name]:
            return Failure(name, f"'{name}' must be a non-empty string")
    return ("group", record["$group_key"], record["$group_id"])


def _value_failure(operation: str, value: Any) -> Failure | None:  # noqa: PLR0911 -- per op
    if operation == "$delete":
        return None
    if operation == "$unset":
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            return Failure("$unset", "'$unset' must be a non-empty array of property names")
        return None
    if not isinstance(value, dict) or (operation == "$union" and not value):
        return Failure(operation, f"'{operation}' must be an object of properties")
    if operation == "$add" and not all(_is_number(v) for v in value.values()):
        return Failure("$add", "'$add' values must be numbers")
    if operation == "$union" and not all(
        isinstance(v, list) and v and all(_is_number(i) or isinstance(i, str) for i in v)
        for v in value.values()
    ):
        return Failure("$union", "'$union' values must be non-empty lists of strings or numbers")
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _kind(group: bool) -> str:
    return "group" if group else "user"
