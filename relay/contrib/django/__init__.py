"""relay in a Django project: events written in Django's own transaction, and operator tooling.

Add the app (``pip install relay-outbox[django]``)::

    INSTALLED_APPS = [..., "relay.contrib.django"]
    RELAY = {"MIXPANEL_PROJECT_ID": "...", ...}   # optional; RELAY_* environment variables win

- :func:`track` / :func:`track_many`: :func:`relay.track` on Django's connection (``using``), so
  the events commit and roll back with the enclosing ``transaction.atomic()`` block
  (``independent=True``: on a connection of its own, for failure events);
  :func:`update_profile` / :func:`update_group` likewise for profile updates.
- ``python manage.py migrate`` creates relay's tables by running relay's own Alembic
  migrations (the schema ``relay migrate`` makes; tables it made before are adopted).
- ``python manage.py relay <command>`` runs any ``relay`` command with the Django settings.
- The Django admin lists the outbox and the dead letters, with requeue / discard / replay.
- :mod:`relay.contrib.django.catalog`: an employee directory over the project's own models,
  and :class:`~relay.contrib.django.catalog.SessionlessHelper` for session-first helpers.
"""

from relay.contrib.django._bridge import borrowed_connection
from relay.contrib.django._settings import database_url, relay_engine, relay_settings
from relay.contrib.django._tracking import track, track_many, update_group, update_profile

__all__ = [
    "borrowed_connection",
    "database_url",
    "relay_engine",
    "relay_settings",
    "track",
    "track_many",
    "update_group",
    "update_profile",
]
