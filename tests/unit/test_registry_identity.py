"""The event registry and the distinct_id fallback hierarchy."""

import pytest

from relay._errors import EventNameError, EventRegistrationError, EventValidationError
from relay._event.identity import resolve_distinct_id
from relay._event.properties import MixpanelSuperEventPropertiesSchema
from relay._event.registry import (
    EVENT_SCHEMA_REGISTRY,
    get_event_schema,
    is_event_registered,
    register_event,
)


class FirstSchema(MixpanelSuperEventPropertiesSchema):
    widget_id: str


class SecondSchema(MixpanelSuperEventPropertiesSchema):
    widget_id: str


def test_registered_events_are_visible_read_only() -> None:
    """A registered event is found, and the public registry view cannot be written."""
    register_event("svc.test_registry.widget_built", FirstSchema)
    assert is_event_registered("svc.test_registry.widget_built")
    assert get_event_schema("svc.test_registry.widget_built") is FirstSchema
    assert EVENT_SCHEMA_REGISTRY["svc.test_registry.widget_built"] is FirstSchema
    with pytest.raises(TypeError):
        EVENT_SCHEMA_REGISTRY["svc.x.y"] = FirstSchema  # type: ignore[index]


def test_registering_the_same_schema_twice_is_harmless() -> None:
    """Re-registering the same schema under the same name is a no-op."""
    register_event("svc.test_registry.widget_moved", FirstSchema)
    register_event("svc.test_registry.widget_moved", FirstSchema)
    assert get_event_schema("svc.test_registry.widget_moved") is FirstSchema


def test_a_different_schema_under_a_taken_name_is_refused() -> None:
    """Two schemas may not claim one event name."""
    register_event("svc.test_registry.widget_sold", FirstSchema)
    with pytest.raises(EventRegistrationError, match="already registered with FirstSchema"):
        register_event("svc.test_registry.widget_sold", SecondSchema)
    assert get_event_schema("svc.test_registry.widget_sold") is FirstSchema


def test_bad_names_are_refused_at_registration() -> None:
    """The naming rule is enforced when an event is registered."""
    with pytest.raises(EventNameError):
        register_event("svc.cron.widget_sold", FirstSchema)
    assert not is_event_registered("svc.cron.widget_sold")


def test_unknown_events_are_reported_by_length_not_by_name() -> None:
    """Looking up an unregistered event gives its length, never the name (it may be an email)."""
    with pytest.raises(EventRegistrationError, match="14 characters> is not registered") as info:
        get_event_schema("svc.nope.never")
    assert "svc.nope.never" not in str(info.value)


def test_distinct_id_prefers_the_user_then_the_org_then_the_context() -> None:
    """The fallback order is user UUID, org_<uuid>, then slack_/apikey_/webhook_ ids."""
    assert resolve_distinct_id(user_id="u1", organization_id="o1") == "u1"
    assert resolve_distinct_id(organization_id="o1", slack_id="s1") == "org_o1"
    assert resolve_distinct_id(slack_id="s1", api_key_id="k1") == "slack_s1"
    assert resolve_distinct_id(api_key_id="k1") == "apikey_k1"
    assert resolve_distinct_id(webhook_id="w1") == "webhook_w1"


def test_no_identity_at_all_is_refused() -> None:
    """With nothing to identify the actor, there is no distinct_id to invent."""
    with pytest.raises(EventValidationError, match="no identity for distinct_id"):
        resolve_distinct_id()
