"""The PII guard at track time: look-alikes, keys judged like values, refusals that never echo.

Every case goes through ``check_properties``, ``check_distinct_id`` or ``prepare_event``, the
functions ``track()`` calls, so each pins what reaches the outbox, not a helper's opinion.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import Field

from relay._errors import EventRegistrationError, EventValidationError
from relay._event.limits import check_distinct_id, check_properties
from relay._event.properties import MixpanelSuperEventPropertiesSchema
from relay._event.registry import loggable_event_name, register_event
from relay._tracking import prepare_event

EV = "svc.a.b"
EMAIL = "jane.doe@example.com"
PHONE = "+44 20 7946 0958"

#: Each is an email or a phone number disguised so that an ASCII-only pattern misses it.
LOOKALIKE_EMAILS = {
    "fullwidth at": "jane.doe\uff20example.com",
    "small commercial at": "jane.doe\ufe6bexample.com",
    "fullwidth dot": "jane.doe@example\uff0ecom",
    "ideographic full stop": "jane.doe@example\u3002com",
    "halfwidth ideographic full stop": "jane.doe@example\uff61com",
    "one dot leader": "jane.doe@example\u2024com",
    "zero-width space in domain": "jane.doe@exa\u200bmple.com",
    "zero-width joiner in domain": "jane.doe@exa\u200dmple.com",
    "word joiner in domain": "jane.doe@exam\u2060ple.com",
    "soft hyphen in domain": "jane.doe@exam\u00adple.com",
    "byte order mark before at": "jane.doe\ufeff@example.com",
    "bidi override in local part": "jane\u202e.doe@example.com",
    "fullwidth letters": "\uff4a\uff41\uff4e\uff45@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",
    "combining mark in domain": "jane@exa\u0332mple.com",
    "mailto uri": "mailto:jane.doe@example.com",
    "spaces around at and dot": "jane.doe @ example . com",
    "bracketed at and dot": "jane.doe [at] example [dot] com",
    "parenthesised at and dot": "jane.doe(at)example(dot)com",
    "capital AT and DOT": "jane.doe AT example DOT com",
    "bracketed at, real dot": "jane.doe{at}example.com",
    "international domain": "jane@b\u00fccher.de",
    "inside text": "please write to jane.doe@example.com today",
}
LOOKALIKE_PHONES = {
    "tel uri": "tel:+442079460958",
    "tel uri without plus": "tel:02079460958",
    "tel uri with dashes": "tel:+44-20-7946-0958",
    "callto uri": "callto:+1-415-555-0123",
    "labelled": "Tel: 020 7946 0958",
    "en dash separators": "+44\u201320\u20137946\u20130958",
    "em dash separators": "+44\u201420\u20147946\u20140958",
    "minus sign separators": "+44\u221220\u22127946\u22120958",
    "non-breaking hyphen separators": "+44\u201120\u20117946\u20110958",
    "figure dash separators": "415\u2012555\u20120123",
    "fullwidth plus": "\uff0b44 20 7946 0958",
    "fullwidth digits": "".join(" " if ch == " " else chr(ord(ch) + 0xFEE0) for ch in PHONE),
    "arabic-indic digits": "\u0664\u0661\u0665-\u0665\u0665\u0665-\u0660\u0661\u0662\u0663",
    "no-break spaces": "+44\u00a020\u00a07946\u00a00958",
    "zero-width spaces between digits": "+44 20\u200b7946\u200b0958",
    "extension": "+1 415 555 0123 ext. 12",
    "inside text": "call me on +44 20 7946 0958 today",
    "at the end of a sentence": "call +44 20 7946 0958.",
}
#: Values analytics carries every day that share characters with emails and phone numbers.
SAFE_VALUES = [
    "6f1c7a0e-1b2c-4d5e-8f90-123456789abc",
    "12345678-1234-1234-1234-123456789012",
    "2026-11-26",
    "2026\u201311\u201326",
    "2026-11-26T10:00:00Z",
    "2026-11-26T10:00:00.123+05:30",
    "2026-11-26 10:00:00",
    "26.11.2026",
    "11/26/2026",
    "26-11-2026",
    "2024-2025",
    "2024-01-01 - 2024-12-31",
    "10:00:00",
    "1:30:00",
    "PT1H30M",
    "90s",
    "1234567890",
    "20261126101500",
    "-1234567",
    "12.5",
    "-12.5",
    "+12.5",
    "+1234.56",
    "3.14159265358979",
    "0.000001234567",
    "1 234 567.89",
    "1.234.567",
    "12.345.678",
    "$1,234.56",
    "\u20ac1.234,56",
    "100%",
    "v1.2.3",
    "1.2.3.4567",
    "10.0.19041.1052",
    "136.24.0.114",
    "192.168.100.200",
    "51.5074 -0.1278",
    "1920x1080",
    "UTC+05:30",
    "+00:05",
    "icon@2x.png",
    "@handle",
    "user@localhost",
    "meet at example dot com",
    "svc.surveys.survey_delivered",
    "org_6f1c7a0e",
    "slack_U012AB3CD",
    "sha256:abcdef1234567890",
    "caf\u00e9 cr\u00e8me",
]


@pytest.mark.parametrize("value", LOOKALIKE_EMAILS.values(), ids=LOOKALIKE_EMAILS.keys())
def test_disguised_emails_are_refused(value: str) -> None:
    """An email disguised with look-alikes, invisibles or spelled-out separators is refused."""
    with pytest.raises(EventValidationError, match="value looks like an email address") as info:
        check_properties(EV, {"comment": value})
    assert info.value.field == "comment"


@pytest.mark.parametrize("value", LOOKALIKE_PHONES.values(), ids=LOOKALIKE_PHONES.keys())
def test_disguised_phone_numbers_are_refused(value: str) -> None:
    """A phone number with look-alike signs, other digits or a tel: prefix is refused."""
    with pytest.raises(EventValidationError, match="value looks like a phone number") as info:
        check_properties(EV, {"comment": value})
    assert info.value.field == "comment"


@pytest.mark.parametrize("value", SAFE_VALUES)
def test_ordinary_analytics_values_pass(value: str) -> None:
    """Ids, dates, times, decimals, versions, amounts and addresses of machines are stored."""
    assert check_properties(EV, {"value": value, "tags": [value], "o": {"k": value}})


def test_a_disguised_email_as_distinct_id_is_refused() -> None:
    """distinct_id goes through the same normalisation as property values."""
    with pytest.raises(EventValidationError, match="email"):
        check_distinct_id(EV, LOOKALIKE_EMAILS["fullwidth at"])


@pytest.mark.parametrize(
    ("properties", "field"),
    [
        ({EMAIL: 1}, "properties[key 0]"),
        ({"ok": 1, LOOKALIKE_EMAILS["fullwidth at"]: 1}, "properties[key 1]"),
        ({"payload": {EMAIL: True}}, "payload[key 0]"),
        ({"payload": {"ok": {"a": 1, EMAIL: None}}}, "payload.ok[key 1]"),
        ({"tags": ["x", {EMAIL: 1}]}, "tags[1][key 0]"),
        ({"payload": {PHONE: "mobile"}}, "payload[key 0]"),
    ],
)
def test_an_email_or_phone_as_a_key_is_refused_by_position(
    properties: dict[str, Any], field: str
) -> None:
    """A key is judged like a value at every level; the error names its position, not the key."""
    with pytest.raises(EventValidationError, match="property name looks like") as info:
        check_properties(EV, properties)
    assert info.value.field == field
    assert "jane" not in str(info.value)
    assert "7946" not in str(info.value)


@pytest.mark.parametrize("key", ["userEmail", "date_of_birth", "mobileNumber", "iban", "ip"])
def test_a_key_naming_personal_data_is_refused_inside_free_form_objects(key: str) -> None:
    """Keys of nested objects are checked against the field-name vocabulary at track time."""
    with pytest.raises(EventValidationError, match="property name looks like") as info:
        check_properties(EV, {"payload": {"ok": 1, key: "x"}})
    assert info.value.field == "payload[key 1]"


def test_mixpanels_own_ip_property_passes_at_the_top_level() -> None:
    """``ip`` is the GeoIP input the relay sets itself (``0``); no schema may declare it."""
    assert check_properties(EV, {"ip": 0}) == b'{"ip":0}'


def test_a_key_refused_for_its_length_is_named_by_position() -> None:
    """Any refused key, not only a personal-looking one, is named by its position."""
    key = "jane.doe." + "x" * 247
    with pytest.raises(EventValidationError, match="256 characters") as info:
        check_properties(EV, {"payload": {key: 1}})
    assert info.value.field == "payload[key 0]"
    assert "jane" not in str(info.value)


class FreeFormSchema(MixpanelSuperEventPropertiesSchema):
    """Test event with a free-form object, the way keys reach track() from a host."""

    payload: dict[str, int] = Field(default_factory=dict)


register_event("svc.tests_pii.free_form_sent", FreeFormSchema)
BASE: dict[str, Any] = {
    "employee_id": "6f1c7a0e-1b2c-4d5e-8f90-123456789abc",
    "organization_id": "0b6a8a4e-8f55-4f8e-9a53-3f1f4f1c2d10",
    "organization_name": "Acme",
    "role": "employee",
    "impersonation": False,
}


@pytest.mark.parametrize(
    ("properties", "field"),
    [
        ({**BASE, EMAIL: 1}, "properties[key 5]"),
        ({**BASE, "payload": {EMAIL: "not an int"}}, "payload[key 0]"),
        ({**BASE, "payload": {"ok": 1, EMAIL: 1}}, "payload[key 1]"),
    ],
)
def test_schema_validation_errors_never_echo_a_refused_key(
    properties: dict[str, Any], field: str
) -> None:
    """Pydantic's error location is rebuilt from safe parts: a refused key becomes its position."""
    with pytest.raises(EventValidationError) as info:
        prepare_event(
            event="svc.tests_pii.free_form_sent", distinct_id="u-1", properties=properties
        )
    assert info.value.field == field
    assert "jane" not in str(info.value)


