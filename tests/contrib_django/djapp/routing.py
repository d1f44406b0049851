"""A test router: organizations to regions (named by ``settings.RELAY_ROUTER`` in the tests)."""

from __future__ import annotations

from relay import Route

REGIONS = {"org-eu": "eu", "org-us": "us"}


def by_organization(route: Route) -> str:
    """The organization's region; ``default`` for any other organization."""
    return REGIONS.get(route.organization_id or "", "default")
