"""Which destinations exist when all are named, and the per-destination checks around them:
the pytest plugin's drain to several stand-ins, the project token per destination."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from relay import (
    MixpanelSuperEventPropertiesSchema,
    Route,
    SystemRole,
    register_event,
    set_router,
    track,
    update_profile,
)
from relay._config import load_settings
from relay._errors import ConfigurationError
from relay._mixpanel.answers import SendOutcome
from relay._mixpanel.destinations import acted_on
from relay._mixpanel.profiles import (
    _token_refusals_are_auth_errors,
    profile_endpoint,
    require_profile_token,
)
from relay.testing import MixpanelStandin
from relay.testing.plugin import EagerDrain

EVENT = "svc.tests.gadget_routed"
US_ORG = "3c0f1f0e-8f55-4f8e-9a53-3f1f4f1c2d10"
EU_ORG = "9a1b1f3c-5a4e-4c1d-9b8a-2e3f4a5b6c7d"
USER = "1f1c7a0e-1b2c-4d5e-8f90-123456789abc"


class GadgetRoutedSchema(MixpanelSuperEventPropertiesSchema):
    """Test event: a gadget was routed."""

    gadget_id: str


register_event(EVENT, GadgetRoutedSchema)


def _props(org: str, gadget: str) -> dict[str, Any]:
    return {
        "employee_id": USER,
        "organization_id": org,
        "organization_name": "Acme",
        "role": SystemRole.MANAGER,
        "impersonation": False,
        "gadget_id": gadget,
    }


def _by_organization(route: Route) -> str:
    return "eu" if route.organization_id == EU_ORG else "default"


@pytest.fixture
def routed() -> Iterator[None]:
    set_router(_by_organization, destinations=["default", "eu"])
    yield
    set_router(None, destinations=["default"])


def test_default_is_left_out_when_every_project_is_named_and_relay_mixpanel_is_empty() -> None:
    """With ``us`` and ``eu`` configured and no RELAY_MIXPANEL_* project setting, there is no
    ``default`` project: no command or daemon acts on it, and asking for it is an unknown
    destination; one RELAY_MIXPANEL_* setting brings it back (and is then checked)."""
    with MixpanelStandin() as us, MixpanelStandin(region="eu") as eu:
        named = {"us": us.destination_settings(), "eu": eu.destination_settings()}
        settings = load_settings(destinations=named)
        assert settings.destination_names() == ("us", "eu")
        assert acted_on(settings) == (("us", "eu"), ("default",))
        with pytest.raises(ConfigurationError, match=r"unknown destination 'default'"):
            settings.for_destination("default")

        with_default = load_settings(destinations=named, mixpanel_project_token="tok")
        assert with_default.destination_names() == ("default", "us", "eu")
        assert with_default.for_destination("default") is with_default
        assert acted_on(with_default) == (("default", "us", "eu"), ())

        only_default = load_settings()
        assert only_default.destination_names() == ("default",)
        assert acted_on(only_default) == (("default",), ())


def test_the_plugin_drains_each_destination_to_its_own_standin(
    engine: Engine, routed: None
) -> None:
    """``relay_drain.add_destination`` sends the rows routed to ``eu`` to the EU stand-in and
    the rest to the default one: each stand-in receives exactly its organization's events."""
    with MixpanelStandin() as us, MixpanelStandin(region="eu") as eu:
        drain = EagerDrain(us)
        drain.add_destination("eu", eu)
        with Session(engine) as session, session.begin():
            for n in range(3):
                track(session, event=EVENT, distinct_id=USER, properties=_props(US_ORG, f"us-{n}"))
                track(session, event=EVENT, distinct_id=USER, properties=_props(EU_ORG, f"eu-{n}"))

        result = drain(engine)

        assert result.delivered == 6
        assert sorted(e["properties"]["gadget_id"] for e in us.accepted_events()) == [
            "us-0",
            "us-1",
            "us-2",
        ]
        assert sorted(e["properties"]["gadget_id"] for e in eu.accepted_events()) == [
            "eu-0",
            "eu-1",
            "eu-2",
        ]


def test_the_project_token_is_required_per_destination_for_its_own_updates(
    engine: Engine, routed: None
) -> None:
    """A profile update waiting for ``eu`` needs EU's project token, not default's: with the
    default token set and EU's missing the start is refused naming EU's variable; updates
    waiting only for ``default`` never ask for EU's token."""
    with MixpanelStandin() as us, MixpanelStandin(region="eu") as eu:
        eu_without_token = eu.destination_settings() | {"project_token": None}
        settings = load_settings(
            mixpanel_api_url=us.url,
            mixpanel_project_token=us.project_token,
            destinations={"eu": eu_without_token},
        )
        with Session(engine) as session, session.begin():
            update_profile(
                session,
                distinct_id=USER,
                operation="$set",
                properties={"plan": "pro", "organization_id": US_ORG},
            )
        require_profile_token(engine, settings)  # default's update, default's token: fine

        with Session(engine) as session, session.begin():
            update_profile(
                session,
                distinct_id=USER,
                operation="$set",
                properties={"plan": "pro", "organization_id": EU_ORG},
            )
        with pytest.raises(ConfigurationError) as refused:
            require_profile_token(engine, settings)
        message = str(refused.value)
        assert "for destination eu" in message
        assert "RELAY_DESTINATION_EU_PROJECT_TOKEN" in message
        assert us.project_token not in message


def test_messages_about_a_destinations_project_token_name_its_own_variable() -> None:
    """A missing or refused project token of ``eu`` points at RELAY_DESTINATION_EU_PROJECT_TOKEN,
    never at default's RELAY_MIXPANEL_PROJECT_TOKEN (which is set and fine)."""
    with MixpanelStandin(region="eu") as eu:
        settings = load_settings(
            mixpanel_project_token="default-token",
            destinations={"eu": eu.destination_settings() | {"project_token": None}},
        )
        with pytest.raises(ConfigurationError) as missing:
            profile_endpoint(settings.for_destination("eu"), "/engage")
        assert "RELAY_DESTINATION_EU_PROJECT_TOKEN" in str(missing.value)
        assert "RELAY_MIXPANEL_PROJECT_TOKEN" not in str(missing.value)

        outcome = SendOutcome(
            delivered=[],
            rejected={7: "$token: invalid project token"},
            retry={},
            unsent=[],
            auth_error=None,
            requests=[],
        )
        _token_refusals_are_auth_errors(
            outcome, settings.for_destination("eu").setting_names()["token"]
        )
        assert outcome.unsent == [7]
        assert outcome.rejected == {}
        assert outcome.auth_error is not None
        assert outcome.auth_error.endswith("check RELAY_DESTINATION_EU_PROJECT_TOKEN")
