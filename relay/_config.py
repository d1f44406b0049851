"""``RelaySettings``: every knob, read once from ``RELAY_*`` environment variables.

Read once at the entry point.

Build one ``RelaySettings`` in the CLI, the daemon or Alembic's ``env.py`` and pass it down;
nothing below an entry point reads the environment.
"""

from __future__ import annotations

import os
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from relay import _destinations
from relay._database import redact_url, url_secrets
from relay._errors import ConfigurationError
from relay._event.limits import MAX_BATCH_EVENTS, MAX_REQUEST_BYTES
from relay._tables import DEFAULT_DESTINATION, DESTINATION_NAME_MAX_LENGTH

DEFAULT_DATABASE_URL = "sqlite:///relay.db"

CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 30.0
#: A whole /import request (connect, send, headers, body) ends by then, under the 60 s lease.
REQUEST_DEADLINE_SECONDS = 45.0
LEASE_SECONDS = 60.0
MAX_ATTEMPTS = 30
#: After a 401 the relay leaves rows alone and looks again after this pause.
AUTH_FAILURE_PAUSE_SECONDS = 60.0
#: Batches one relay keeps in flight (the HTTP of one overlaps the claim and ack of the next).
DRAIN_CONCURRENCY = 2
#: Ceiling of the adaptive limit on /import requests one relay keeps in flight: Mixpanel's
#: ~30,000 events/s cap at 2,000 events a request and 500 ms a round trip is 7.5 in flight
#: (it names 10-20 concurrent clients for a backfill: run more relays for more); 0 turns the
#: adaptive limit off.
MAX_IN_FLIGHT = 8
POLL_MIN_SECONDS = 0.05
POLL_MAX_SECONDS = 2.0
DELIVERED_RETENTION_HOURS = 7 * 24.0
DEAD_RETENTION_HOURS = 30 * 24.0
#: Dead letters are kept at least this long, so an operator can see them before they go.
MIN_DEAD_RETENTION_HOURS = 1.0
PURGE_BATCH_SIZE = 5000
RETENTION_INTERVAL_SECONDS = 600.0
GAUGE_INTERVAL_SECONDS = 15.0
MIGRATE_LOCK_TIMEOUT_MS = 200
MIGRATE_LOCK_RETRY_SECONDS = 600.0
METRICS_PORT = 9464
#: Upper bounds: each far beyond any working value, and small enough that every duration
#: still makes a ``datetime``/``timedelta``, a scheduler interval and a database integer.
MAX_DURATION_SECONDS = 24 * 3600.0
MAX_RETENTION_HOURS = 100 * 365 * 24.0
MAX_ATTEMPTS_LIMIT = 1000
MAX_PURGE_BATCH_SIZE = 1_000_000
MAX_MIGRATE_LOCK_TIMEOUT_MS = 3_600_000
#: How often ``relay run`` on PostgreSQL looks for a newly committed outbox row (its wake-up).
WAKE_PROBE_SECONDS = 0.02

REGION_HOSTS: dict[str, str] = {
    "us": "https://api.mixpanel.com",
    "eu": "https://api-eu.mixpanel.com",
    "in": "https://api-in.mixpanel.com",
}


#: Mixpanel's application API (Lexicon Schemas and other app endpoints) per data residency.
APP_API_HOSTS: dict[str, str] = {
    "us": "https://mixpanel.com/api/app",
    "eu": "https://eu.mixpanel.com/api/app",
    "in": "https://in.mixpanel.com/api/app",
}


def _http_url(value: str | None) -> str | None:
    """``value`` if it is an http(s) URL with a host (or ``None``), else ``ValueError``."""
    # Without a scheme (``127.0.0.1:8765``) every request failed at send time, each using
    # up an attempt of every row it carried, instead of refusing to start.
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise ValueError("must be an http:// or https:// URL with a host") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


#: The ``RELAY_MIXPANEL_*`` fields that configure ``default``: set together with a
#: ``[destinations.default]`` table in ``RELAY_DESTINATIONS_FILE`` they are refused.
_DEFAULT_FIELDS = (
    "mixpanel_api_url",
    "mixpanel_app_api_url",
    "mixpanel_project_id",
    "mixpanel_service_account_username",
    "mixpanel_service_account_secret",
    "mixpanel_project_token",
    "mixpanel_gdpr_token",
)


