"""The Django app: applies ``RELAY`` settings at start-up and checks them (``manage.py check``)."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core import checks


class RelayConfig(AppConfig):
    """``relay.contrib.django``, labelled ``relay`` (its models are ``relay.OutboxEvent``, ...)."""

    name = "relay.contrib.django"
    label = "relay"
    verbose_name = "relay outbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from relay._tracking import configure_tracking  # noqa: PLC0415
        from relay.contrib.django._settings import relay_settings  # noqa: PLC0415

        checks.register(check_settings, "relay")
        try:
            configure_tracking(relay_settings())
        except Exception:  # noqa: BLE001 - reported by the system check, with its reason
            return


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``manage.py check``: a bad ``RELAY`` setting is an error naming the key, never the value."""
    from relay.contrib.django._settings import relay_settings  # noqa: PLC0415

    try:
        relay_settings()
    except Exception as exc:  # noqa: BLE001 - each becomes one check message
        return [checks.Error(str(exc), id="relay.E001")]
    return []
