"""Property tests of the PII guard: disguised emails and phones are refused, analytics values pass.

Emails and phone numbers are generated, then disguised the way a careless copy or a hostile
input disguises them: look-alike ``@``, ``.``, ``+`` and dashes, fullwidth and non-Latin digits,
odd spaces, zero-width characters, soft hyphens and other invisibles, spelled-out separators,
``tel:``/``mailto:`` prefixes, surrounding text. Every disguise must still be refused, as a
value and as a key. Generated uuids, timestamps, numbers, amounts, slugs and versions must pass.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay._errors import EventValidationError
from relay._event.limits import check_properties

EV = "svc.a.b"
GUARD_SETTINGS = settings(
    deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

INVISIBLES = [
    "\u200b",  # zero-width space
    "\u200c",  # zero-width non-joiner
    "\u200d",  # zero-width joiner
    "\u2060",  # word joiner
    "\ufeff",  # byte order mark
    "\u00ad",  # soft hyphen
    "\u180e",  # Mongolian vowel separator
    "\u2062",  # invisible times
    "\u202a",  # left-to-right embedding
    "\u034f",  # combining grapheme joiner
    "\ufe0f",  # variation selector 16
    "\U000e0041",  # tag latin capital letter a
]
AT_SIGNS = ["@", "\uff20", "\ufe6b", " @ ", " [at] ", "(at)", "{AT}", " AT ", "<at>"]
DOTS = [".", "\uff0e", "\u3002", "\uff61", "\u2024", "\ufe52", " [dot] ", "(dot)", " DOT "]
PLUSES = ["+", "\uff0b", "\ufe62", "\u207a", "\u2795"]
DASHES = ["-", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212", "\ufe63", "\uff0d"]
SPACES = [" ", "\u00a0", "\u202f", "\u2009", "\u3000", "\u2007"]
DIGIT_ZEROS = [0x30, 0xFF10, 0x0660, 0x06F0, 0x0966, 0x09E6, 0x1D7CE]  # ASCII, fullwidth, ...

labels = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
tlds = st.sampled_from(["com", "org", "net", "io", "co", "uk", "de", "fr", "info", "dev", "eu"])
local_parts = st.from_regex(r"[a-z0-9](?:[a-z0-9._+-]{0,14}[a-z0-9])?", fullmatch=True)


@st.composite
def emails(draw: st.DrawFn) -> str:
    """A plain address, disguised: separators swapped, invisibles inserted, text around it."""
    domain = draw(st.lists(labels, min_size=1, max_size=3))
    at = draw(st.sampled_from(AT_SIGNS))
    dots = [draw(st.sampled_from(DOTS)) for _ in domain]
    text = draw(local_parts) + at
    for label, dot in zip(domain, dots, strict=True):
        text += label + dot
    text += draw(tlds)
    if draw(st.booleans()):
        text = "".join(
            chr(ord(ch) + 0xFEE0) if ch.isascii() and ch.isalnum() and draw(st.booleans()) else ch
            for ch in text
        )
    text = _with_invisibles(draw, text)
    prefix = draw(st.sampled_from(["", "mailto:", "contact ", "Reply to: "]))
    suffix = draw(st.sampled_from(["", " thanks", ", later", "."]))
    return prefix + text + suffix


@st.composite
def phones(draw: st.DrawFn) -> str:
    """An international number in groups, disguised digit by digit and separator by separator."""
    country = draw(st.integers(1, 999))
    length = draw(st.integers(7, 15 - len(str(country))))
    digits = str(draw(st.integers(10 ** (length - 1), 10**length - 1)))
    national = []
    while digits:
        size = draw(st.integers(2, 4))
        if len(digits) - size == 1 or len(digits) < size:
            size = len(digits) if len(digits) <= 4 else size - 1
        national.append(digits[:size])
        digits = digits[size:]
    separator = draw(st.sampled_from([*SPACES, *DASHES, ".", ""]))
    text = draw(st.sampled_from(PLUSES)) + str(country) + separator + separator.join(national)
    zero = draw(st.sampled_from(DIGIT_ZEROS))
    text = "".join(chr(zero + int(ch)) if ch.isdigit() else ch for ch in text)
    text = _with_invisibles(draw, text)
    prefix = draw(st.sampled_from(["", "tel:", "callto:", "Tel: ", "call me on "]))
    return prefix + text + draw(st.sampled_from(["", " today", "."]))


def _with_invisibles(draw: st.DrawFn, text: str) -> str:
    positions = draw(st.lists(st.integers(0, len(text)), max_size=4))
    for position in sorted(positions, reverse=True):
        text = text[:position] + draw(st.sampled_from(INVISIBLES)) + text[position:]
    return text


def _refused(properties: dict[str, object]) -> EventValidationError:
    with pytest.raises(EventValidationError) as info:
        check_properties(EV, properties)
    return info.value


@GUARD_SETTINGS
@given(value=emails() | phones())
def test_disguised_emails_and_phone_numbers_are_refused_as_values(value: str) -> None:
    """Whatever the disguise, an email or phone number in a value is refused by its path."""
    error = _refused({"payload": {"note": [value]}})
    assert error.field == "payload.note[0]"
    assert "personal data" in str(error)


@GUARD_SETTINGS
@given(value=emails() | phones())
def test_disguised_emails_and_phone_numbers_are_refused_as_keys(value: str) -> None:
    """As a key, a disguised email or phone number is refused and named by position only."""
    error = _refused({"payload": {"ok": 1, value: True}})
    assert error.field == "payload[key 1]"
    assert value not in str(error)


amounts = st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False)
safe_values = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: u.hex),
    st.datetimes(timezones=st.just(dt.UTC)).map(dt.datetime.isoformat),
    st.datetimes().map(lambda d: d.isoformat(sep=" ", timespec="seconds")),
    st.dates().map(dt.date.isoformat),
    st.dates().map(lambda d: d.strftime("%d.%m.%Y")),
    st.dates().map(lambda d: d.strftime("%m/%d/%Y")),
    st.times().map(dt.time.isoformat),
    st.timedeltas(min_value=dt.timedelta(0)).map(str),
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    amounts.map(str),
    amounts.map(lambda a: f"{a:,.2f}"),
    amounts.map(lambda a: f"EUR {a:.2f}"),
    st.from_regex(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+){0,4}", fullmatch=True),
    st.tuples(st.integers(0, 99), st.integers(0, 99), st.integers(0, 999)).map(
        lambda v: "{}.{}.{}".format(*v)
    ),
    st.ip_addresses(v=4).map(str),
    st.integers(0, 2**32).map(lambda n: f"{n}ms"),
)


@GUARD_SETTINGS
@given(value=safe_values)
def test_ordinary_analytics_values_are_accepted(value: str) -> None:
    """Identifiers, timestamps, durations, numbers, amounts, slugs and versions pass the guard."""
    assert check_properties(EV, {"value": value, "list": [value], "object": {"k": value}})