class Destination(BaseModel):
    """One Mixpanel project relay delivers to: its region (or base URLs) and its credentials.

    ``RELAY_MIXPANEL_*`` describe the destination named ``default``; more are configured in
    ``RELAY_DESTINATIONS_FILE`` (secrets from ``RELAY_DESTINATION_<NAME>_*``, see
    :mod:`relay._destinations`) or programmatically in ``RelaySettings.destinations`` (data
    residency: one project per region). The fields mean what the ``RELAY_MIXPANEL_*``
    setting of the same name means.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    region: Literal["us", "eu", "in"] = "us"
    api_url: str | None = None
    app_api_url: str | None = None
    project_id: str | None = None
    service_account_username: str | None = None
    service_account_secret: SecretStr | None = None
    project_token: SecretStr | None = None
    gdpr_token: SecretStr | None = None

    @field_validator("api_url", "app_api_url", mode="after")
    @classmethod
    def _require_http_url(cls, value: str | None) -> str | None:
        return _http_url(value)


class _DatabaseURL(SecretStr):
    """A database URL that shows itself with its passwords masked, not as ``**********``.

    The redacted form says which database is meant (host, port, name), which operators need;
    only the passwords are hidden.
    """

    def _display(self) -> str:
        return redact_url(self.get_secret_value())


class RelaySettings(BaseSettings):
    """All configuration of relay. Each field maps to ``RELAY_<FIELD NAME IN CAPITALS>``."""

    # ``allow_inf_nan=False``: ``inf`` and ``nan`` are not durations (``inf`` seconds made
    # every drain and the scheduler fail at run time, long after start-up).
    model_config = SettingsConfigDict(
        env_prefix="RELAY_", extra="ignore", frozen=True, allow_inf_nan=False
    )

    database_url: SecretStr = Field(
        default=SecretStr(DEFAULT_DATABASE_URL),
        description="SQLAlchemy URL of the outbox database; a secret (it may hold a password).",
    )

    # --- Mixpanel -------------------------------------------------------------------
    mixpanel_api_url: str | None = Field(
        default=None, description="Base URL of the ingestion API; overrides the region's host."
    )
    mixpanel_app_api_url: str | None = Field(
        default=None,
        description="Base URL of the application API (Lexicon Schemas, `relay events push`); "
        "overrides the region's https://{,eu.,in.}mixpanel.com/api/app.",
    )
    mixpanel_region: Literal["us", "eu", "in"] = Field(
        default="us", description="Data residency: api, api-eu or api-in.mixpanel.com."
    )
    mixpanel_project_id: str | None = Field(
        default=None,
        description="Mixpanel project id (an integer); required with a service account.",
    )
    mixpanel_service_account_username: str | None = Field(
        default=None, description="Service-account user name (HTTP Basic; recommended)."
    )
    mixpanel_service_account_secret: SecretStr | None = Field(
        default=None, description="Service-account secret."
    )
    mixpanel_project_token: SecretStr | None = Field(
        default=None,
        description="Project token: the alternative to a service account for /import; required "
        "for profile updates (the $token of every /engage and /groups update).",
    )
    destinations: dict[str, Destination] = Field(
        default_factory=dict,
        description="Data residency, from Python (load_settings(destinations={...})): more "
        "Mixpanel projects by name, each its region and credentials; from the environment "
        "use RELAY_DESTINATIONS_FILE.",
    )
    destinations_file: str | None = Field(
        default=None,
        description="Data residency: path of a TOML file of [destinations.<name>] tables "
        "(region, api_url, app_api_url, project_id, service_account_username; no secrets), "
        "one Mixpanel project each; RELAY_MIXPANEL_* is the one named default unless the file "
        "defines it. Secrets: the RELAY_DESTINATION_<NAME>_* rows below.",
    )
    mixpanel_gdpr_token: SecretStr | None = Field(
        default=None,
        description="OAuth token (Bearer) for Mixpanel's GDPR API: relay forget --mixpanel.",
    )
    erasure_hash_key: SecretStr | None = Field(
        default=None,
        description="Key of the HMAC-SHA256 by which relay forget names a person in the audit.",
    )
    batch_max_events: int = Field(
        default=MAX_BATCH_EVENTS,
        ge=1,
        le=MAX_BATCH_EVENTS,
        description="Events per /import request (Mixpanel's maximum).",
    )
    batch_max_bytes: int = Field(
        default=MAX_REQUEST_BYTES,
        ge=1024,
        le=MAX_REQUEST_BYTES,
        description="Uncompressed body cap per request.",
    )
    connect_timeout_seconds: float = Field(
        default=CONNECT_TIMEOUT_SECONDS,
        gt=0,
        le=MAX_DURATION_SECONDS,
        description="HTTP connect timeout to Mixpanel.",
    )
    read_timeout_seconds: float = Field(
        default=READ_TIMEOUT_SECONDS,
        gt=0,
        le=MAX_DURATION_SECONDS,
        description="HTTP timeout per socket read or write.",
    )
    request_deadline_seconds: float = Field(
        default=REQUEST_DEADLINE_SECONDS,
        gt=0,
        le=MAX_DURATION_SECONDS,
        description="One request as a whole; keep it under lease_seconds.",
    )
    gzip_level: int = Field(default=1, ge=0, le=9, description="0 sends uncompressed bodies.")

    # --- delivery -------------------------------------------------------------------
    lease_seconds: float = Field(
        default=LEASE_SECONDS,
        gt=0,
        le=MAX_DURATION_SECONDS,
        description="How long a claimed batch is reserved for one relay.",
    )
    max_attempts: int = Field(
        default=MAX_ATTEMPTS,
        ge=1,
        le=MAX_ATTEMPTS_LIMIT,
        description="Retryable failures before a row is dead-lettered.",
    )
    auth_failure_pause_seconds: float = Field(
        default=AUTH_FAILURE_PAUSE_SECONDS,
        gt=0,
        le=MAX_DURATION_SECONDS,
        description="Pause after a 401 (or 403, 404, a redirect) before trying again.",
    )
    drain_concurrency: int = Field(
        default=DRAIN_CONCURRENCY,
        ge=1,
        le=16,
        description="Batches one relay keeps in flight when RELAY_MAX_IN_FLIGHT is 0.",
    )
    max_in_flight: int = Field(
        default=MAX_IN_FLIGHT,
        ge=0,
        le=64,
        description=(
            "Ceiling of the adaptive limit on /import requests in flight (paced AIMD: grows "
            "while Mixpanel accepts, falls on a 429); 0 turns it off."
        ),
    )

    # --- tracking -------------------------------------------------------------------
    strict_tracking: bool = Field(
        default=False, description="Raise tracking errors instead of logging them."
    )

    # --- daemon ---------------------------------------------------------------------
    poll_min_seconds: float = Field(
        default=POLL_MIN_SECONDS,
        gt=0,
        le=MAX_DURATION_SECONDS,
        description="Shortest poll interval, after finding work.",
    )
    poll_max_seconds: float = Field(
        default=POLL_MAX_SECONDS,
        gt=0,
        le=MAX_DURATION_SECONDS,
        description="Longest poll interval while idle (on PostgreSQL relay run also probes).",
    )
    delivered_retention_hours: float = Field(
        default=DELIVERED_RETENTION_HOURS,
        ge=0,
        le=MAX_RETENTION_HOURS,
        description=(
            "How long delivered rows are kept; 0 keeps none: each row is deleted by the ack"
            " that records its delivery (nothing is left to replay)."
        ),
    )
    dead_retention_hours: float = Field(
        default=DEAD_RETENTION_HOURS,
        ge=MIN_DEAD_RETENTION_HOURS,
        le=MAX_RETENTION_HOURS,
        description="How long dead letters are kept (at least an hour, so someone sees them).",
    )
    purge_batch_size: int = Field(
        default=PURGE_BATCH_SIZE,
        ge=1,
        le=MAX_PURGE_BATCH_SIZE,
        description="Rows retention deletes per transaction.",
    )
    retention_interval_seconds: float = Field(
        default=RETENTION_INTERVAL_SECONDS,
        gt=0,
        le=MAX_DURATION_SECONDS,
        description="How often retention runs.",
    )
    gauge_interval_seconds: float = Field(
        default=GAUGE_INTERVAL_SECONDS,
        gt=0,
        le=MAX_DURATION_SECONDS,
        description="How often a relay refreshes the backlog gauges.",
    )
    migrate_lock_timeout_ms: int = Field(
        default=MIGRATE_LOCK_TIMEOUT_MS,
        ge=1,
        le=MAX_MIGRATE_LOCK_TIMEOUT_MS,
        description="relay migrate: how long one attempt at a locking statement may wait.",
    )
    migrate_lock_retry_seconds: float = Field(
        default=MIGRATE_LOCK_RETRY_SECONDS,
        ge=0,
        le=MAX_DURATION_SECONDS,
        description="relay migrate: how long a locking statement keeps retrying.",
    )
    metrics_host: str = Field(default="127.0.0.1", description="Address of /healthz and /metrics.")
    metrics_port: int = Field(
        default=METRICS_PORT,
        ge=0,
        le=65535,
        description="Port of /healthz and /metrics; 0 disables.",
    )
    wake_probe_seconds: float = Field(
        default=WAKE_PROBE_SECONDS,
        ge=0,
        le=60,
        allow_inf_nan=False,
        description="relay run on PostgreSQL: seconds between looks for a new row; 0 disables.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Lowest level logged."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        description="console (for people) on a terminal, JSON lines otherwise; or either one.",
    )

    @field_validator("database_url", mode="after")
    @classmethod
    def _mask_database_url(cls, value: SecretStr) -> SecretStr:
        return _DatabaseURL(value.get_secret_value())

    #: The destination these settings are a copy for (``for_destination``), or ``None``.
    _destination: str | None = PrivateAttr(default=None)

    @field_validator("mixpanel_api_url", "mixpanel_app_api_url", mode="after")
    @classmethod
    def _require_http_url(cls, value: str | None) -> str | None:
        return _http_url(value)

    @field_validator("destinations", mode="after")
    @classmethod
    def _check_destination_names(cls, value: dict[str, Destination]) -> dict[str, Destination]:
        for name in value:
            if _destinations.NAME_PATTERN.fullmatch(name) is None:
                raise ValueError(
                    f"destination {name[:DESTINATION_NAME_MAX_LENGTH]!r} is not a destination "
                    f"name: names match [a-z][a-z0-9_-]{{0,{DESTINATION_NAME_MAX_LENGTH - 1}}}"
                )
        return value

    @model_validator(mode="before")
    @classmethod
    def _destinations_from_file(cls, data: Any) -> Any:
        """Add ``RELAY_DESTINATIONS_FILE``'s destinations, their secrets from the environment.

        Raises ``ConfigurationError`` (one line naming the destination and setting, never a
        value) for anything :mod:`relay._destinations` refuses, a destination defined both in
        the file and by the caller differently, and ``default`` defined both in the file and
        by ``RELAY_MIXPANEL_*``.
        """
        if not isinstance(data, dict):
            return data
        path = data.get("destinations_file")
        if path is not None and not str(path).strip():
            raise ConfigurationError(
                f"{_destinations.FILE_VARIABLE} is empty: name the destinations file, or unset it"
            )
        tables = _destinations.read_file(str(path)) if path else {}
        # Read even without a file: a secret for a destination nobody defined is a typo.
        secrets = _destinations.secrets_from(os.environ, list(tables))
        if not tables:
            return data
        where = f"{_destinations.FILE_VARIABLE} {path}"
        if DEFAULT_DESTINATION in tables:
            given = [name for name in _DEFAULT_FIELDS if data.get(name) not in (None, "")]
            if given:
                raise ConfigurationError(
                    f"{where} defines destination {DEFAULT_DESTINATION!r} and "
                    f"RELAY_{given[0].upper()} is set too: configure it in one place"
                )
        merged = dict(data.get("destinations") or {})
        for name, table in tables.items():
            values = {**table, **secrets.get(name, {})}
            problem = _destinations.credentials_problem(name, values)
            if problem is not None:
                raise ConfigurationError(f"{where}: destination {name!r}: {problem}")
            try:
                built = Destination(**values)
            except ValidationError as exc:
                raise ConfigurationError(
                    f"{where}: destination {name!r}: {describe_invalid(exc, prefix='')}"
                ) from None
            if name in merged and _as_destination(merged[name]) != built:
                raise ConfigurationError(
                    f"destination {name!r} is defined both in {where} and by the caller's "
                    "settings: keep one"
                )
            merged[name] = built
        return {**data, "destinations": merged}

    @model_validator(mode="after")
    def _check_together(self) -> RelaySettings:
        """The rules between settings the README states."""
        if self.poll_min_seconds > self.poll_max_seconds:
            raise ValueError("RELAY_POLL_MIN_SECONDS must not exceed RELAY_POLL_MAX_SECONDS")
        # A request that outlives its lease lets another relay claim and send the same rows.
        if self.request_deadline_seconds >= self.lease_seconds:
            raise ValueError(
                "RELAY_REQUEST_DEADLINE_SECONDS must be under RELAY_LEASE_SECONDS (a request "
                "outliving its lease lets another relay send the same rows)"
            )
        return self

    def destination_names(self) -> tuple[str, ...]:
        """The configured destinations: ``default`` (``RELAY_MIXPANEL_*``) first, then the
        others of ``destinations`` in the order given.

        ``default`` is left out when other destinations are configured, the file does not
        define it and no ``RELAY_MIXPANEL_*`` project setting is given at all: a deployment whose
        projects are all named (``us``, ``eu``) has no ``default`` project to check, deliver to,
        file erasures with or push to. Every command and the daemon read this one list.
        """
        others = tuple(n for n in self.destinations if n != DEFAULT_DESTINATION)
        if others and DEFAULT_DESTINATION not in self.destinations and not self._default_given():
            return others
        return (DEFAULT_DESTINATION, *others)

    def _default_given(self) -> bool:
        """Whether any ``RELAY_MIXPANEL_*`` setting of a project is given (region aside: it
        has a default)."""
        given = (
            self.mixpanel_project_id,
            self.mixpanel_service_account_username,
            self.mixpanel_service_account_secret,
            self.mixpanel_project_token,
            self.mixpanel_gdpr_token,
            self.mixpanel_api_url,
            self.mixpanel_app_api_url,
        )
        return any(
            value.get_secret_value() if isinstance(value, SecretStr) else value for value in given
        )

    def for_destination(self, name: str) -> RelaySettings:
        """These settings with ``RELAY_MIXPANEL_*`` replaced by destination ``name``'s.

        Every Mixpanel client is built from a ``RelaySettings``; a destination's client is built
        from this copy. ``default`` without an entry in ``destinations`` is ``RELAY_MIXPANEL_*``
        itself. Raises ``ConfigurationError`` for a name that is not configured.
        """
        destination = self.destinations.get(name)
        if destination is None:
            if name == DEFAULT_DESTINATION and name in self.destination_names():
                return self
            raise ConfigurationError(
                f"unknown destination {name[:DESTINATION_NAME_MAX_LENGTH]!r}: the configured "
                f"ones are {', '.join(self.destination_names())}"
            )
        copy = self.model_copy(
            update={
                "mixpanel_region": destination.region,
                "mixpanel_api_url": destination.api_url,
                "mixpanel_app_api_url": destination.app_api_url,
                "mixpanel_project_id": destination.project_id,
                "mixpanel_service_account_username": destination.service_account_username,
                "mixpanel_service_account_secret": destination.service_account_secret,
                "mixpanel_project_token": destination.project_token,
                "mixpanel_gdpr_token": destination.gdpr_token,
            }
        )
        copy._destination = name
        return copy

    @property
    def destination(self) -> str | None:
        """The destination these settings are ``for_destination``'s copy for; ``None`` for
        settings as read (whose ``RELAY_MIXPANEL_*`` are ``default``)."""
        return self._destination

    def setting_names(self) -> dict[str, str]:
        """How a person sets each Mixpanel field of these settings, for messages: keys
        ``project_id``, ``username``, ``secret``, ``token``, ``gdpr_token``, ``region``,
        ``api_url``, ``app_api_url`` and ``prefix`` (``destination 'eu': `` for a destination's
        copy, else empty).

        ``RELAY_MIXPANEL_*`` for the settings as read; for a destination's copy its own: the
        ``RELAY_DESTINATION_<NAME>_*`` variable of a secret, the key of its
        ``[destinations.<name>]`` table for the rest (``region of [destinations.eu]``), never
        default's variables.
        """
        name = self._destination
        if name is None:
            return {
                "project_id": "RELAY_MIXPANEL_PROJECT_ID",
                "username": "RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME",
                "secret": "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET",
                "token": "RELAY_MIXPANEL_PROJECT_TOKEN",
                "gdpr_token": "RELAY_MIXPANEL_GDPR_TOKEN",
                "region": "RELAY_MIXPANEL_REGION",
                "api_url": "RELAY_MIXPANEL_API_URL",
                "app_api_url": "RELAY_MIXPANEL_APP_API_URL",
                "prefix": "",
            }
        label = _destinations.setting_label
        return {
            "project_id": label(name, "project_id"),
            "username": label(name, "service_account_username"),
            "secret": label(name, "service_account_secret"),
            "token": label(name, "project_token"),
            "gdpr_token": label(name, "gdpr_token"),
            "region": label(name, "region"),
            "api_url": label(name, "api_url"),
            "app_api_url": label(name, "app_api_url"),
            "prefix": f"destination {name!r}: ",
        }

    @property
    def database_url_redacted(self) -> str:
        """The database URL as it may be shown to people (:func:`relay._database.redact_url`)."""
        return redact_url(self.database_url.get_secret_value())

    def secret_values(self) -> frozenset[str]:
        """Every secret these settings hold, in every spelling it may be printed in.

        The database password(s) (:func:`relay._database.url_secrets`) and the Mixpanel
        service-account secret and project token: what logs and CLI errors are scrubbed of.
        """
        found = set(url_secrets(self.database_url.get_secret_value()))
        destination_secrets = [
            secret
            for d in self.destinations.values()
            for secret in (d.service_account_secret, d.project_token, d.gdpr_token)
        ]
        for secret in (
            self.mixpanel_service_account_secret,
            self.mixpanel_project_token,
            self.mixpanel_gdpr_token,
            self.erasure_hash_key,
            *destination_secrets,
        ):
            if secret is not None and secret.get_secret_value():
                found.add(secret.get_secret_value())
        return frozenset(found)

    @property
    def mixpanel_base_url(self) -> str:
        """The ingestion base URL: the override if set, else the region's host."""
        return (self.mixpanel_api_url or REGION_HOSTS[self.mixpanel_region]).rstrip("/")

    @property
    def mixpanel_app_base_url(self) -> str:
        """The application API base URL: the override if set, else the region's."""
        return (self.mixpanel_app_api_url or APP_API_HOSTS[self.mixpanel_region]).rstrip("/")

    def require_service_account(self) -> tuple[str, str, str]:
        """(project id, username, secret) for the app APIs, or ``ConfigurationError``.

        The Lexicon Schemas API takes a service account only (no project token), and its
        ``projectId`` is an integer.
        """
        username = self.mixpanel_service_account_username
        secret = self.mixpanel_service_account_secret
        project_id = self.mixpanel_project_id
        names = self.setting_names()
        if not (username and secret and secret.get_secret_value() and project_id):
            raise ConfigurationError(
                f"{names['prefix']}a service account is required: set {names['username']}, "
                f"{names['secret']} and {names['project_id']}"
            )
        if not project_id.isdigit():
            raise ConfigurationError(
                f"{names['prefix']}{names['project_id']} must be an integer project id"
            )
        return project_id, username, secret.get_secret_value()

    def require_mixpanel_credentials(self) -> None:
        """Raise ``ConfigurationError`` unless a complete way to authenticate to /import is set."""
        has_service_account = bool(
            self.mixpanel_service_account_username and self.mixpanel_service_account_secret
        )
        names = self.setting_names()
        if has_service_account and not self.mixpanel_project_id:
            raise ConfigurationError(
                f"{names['prefix']}{names['project_id']} is required with service-account "
                "credentials"
            )
        if not has_service_account and self.mixpanel_project_token is None:
            raise ConfigurationError(
                f"{names['prefix']}no Mixpanel credentials: set {names['username']}, "
                f"{names['secret']} and {names['project_id']}, or {names['token']}"
            )


