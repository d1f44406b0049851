"""The stand-in's profile-update rules, pure: an update in, a verdict or a profile out."""

from __future__ import annotations

from typing import Any

import pytest

from relay.testing.mixpanel_standin import _profile_rules as rules
from relay.testing.mixpanel_standin._rules import Failure

TOKEN = "tok"
USER = ("user", "", "u-1")


def _user(**operation: Any) -> dict[str, Any]:
    return {"$token": TOKEN, "$distinct_id": "u-1", **operation}


def _apply(properties: dict[str, Any] | None, **operation: Any) -> Any:
    update = rules.judge_update(_user(**operation), token=TOKEN, group=False)
    assert isinstance(update, rules.Update), update
    return rules.apply_update(properties, update)


def test_a_valid_user_update_names_its_profile_and_operation() -> None:
    """A user update is keyed by its distinct id and carries its one operation."""
    update = rules.judge_update(_user(**{"$set": {"plan": "pro"}}), token=TOKEN, group=False)
    assert update == rules.Update(key=USER, operation="$set", value={"plan": "pro"})


def test_a_group_update_is_keyed_by_group_key_and_id() -> None:
    """A group update names its profile with $group_key and $group_id."""
    record = {"$token": TOKEN, "$group_key": "company", "$group_id": "c-1", "$set": {"n": 1}}
    update = rules.judge_update(record, token=TOKEN, group=True)
    assert isinstance(update, rules.Update)
    assert update.key == ("group", "company", "c-1")


@pytest.mark.parametrize(
    ("record", "group", "field"),
    [
        ([], False, "record"),
        ({"$distinct_id": "u-1", "$set": {}}, False, "$token"),
        ({"$token": "other", "$distinct_id": "u-1", "$set": {}}, False, "$token"),
        ({"$token": TOKEN, "$set": {}}, False, "$distinct_id"),
        ({"$token": TOKEN, "$distinct_id": "", "$set": {}}, False, "$distinct_id"),
        ({"$token": TOKEN, "$group_key": "company", "$set": {}}, True, "$group_id"),
        (_user(), False, "record"),
        (_user(**{"$set": {}, "$unset": ["a"]}), False, "record"),
        (_user(**{"$rename": {}}), False, "$rename"),
        (_user(**{"$set": []}), False, "$set"),
        (_user(**{"$add": {"n": "1"}}), False, "$add"),
        (_user(**{"$add": {"n": True}}), False, "$add"),
        (_user(**{"$union": {"tags": "a"}}), False, "$union"),
        (_user(**{"$union": {"tags": []}}), False, "$union"),
        (_user(**{"$union": {}}), False, "$union"),
        (_user(**{"$unset": []}), False, "$unset"),
        (_user(**{"$unset": "plan"}), False, "$unset"),
        (
            {"$token": TOKEN, "$group_key": "c", "$group_id": "1", "$add": {"n": 1}},
            True,
            "$add",
        ),
        (
            {"$token": TOKEN, "$group_key": "c", "$group_id": "1", "$append": {"n": 1}},
            True,
            "$append",
        ),
    ],
)
def test_malformed_updates_fail_on_the_field_at_fault(record: Any, group: bool, field: str) -> None:
    """A wrong token, a missing id, no or two operations, or a bad operation value fail."""
    verdict = rules.judge_update(record, token=TOKEN, group=group)
    assert isinstance(verdict, Failure), verdict
    assert verdict.field == field


def test_modifiers_are_allowed_beside_the_operation() -> None:
    """$ip, $time, $ignore_time and $ignore_alias may come with the operation."""
    record = _user(**{"$set": {"a": 1}, "$ip": "0", "$ignore_time": True, "$time": 1})
    assert isinstance(rules.judge_update(record, token=TOKEN, group=False), rules.Update)


def test_set_overwrites_and_set_once_fills_only_absent_names() -> None:
    """$set replaces values; $set_once leaves present names alone."""
    profile = _apply(None, **{"$set": {"plan": "free", "seats": 1}})
    profile = _apply(profile, **{"$set": {"plan": "pro"}})
    profile = _apply(profile, **{"$set_once": {"plan": "trial", "first_seen": "2026-01-01"}})
    assert profile == {"plan": "pro", "seats": 1, "first_seen": "2026-01-01"}


def test_add_adds_to_zero_when_absent_and_can_decrement() -> None:
    """$add starts an absent number at 0; negative values decrement."""
    profile = _apply(None, **{"$add": {"logins": 1}})
    profile = _apply(profile, **{"$add": {"logins": 5, "credit": -2.5}})
    assert profile == {"logins": 6, "credit": -2.5}


def test_union_append_remove_on_lists() -> None:
    """$union adds missing items, $append one item (duplicates kept), $remove every equal item."""
    profile = _apply(None, **{"$union": {"tags": ["a", "b"]}})
    profile = _apply(profile, **{"$union": {"tags": ["b", "c"]}})
    assert profile == {"tags": ["a", "b", "c"]}
    profile = _apply(profile, **{"$append": {"tags": "a"}})
    assert profile == {"tags": ["a", "b", "c", "a"]}
    profile = _apply(profile, **{"$remove": {"tags": "a"}})
    assert profile == {"tags": ["b", "c"]}


def test_unset_drops_names_and_delete_drops_the_profile() -> None:
    """$unset removes the names listed (absent ones are fine); $delete leaves no profile."""
    profile = _apply({"a": 1, "b": 2}, **{"$unset": ["a", "missing"]})
    assert profile == {"b": 2}
    assert _apply(profile, **{"$delete": ""}) is None


def test_apply_does_not_change_the_profile_it_was_given() -> None:
    """apply_update is pure: the input mapping is left as it was."""
    before = {"tags": ["a"]}
    _apply(before, **{"$union": {"tags": ["b"]}})
    assert before == {"tags": ["a"]}


def test_more_than_2000_properties_fail_and_change_nothing() -> None:
    """A profile may hold 2000 properties; an update taking it past that fails."""
    full = {f"p{i}": i for i in range(rules.MAX_PROFILE_PROPERTIES)}
    assert _apply(full, **{"$set": {"p0": "x"}}) is not None
    verdict = _apply(full, **{"$set": {"one_more": 1}})
    assert isinstance(verdict, Failure)
    assert "2000" in verdict.message