def test_schema_validation_errors_name_keys_that_pass_the_guard() -> None:
    """A key that passed the guard is still named, so the error stays useful."""
    with pytest.raises(EventValidationError) as info:
        prepare_event(
            event="svc.tests_pii.free_form_sent",
            distinct_id="u-1",
            properties={**BASE, "payload": {"answers": "many"}},
        )
    assert info.value.field == "payload.answers"


@pytest.mark.parametrize("name", [EMAIL, LOOKALIKE_EMAILS["fullwidth at"], PHONE, "svc.typo.evnt"])
def test_an_unregistered_event_name_is_never_echoed(name: str) -> None:
    """Looking up an unregistered name raises an error that gives its length, not the name."""
    with pytest.raises(EventRegistrationError) as info:
        prepare_event(event=name, distinct_id="u-1", properties=BASE)
    assert name not in str(info.value)
    assert f"{len(name)} characters" in str(info.value)
    assert info.value.event is None


def test_loggable_event_name_shows_registered_names_only() -> None:
    """Registered names are shown as they are; others, and non-strings, by a stand-in."""
    assert loggable_event_name("svc.tests_pii.free_form_sent") == "svc.tests_pii.free_form_sent"
    assert loggable_event_name(EMAIL) == "<unregistered: 20 characters>"
    assert loggable_event_name(["x"]) == "<unregistered: not a string but list>"