def load_settings(**given: Any) -> RelaySettings:
    """``RelaySettings(**given)`` (and ``RELAY_*``), or ``ConfigurationError`` naming each
    invalid setting and the rule it breaks, never its value (it may be a secret)."""
    try:
        return RelaySettings(**given)
    except ValidationError as exc:
        raise ConfigurationError(f"invalid settings: {describe_invalid(exc)}") from None


def describe_invalid(exc: ValidationError, *, prefix: str = "RELAY_") -> str:
    """The problems of ``exc`` as ``RELAY_NAME: rule; ...``: locations and rules, no input.

    A problem inside a destination given in Python is ``destinations.<name>.<field>: rule``
    (no ``RELAY_`` variable holds it); ``prefix=""`` names the fields of one model as they are.
    """
    problems = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        message = str(err["msg"]).removeprefix("Value error, ")
        loc = err["loc"]
        if loc and loc[0] == "destinations" and len(loc) > 1:
            name = str(loc[1])[:DESTINATION_NAME_MAX_LENGTH]
            field = ".".join(str(part) for part in loc[2:])
            problems.append(
                f"destination {name!r}" + (f": {field}" if field else "") + f": {message}"
            )
        elif loc and prefix:
            name = prefix + "_".join(str(part) for part in loc).upper()
            problems.append(f"{name}: {message}")
        elif loc:
            problems.append(f"{'.'.join(str(part) for part in loc)}: {message}")
        else:  # a rule between settings names them itself
            problems.append(message)
    return "; ".join(problems)


def _as_destination(value: object) -> Destination | None:
    """``value`` (a ``Destination`` or its fields) as a ``Destination``; ``None`` if invalid."""
    if isinstance(value, Destination):
        return value
    try:
        return Destination.model_validate(value)
    except ValidationError:
        return None
