"""The Django app: applies ``RELAY`` settings at start-up and checks them (``manage.py check``).

System checks:

- ``relay.E001``: a bad ``RELAY`` setting (names the key, never the value);
- ``relay.E004``: ``RELAY_ROUTER`` or ``RELAY_DESTINATIONS`` cannot be installed (every
  ``track()`` is refused until it is fixed, never routed to ``default`` instead);
- ``relay.E003``: a relay Alembic revision without its Django migration (a packaging mistake:
  ``manage.py migrate`` would never apply it);
- database checks (``manage.py check --database default``, and before ``manage.py migrate``):
  ``relay.E002`` when relay's tables in that database are behind the revision this relay needs
  although every Django migration of this app is recorded as applied (``migrate`` cannot fix
  it: ``manage.py relay migrate`` can), or newer than this relay knows; ``relay.W002`` when
  they are behind and this app's migrations are pending (``manage.py migrate`` brings them up).
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_migrate


class RelayConfig(AppConfig):
    """``relay.contrib.django``, labelled ``relay`` (its models are ``relay.OutboxEvent``, ...)."""

    name = "relay.contrib.django"
    label = "relay"
    verbose_name = "relay outbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from relay._tracking import configure_tracking  # noqa: PLC0415
        from relay.contrib.django._settings import relay_settings  # noqa: PLC0415

        post_migrate.connect(flush_after_django_flush, sender=self)
        checks.register(check_settings, "relay")
        checks.register(check_router, "relay")
        checks.register(check_migrations_cover_revisions, "relay")
        checks.register(check_schema_revision, "relay", checks.Tags.database)
        from relay.contrib.django._routing import install_router  # noqa: PLC0415

        # A failure is reported by check_router, and tracking refuses every row meanwhile.
        with contextlib.suppress(Exception):
            install_router()
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


def check_router(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``manage.py check``: ``RELAY_ROUTER``/``RELAY_DESTINATIONS`` that cannot be installed."""
    from relay._tracking.routing import checked_names  # noqa: PLC0415
    from relay.contrib.django._routing import router_settings  # noqa: PLC0415

    try:
        found = router_settings()
        if found is not None:
            checked_names(found[1])
    except Exception as exc:  # noqa: BLE001 - each becomes one check message
        return [checks.Error(str(exc), id="relay.E004")]
    return []


def check_migrations_cover_revisions(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Every relay Alembic revision has a Django migration that runs it (no database needed)."""
    from relay.contrib.django.migrations_utils import (  # noqa: PLC0415
        django_migration_revisions,
        relay_revisions,
    )

    missing = [r for r in relay_revisions() if r not in django_migration_revisions()]
    if not missing:
        return []
    return [
        checks.Error(
            f"relay's Alembic revision {', '.join(missing)} has no Django migration in "
            "relay.contrib.django.migrations: manage.py migrate would never apply it",
            hint="add the migration (see relay.contrib.django.migrations_utils)",
            id="relay.E003",
        )
    ]


def check_schema_revision(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Each checked database's relay tables are at the revision this relay needs."""
    from relay.contrib.django.migrations_utils import schema_messages  # noqa: PLC0415

    found: list[checks.CheckMessage] = []
    for alias in databases or ():
        found.extend(schema_messages(alias))
    return found


def flush_after_django_flush(sender: Any, *, using: str = "default", **kwargs: Any) -> None:
    """Empty relay's tables when Django's ``flush`` empties the others.

    ``manage.py flush`` (and ``TransactionTestCase`` after each test) deletes every managed
    table's rows, then sends ``post_migrate`` without a migration plan; relay's tables are
    unmanaged, so Django leaves them alone and this empties them. ``migrate`` sends the signal
    with its plan: then nothing is touched.
    """
    if "plan" in kwargs:
        return
    from relay.contrib.django.testing import flush_outbox  # noqa: PLC0415

    flush_outbox([using])
