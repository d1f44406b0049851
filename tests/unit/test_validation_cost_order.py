"""Validation does the cheap, bounded checks first (issue 21, item 7): an event too large, a
property too large, or too many properties is refused before any string is scanned by the PII
guard, and the guard's patterns take linear time on crafted input."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import Field

from relay._errors import EventValidationError
from relay._event import limits, pii
from relay._event.properties import STRICT_MODEL_CONFIG, MixpanelSuperEventPropertiesSchema
from relay._event.registry import register_event
from relay._tracking.prepare import prepare_event

EVENT = "svc.tests.cost_ordered"
#: The issue's crafted string: a bracket and blanks once made the spelled-``@`` search quadratic.
CRAFTED = "[" + " " * 253


class CostSchema(MixpanelSuperEventPropertiesSchema):
    """Free-form fields, enough of them to build an event over 1 MB."""

    model_config = STRICT_MODEL_CONFIG
    answers: list[Any] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)


register_event(EVENT, CostSchema)
BASE = {
    "employee_id": "e-1",
    "organization_id": "o-1",
    "organization_name": "Acme",
    "role": None,
    "impersonation": False,
}


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every string value the PII guard judges, counted; the verdict caches emptied.

    (Property names are judged too, but only to name a refused property safely.)
    """
    seen: list[str] = []

    def counting(text: str) -> str | None:
        seen.append(text)
        return pii.value_refusal(text)

    monkeypatch.setattr(limits, "value_refusal", counting)
    limits._string_problem.cache_clear()
    yield seen
    limits._string_problem.cache_clear()


def test_a_list_property_over_8kb_is_refused_before_any_string_is_scanned(
    scans: list[str],
) -> None:
    """The issue's 254 crafted strings in one list: refused for size, none scanned."""
    with pytest.raises(EventValidationError, match="8000") as caught:
        prepare_event(
            event=EVENT, distinct_id="u-1", properties={**BASE, "answers": [CRAFTED] * 254}
        )
    assert caught.value.field == "answers"
    assert scans == []


def test_an_event_over_1mb_is_refused_before_any_string_is_scanned(scans: list[str]) -> None:
    """Properties that pass every other limit but sum past 1 MB: refused, nothing scanned."""
    big = {**BASE, **{f"p{i}": "x" * 250 for i in range(240)}}
    big = {key: value * 20 if key.startswith("p") else value for key, value in big.items()}
    with pytest.raises(EventValidationError, match="bytes of JSON"):
        limits.check_properties(EVENT, big)
    assert scans == []


def test_a_later_oversized_property_is_refused_before_earlier_strings_are_scanned(
    scans: list[str],
) -> None:
    """Sizes of every list or object property come first, whatever their order."""
    properties = {**BASE, "answers": ["ok"], "extra": {f"k{i}": CRAFTED for i in range(100)}}
    with pytest.raises(EventValidationError, match="8000") as caught:
        limits.check_properties(EVENT, properties)
    assert caught.value.field == "extra"
    assert scans == []


def test_ten_thousand_unknown_properties_are_counted_before_pydantic_or_the_guard(
    scans: list[str],
) -> None:
    """10,000 unknown properties are one refusal by count, not 10,000 pydantic errors."""
    properties = {**BASE, **{f"unknown_{i}": i for i in range(10_000)}}
    with pytest.raises(EventValidationError, match="10009 properties") as caught:
        prepare_event(event=EVENT, distinct_id="u-1", properties=properties)
    assert "extra_forbidden" not in str(caught.value)
    assert scans == []


@pytest.mark.parametrize(
    "pattern",
    [
        pii._SPELLED_DOT,
        pii._SPELLED_DOT_CAPS,
        pii._SPELLED_AT,
        pii._SPELLED_AT_CAPS,
        pii._EMBEDDED_PLUS,
        pii._EMBEDDED_URI,
    ],
    ids=["dot", "DOT", "at", "AT", "plus-number", "uri-number"],
)
def test_the_spelled_separator_patterns_never_start_with_a_blank(pattern: re.Pattern[str]) -> None:
    """A pattern opening with ``\\s`` is retried from every blank of a run: quadratic."""
    assert not pattern.pattern.startswith(("\\s", "(?:\\s", " "))


def test_the_issue_crafted_string_is_still_judged_the_same() -> None:
    """The crafted blanks hold no personal data; a spelled-out address still does."""
    assert pii.value_refusal(CRAFTED) is None
    assert pii.value_refusal("jane [at] example [dot] com") == "an email address"
    assert pii.value_refusal("jane AT example DOT com") == "an email address"
    assert pii.value_refusal("call +44 20 7946 0958 now") == "a phone number"
