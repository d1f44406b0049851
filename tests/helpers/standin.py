"""Pointing relay at a Mixpanel stand-in (the fixtures that start one: ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine

from relay._config import RelaySettings
from relay.testing.mixpanel_standin import MixpanelStandin

#: The ``start_standin`` fixture: ``start_standin(**options)`` starts a ``MixpanelStandin``.
StartStandin = Callable[..., MixpanelStandin]

#: Seconds a read from the stand-in may take: on loopback an answer comes at once, so a stuck
#: request fails its test quickly instead of after the production default.
READ_TIMEOUT_SECONDS = 5.0


def standin_settings(
    standin: MixpanelStandin, engine: Engine | None = None, **overrides: Any
) -> RelaySettings:
    """Settings that send ``/import`` to ``standin`` with its service account and, given
    ``engine``, keep the outbox in that database; ``overrides`` set or replace fields."""
    values: dict[str, Any] = {
        "mixpanel_api_url": standin.url,
        "mixpanel_project_id": standin.project_id,
        "mixpanel_service_account_username": standin.username,
        "mixpanel_service_account_secret": standin.secret,
        "read_timeout_seconds": READ_TIMEOUT_SECONDS,
    }
    if engine is not None:
        values["database_url"] = engine.url.render_as_string(hide_password=False)
    values.update(overrides)
    return RelaySettings(**values)
