"""``settings.RELAY_ROUTER`` and ``RELAY_DESTINATIONS``: the Django integration stores routes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import ALIASES, SURVEY_DELIVERED, survey_properties
from django.db import transaction
from django.test import override_settings

from relay import EventContractError, set_router
from relay._tracking import strict_tracking
from relay.contrib.django import relay_engine, track, track_many, update_group, update_profile
from relay.contrib.django._routing import install_router
from relay.contrib.django.apps import check_router

pytestmark = pytest.mark.django_db(transaction=True, databases=list(ALIASES))

ROUTER = "djapp.routing.by_organization"


@pytest.fixture(autouse=True)
def no_router_after() -> Iterator[None]:
    """Each test installs its own router; none is left behind."""
    yield
    set_router(None, destinations=["default"])


def stored(alias: str) -> list[tuple[str, str]]:
    with relay_engine(alias).connect() as conn:
        return [
            (d, x)
            for d, x in conn.execute(
                sa.text("SELECT distinct_id, destination FROM relay_outbox ORDER BY id")
            )
        ]


@override_settings(RELAY_ROUTER=ROUTER, RELAY_DESTINATIONS=["default", "us", "eu"])
def test_the_settings_router_routes_every_django_api(alias: str) -> None:
    """track, track_many and the profile updates on Django's connection store the route."""
    install_router()
    assert check_router() == []
    with transaction.atomic(using=alias), strict_tracking():
        track(
            event=SURVEY_DELIVERED,
            distinct_id="e-eu",
            properties=survey_properties(organization_id="org-eu"),
            using=alias,
        )
        track_many(
            [
                {
                    "event": SURVEY_DELIVERED,
                    "distinct_id": f"e-{org}",
                    "properties": survey_properties(organization_id=org),
                }
                for org in ("org-us", "org-other")
            ],
            using=alias,
        )
        update_profile(
            distinct_id="p-eu",
            operation="$set",
            properties={"organization_id": "org-eu"},
            using=alias,
        )
        update_group(
            group_key="organization_id",
            group_id="org-us",
            operation="$set",
            properties={"plan": "pro"},
            using=alias,
        )
    assert stored(alias) == [
        ("e-eu", "eu"),
        ("e-org-us", "us"),
        ("e-org-other", "default"),
        ("p-eu", "eu"),
        ("org-us", "us"),
    ]


@override_settings(RELAY_ROUTER=ROUTER, RELAY_DESTINATIONS=["default", "us"])
def test_a_route_outside_relay_destinations_is_refused(alias: str) -> None:
    """'eu' is not in RELAY_DESTINATIONS: refused in strict mode, nothing written."""
    install_router()
    with strict_tracking(), pytest.raises(EventContractError, match="'eu'"):
        track(
            event=SURVEY_DELIVERED,
            distinct_id="e-eu",
            properties=survey_properties(organization_id="org-eu"),
            using=alias,
        )
    assert stored(alias) == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"RELAY_ROUTER": "djapp.routing.nowhere"}, "cannot import 'djapp.routing.nowhere'"),
        ({"RELAY_ROUTER": ROUTER, "RELAY_DESTINATIONS": "eu"}, "must be a list"),
        ({"RELAY_ROUTER": ROUTER, "RELAY_DESTINATIONS": ["EU"]}, "must match"),
        ({"RELAY_DESTINATIONS": ["eu"]}, "RELAY_DESTINATIONS is set without RELAY_ROUTER"),
    ],
)
def test_a_router_that_cannot_be_installed_is_a_check_error_and_tracking_refuses(
    alias: str, overrides: dict[str, object], message: str
) -> None:
    """manage.py check reports relay.E004; meanwhile every row is refused, never sent to default."""
    with override_settings(**overrides):
        errors = check_router()
        assert [e.id for e in errors] == ["relay.E004"]
        assert message in errors[0].msg
        with pytest.raises(Exception, match=message.split("'", maxsplit=1)[0]):
            install_router()
    with strict_tracking(), pytest.raises(EventContractError, match="no router"):
        track(
            event=SURVEY_DELIVERED,
            distinct_id="e-1",
            properties=survey_properties(),
            using=alias,
        )
    assert stored(alias) == []


@pytest.mark.django_db(transaction=True)
@override_settings(
    RELAY_ROUTER=ROUTER,
    RELAY_DESTINATIONS=["default", "us", "eu"],
    RELAY={"STRICT_TRACKING": False, "DESTINATIONS": {"us": {}, "eu": {"region": "eu"}}},
)
def test_the_admin_lists_and_filters_by_destination(client: Any) -> None:
    """The outbox list shows each row's destination and filters by the configured names."""
    from django.contrib.auth.models import User  # noqa: PLC0415

    install_router()
    for org in ("org-eu", "org-us"):
        track(
            event=SURVEY_DELIVERED,
            distinct_id=f"emp-{org}",
            properties=survey_properties(organization_id=org),
        )
    User.objects.create_superuser("olive", "olive@example.invalid", "pw")
    client.login(username="olive", password="pw")
    page = client.get("/admin/relay/outboxevent/", {"destination": "eu"}).content.decode()
    assert "emp-org-eu" in page
    assert "emp-org-us" not in page
    assert "?destination=us" in page  # the filter offers the configured destinations
