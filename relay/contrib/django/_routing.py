"""The router of a Django project: ``settings.RELAY_ROUTER`` and ``settings.RELAY_DESTINATIONS``.

``RELAY_ROUTER`` is the dotted path of the host's router function (``"myapp.routing.route"``,
see :func:`relay.set_router`); ``RELAY_DESTINATIONS`` the destination names it may return
(``["us", "eu"]``; default: the configured ones, ``RelaySettings.destination_names()``). The
app config installs it at start-up; a setting that cannot be installed is reported by
``manage.py check`` (``relay.E004``, naming the setting, never a value), and every
``track()`` is refused (an :class:`~relay.EventContractError`) until it is fixed: a router
that failed to install must not send the organizations' data to ``default`` instead.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from relay._tracking.routing import refuse_routes, set_router


def router_settings() -> tuple[Any, tuple[str, ...]] | None:
    """``(router, destinations)`` from the settings, or ``None`` when ``RELAY_ROUTER`` is unset.

    Raises :class:`ImproperlyConfigured` naming the setting at fault.
    """
    path = getattr(django_settings, "RELAY_ROUTER", None)
    names = getattr(django_settings, "RELAY_DESTINATIONS", None)
    if path is None:
        if names is not None:
            raise ImproperlyConfigured("settings.RELAY_DESTINATIONS is set without RELAY_ROUTER")
        return None
    if not isinstance(path, str) or not path:
        raise ImproperlyConfigured("settings.RELAY_ROUTER must be a dotted path to a function")
    try:
        router = import_string(path)
    except ImportError:
        raise ImproperlyConfigured(f"settings.RELAY_ROUTER: cannot import {path[:200]!r}") from None
    if names is None:
        from relay.contrib.django._settings import relay_settings  # noqa: PLC0415

        names = relay_settings().destination_names()
    if isinstance(names, str) or not isinstance(names, list | tuple):
        raise ImproperlyConfigured("settings.RELAY_DESTINATIONS must be a list of names")
    return router, tuple(names)


def install_router() -> None:
    """Install the project's router (or none).

    Raises ``ImproperlyConfigured`` or ``ConfigurationError`` naming the setting at fault,
    after making tracking refuse every row (see the module docstring).
    """
    try:
        found = router_settings()
        if found is not None:
            set_router(found[0], destinations=found[1])
    except Exception as exc:
        refuse_routes(f"settings.RELAY_ROUTER could not be installed ({type(exc).__name__})")
        raise
