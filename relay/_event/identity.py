"""The ``distinct_id`` fallback hierarchy.

1. the acting user's UUID;
2. else ``org_<organization_uuid>`` when there is no user;
3. else a context id: ``slack_<id>``, ``apikey_<id>`` or ``webhook_<id>``.
"""

from __future__ import annotations

from relay._errors import EventValidationError


def resolve_distinct_id(
    *,
    user_id: str | None = None,
    organization_id: str | None = None,
    slack_id: str | None = None,
    api_key_id: str | None = None,
    webhook_id: str | None = None,
) -> str:
    """The first available identity in the hierarchy; ``EventValidationError`` if none is given."""
    if user_id:
        return str(user_id)
    if organization_id:
        return f"org_{organization_id}"
    for prefix, value in (("slack", slack_id), ("apikey", api_key_id), ("webhook", webhook_id)):
        if value:
            return f"{prefix}_{value}"
    raise EventValidationError(
        "no identity for distinct_id: give a user, an organization or a slack/apikey/webhook id",
        field="distinct_id",
    )
