"""Which destinations `relay forget --mixpanel` and `relay events push` act on, and how each
one's settings are named in their messages."""

from __future__ import annotations

import pytest

from relay._config import load_settings
from relay._mixpanel.destinations import acted_on, setting_name

EU = {"region": "eu", "project_token": "eu-token"}


@pytest.mark.parametrize(
    ("destination", "field", "expected"),
    [
        ("default", "GDPR_TOKEN", "RELAY_MIXPANEL_GDPR_TOKEN"),
        ("eu", "gdpr_token", "RELAY_DESTINATION_EU_GDPR_TOKEN"),
        ("eu-west", "SERVICE_ACCOUNT_SECRET", "RELAY_DESTINATION_EU_WEST_SERVICE_ACCOUNT_SECRET"),
        ("eu-west", "PROJECT_ID", "project_id of [destinations.eu-west]"),
        ("eu", "SERVICE_ACCOUNT_USERNAME", "service_account_username of [destinations.eu]"),
    ],
)
def test_setting_name_spells_each_destinations_variable(
    destination: str, field: str, expected: str
) -> None:
    """`default` is RELAY_MIXPANEL_*; another destination's secret is its
    RELAY_DESTINATION_<NAME>_* variable (`-` as `_`), the rest a key of its table (no variable
    sets those: RELAY_DESTINATION_EU_PROJECT_ID is refused as not a relay setting)."""
    assert setting_name(destination, field) == expected


def test_one_project_is_default_alone() -> None:
    """Only RELAY_MIXPANEL_* (even empty): default is acted on, so its missing setting is
    reported as before destinations existed."""
    assert acted_on(load_settings()) == (("default",), ())


def test_an_empty_default_beside_named_projects_is_skipped() -> None:
    """Named projects and nothing in RELAY_MIXPANEL_*: default has no project and is skipped."""
    settings = load_settings(destinations={"us": EU | {"region": "us"}, "eu": EU})
    assert acted_on(settings) == (("us", "eu"), ("default",))


@pytest.mark.parametrize(
    "given",
    [
        {"mixpanel_project_token": "us-token"},
        {"mixpanel_gdpr_token": "us-oauth"},
        {"mixpanel_app_api_url": "http://127.0.0.1:9/api/app"},
        {"mixpanel_project_id": "1"},
    ],
    ids=["token", "gdpr-token", "app-url", "project-id"],
)
def test_any_default_setting_makes_default_a_destination(given: dict[str, str]) -> None:
    """A default with any Mixpanel setting is acted on (and refused if incomplete), never
    skipped: a half-configured project is a mistake to report, not an absence."""
    settings = load_settings(destinations={"eu": EU}, **given)
    assert acted_on(settings) == (("default", "eu"), ())


def test_default_defined_among_the_destinations_is_acted_on() -> None:
    """A `default` given in the destinations is a project like the others."""
    settings = load_settings(destinations={"default": EU | {"region": "us"}, "eu": EU})
    assert acted_on(settings) == (("default", "eu"), ())
