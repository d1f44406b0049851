"""relay's settings in a Django project: ``settings.RELAY``, the environment winning, and the URL.

``RELAY`` is a dict of :class:`relay.RelaySettings` fields, in capitals as Django settings are
(``{"MIXPANEL_PROJECT_ID": "...", "STRICT_TRACKING": True}``; lower case works too). A field
whose ``RELAY_*`` environment variable is set takes the variable's value, as everywhere else in
relay, so a deployment can override the code's settings. Two keys are Django's own:

- ``DATABASE``: the alias of the database holding the outbox (default ``"default"``);
- ``DATABASE_URL`` (or ``RELAY_DATABASE_URL``): the SQLAlchemy URL the relay daemon and the
  operator commands use; by default it is built from that alias's ``DATABASES`` entry.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import sqlalchemy as sa
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from relay._config import RelaySettings
from relay._database import create_engine

_ALIAS_KEY = "database"
#: Keys of ``settings.RELAY`` that are not RelaySettings fields (read by the Django app).
_DJANGO_KEYS = frozenset({_ALIAS_KEY, "employee_directory"})
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _configured() -> dict[str, Any]:
    raw = getattr(django_settings, "RELAY", None) or {}
    if not isinstance(raw, dict):
        raise ImproperlyConfigured("settings.RELAY must be a dict of relay settings")
    values = {str(key).lower(): value for key, value in raw.items()}
    unknown = sorted(set(values) - set(RelaySettings.model_fields) - _DJANGO_KEYS)
    if unknown:
        raise ImproperlyConfigured(
            "settings.RELAY has unknown keys: " + ", ".join(k.upper() for k in unknown)
        )
    return values


def configured_value(key: str) -> Any:
    """The value of ``settings.RELAY[key.upper()]`` as given, or ``None``."""
    return _configured().get(key)


def outbox_alias() -> str:
    """The Django database alias holding the outbox: ``RELAY["DATABASE"]``, else ``default``."""
    return str(_configured().get(_ALIAS_KEY, "default"))


def relay_settings(**overrides: Any) -> RelaySettings:
    """:class:`relay.RelaySettings` from ``settings.RELAY``; set ``RELAY_*`` variables win.

    ``overrides`` (field names) win over both. Raises ``ImproperlyConfigured`` naming the keys
    that are wrong (never their values: one may be a secret).
    """
    return RelaySettings(**_field_values(overrides))


def field_values(**overrides: Any) -> dict[str, Any]:
    """The field values :func:`relay_settings` validates (for ``manage.py relay``)."""
    return _field_values(overrides)


def _field_values(overrides: dict[str, Any]) -> dict[str, Any]:
    values = _configured()
    alias = str(values.pop(_ALIAS_KEY, "default"))
    for key in _DJANGO_KEYS:
        values.pop(key, None)
    environment = {name.upper() for name in os.environ}
    chosen = {k: v for k, v in values.items() if f"RELAY_{k.upper()}" not in environment}
    if "database_url" not in values and "RELAY_DATABASE_URL" not in environment:
        chosen["database_url"] = database_url(alias)
    chosen.update(overrides)
    # Validate here, so that a bad value is reported with its key and without its value.
    try:
        RelaySettings(**chosen)
    except ValidationError as exc:
        problems = "; ".join(
            (
                _where("_".join(str(p) for p in err["loc"]).upper(), environment) + ": "
                if err["loc"]
                else ""  # a rule between settings names them itself
            )
            + str(err["msg"]).removeprefix("Value error, ")
            for err in exc.errors(include_url=False, include_input=False)
        )
        raise ImproperlyConfigured(f"invalid relay settings: {problems}") from None
    return chosen


def _where(name: str, environment: set[str]) -> str:
    """Where the setting ``name`` came from: its environment variable or the RELAY dict."""
    return f"RELAY_{name}" if f"RELAY_{name}" in environment else f"settings.RELAY[{name!r}]"


def database_url(alias: str = "default") -> str:
    """The SQLAlchemy URL of Django's database ``alias`` (the test database during tests).

    The driver is the one Django uses (psycopg 3 or psycopg2; PyMySQL or mysqlclient).
    ``OPTIONS`` of plain text or number values become query parameters (``sslmode``, ...).
    An in-memory SQLite database cannot be reached from another connection and is refused.
    """
    from relay.contrib.django._bridge import sqlalchemy_backend  # noqa: PLC0415

    entry = connections[alias].settings_dict
    backend, driver = sqlalchemy_backend(alias)
    name = str(entry.get("NAME") or "")
    if backend == "sqlite":
        if not name or name == ":memory:" or "mode=memory" in name:
            raise ImproperlyConfigured(
                f"database {alias!r} is an in-memory SQLite database, which the relay daemon "
                "and the operator commands cannot open; use a file"
            )
        return sa.URL.create("sqlite", database=name).render_as_string(hide_password=False)
    query = {
        str(k): str(v)
        for k, v in (entry.get("OPTIONS") or {}).items()
        if isinstance(v, str | int) and not isinstance(v, bool)
    }
    if backend == "mysql":
        query.setdefault("charset", "utf8mb4")
    url = sa.URL.create(
        f"{backend}+{driver}",
        username=entry.get("USER") or None,
        password=entry.get("PASSWORD") or None,
        host=entry.get("HOST") or None,
        port=int(entry["PORT"]) if entry.get("PORT") else None,
        database=name or None,
        query=query,
    )
    return url.render_as_string(hide_password=False)


def relay_engine(alias: str | None = None) -> Engine:
    """A SQLAlchemy engine of relay's own on the outbox database, for the operator functions.

    Its connections are separate from Django's (the operator actions of :mod:`relay.admin`
    commit on their own, audited); one engine per alias and process. It keeps no connection
    open between uses (a ``NullPool``): operator actions are rare, and an idle connection would
    keep a test database from being dropped.
    """
    alias = alias or outbox_alias()
    url = database_url(alias)
    with _lock:
        engine = _engines.get(alias)
        if engine is None or engine.url.render_as_string(hide_password=False) != url:
            engine = create_engine(url, poolclass=NullPool)
            _engines[alias] = engine
    return engine
