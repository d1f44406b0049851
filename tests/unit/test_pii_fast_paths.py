"""The PII guard's fast paths judge exactly as the plain patterns do (issue 21, validation cost).

``relay._event.pii`` skips its patterns when C-level tests show they cannot match (no spelled
word, no ``+0000000`` skeleton, no ``tel:``), replaces spelled capitals with ``str.replace`` on
space-only ASCII text, and searches ``+`` numbers and ``tel:`` URIs with two patterns. Here the
guard is compared, value by value, with a reference written the plain way: every spelled form
replaced by one pattern each, one search for embedded numbers, no shortcut. Values are built
from the pieces that drive those shortcuts (spelled words in every case, brackets, blanks of
every kind, ``+``, digits, separators, URI schemes); a disagreement in either direction fails.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay._event import pii

SETTINGS = settings(
    max_examples=3000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
PIECES = [
    *[" ", "  ", "\t", "\n", "\u2028", "\u00a0", "\u200b"],
    *["@", ".", "[", "]", "(", ")", "<", ">", "{", "}", "-", "+", "++", ":", "#", ";"],
    *["AT", "at", "At", "DOT", "dot", "Dot", " AT ", " DOT ", "AT AT", " DOT DOT "],
    *["[at]", "[ dot ]", "(AT)", "{dot}", "<at >"],
    *["a", "x", "co", "com", "png", "jane", "example", "_", "ext"],
    *["1", "23", "456", "7890", "\u0663", "\uff15", "\u00b2"],
    *["tel:", "TEL:", "sms:", "callto:", "phone:", "+44 20 7946 0958", "(555) 123-4567"],
    *["+1 ", "+ 1", "555 0123", "2024-01-01", "10.0.0.1", ";ext=12"],
]
VALUES = st.lists(st.sampled_from(PIECES), min_size=1, max_size=16).map("".join)

_AT_BRACKETS = re.compile(r"[\[({<]\s*at\s*[\])}>]", re.IGNORECASE)
_DOT_BRACKETS = re.compile(r"[\[({<]\s*dot\s*[\])}>]", re.IGNORECASE)
_AT_CAPS = re.compile(r"(?<=\s)AT(?=\s)")
_DOT_CAPS = re.compile(r"(?<=\s)DOT(?=\s)")
_EMBEDDED = re.compile(
    r"(?:(?<![\w+])\+|\b(?:tel|callto|sms):\s*\+?)\s?\d(?:[\s().-]{0,2}\d){6,14}(?!\w|\.\d)",
    re.IGNORECASE,
)
_SEVEN_DIGITS = re.compile(r"(?:\D*\d){7}")


def _reference_email(text: str) -> bool:
    brackets = any(b in text for b in "[({<")
    if "@" not in text:
        if not (brackets or "AT" in text):
            return False
        text = _AT_BRACKETS.sub("@", text)
        text = _DOT_BRACKETS.sub(".", text)
        text = _DOT_CAPS.sub(".", _AT_CAPS.sub("@", text))
        if "@" not in text:
            return False
    elif brackets or "DOT" in text:
        text = _DOT_CAPS.sub(".", _DOT_BRACKETS.sub(".", text))
    return any(
        match.group().rsplit(".", 1)[-1].strip().lower() not in pii._FILE_EXTENSIONS
        for match in pii._EMAIL.finditer(text)
    )


def _reference_phone(text: str) -> bool:
    text = text.strip()
    if _SEVEN_DIGITS.match(text) is None:
        return False
    if pii._PHONE_CHARS.fullmatch(text):
        return pii._phone_shaped(text, uri=False)
    if ":" in text and (uri := pii._URI_PREFIX.match(text)) is not None:
        rest = pii._URI_PARAMETERS.sub("", text[uri.end() :]).strip()
        number = pii._EXTENSION.sub("", rest)
        if pii._PHONE_CHARS.fullmatch(number):
            return pii._phone_shaped(number, uri=True)
    if text[-1:].isdigit() and ("x" in text or "X" in text or "#" in text):
        number = pii._EXTENSION.sub("", text)
        if number != text and pii._PHONE_CHARS.fullmatch(number):
            return pii._phone_shaped(number, uri=False)
    return any(
        pii._phone_shaped(match.group().split(":")[-1].strip(), uri=":" in match.group())
        for match in _EMBEDDED.finditer(text)
    )


@SETTINGS
@given(VALUES)
def test_the_email_fast_paths_agree_with_the_plain_patterns(value: str) -> None:
    text = pii.normalise(value)
    assert pii._has_email(text) == _reference_email(text)


@SETTINGS
@given(VALUES)
def test_the_phone_fast_paths_agree_with_the_plain_patterns(value: str) -> None:
    text = pii.normalise(value)
    assert pii._has_phone(text) == _reference_phone(text)


def test_known_values_keep_their_verdicts() -> None:
    """The examples the fast paths were written around, with their verdicts."""
    assert pii.value_refusal("jane AT example DOT com") == "an email address"
    assert pii.value_refusal("jane AT AT example DOT DOT com") is None
    assert pii.value_refusal("jane\tAT\texample\tDOT\tcom") == "an email address"
    assert pii.value_refusal("jane [ At ] example ( dot ) com") == "an email address"
    assert pii.value_refusal("call +44 20 7946 0958 now") == "a phone number"
    assert pii.value_refusal("ref tel:02079460958 ok") == "a phone number"
    assert pii.value_refusal("x+44 20 7946 0958") is None  # a "+" after a word: not a number
    assert pii.value_refusal(("[  AT " * 60)[:254]) is None
    assert pii.value_refusal(("+1-" * 90)[:254]) is None
    assert pii.value_refusal(("tel:1" * 60)[:254]) is None


class _CountingPattern:
    """A compiled pattern that counts its searches (the guard's patterns are module globals)."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.calls = 0

    def __getattr__(self, name: str) -> object:
        self.calls += 1
        return getattr(self.pattern, name)


def test_dense_spelled_capitals_and_plus_signs_run_no_pattern(monkeypatch: object) -> None:
    """The shapes that made an accepted 1 MB event cost 0.2 s run no pattern at all: spelled
    capitals on space-only text are replaced at C speed, and ``+1-+1-...`` has no ``+`` number
    skeleton. A tab (any blank but the space) still takes the pattern."""
    import pytest  # noqa: PLC0415 - the fixture type only

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    counters = {
        name: _CountingPattern(getattr(pii, name))
        for name in ("_SPELLED_AT_CAPS", "_SPELLED_DOT_CAPS", "_EMBEDDED_PLUS", "_EMBEDDED_URI")
    }
    for name, counter in counters.items():
        monkeypatch.setattr(pii, name, counter)

    assert pii.value_refusal((" AT  DOT " * 40)[:254] + ".") is None
    assert pii.value_refusal(("+1-" * 90)[:254]) is None
    assert {name: c.calls for name, c in counters.items()} == dict.fromkeys(counters, 0)

    assert pii.value_refusal("jane\tAT\texample\tDOT\tcom") == "an email address"
    assert counters["_SPELLED_AT_CAPS"].calls == 1
