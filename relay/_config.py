"""``RelaySettings``: every knob, read once from ``RELAY_*`` environment variables.

Read once at the entry point.

Build one ``RelaySettings`` in the CLI, the daemon or Alembic's ``env.py`` and pass it down;
nothing below an entry point reads the environment.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from relay._database import redact_url, url_secrets
from relay._errors import ConfigurationError
from relay._event.limits import MAX_BATCH_EVENTS, MAX_REQUEST_BYTES

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


class _DatabaseURL(SecretStr):
    """A database URL that shows itself with its passwords masked, not as ``**********``.

    The redacted form says which database is meant (host, port, name), which operators need;
    only the passwords are hidden.
    """

    def _display(self) -> str:
        return redact_url(self.get_secret_value())


class RelaySettings(BaseSettings):
    """All configuration of relay. Each field maps to ``RELAY_<FIELD NAME IN CAPITALS>``."""

    model_config = SettingsConfigDict(env_prefix="RELAY_", extra="ignore", frozen=True)

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
    mixpanel_project_id: str | None = None
    mixpanel_service_account_username: str | None = None
    mixpanel_service_account_secret: SecretStr | None = None
    mixpanel_project_token: SecretStr | None = None
    mixpanel_gdpr_token: SecretStr | None = Field(
        default=None,
        description="OAuth token (Bearer) for Mixpanel's GDPR API: relay forget --mixpanel.",
    )
    erasure_hash_key: SecretStr | None = Field(
        default=None,
        description="Key of the HMAC-SHA256 by which relay forget names a person in the audit.",
    )
    batch_max_events: int = Field(default=MAX_BATCH_EVENTS, ge=1, le=MAX_BATCH_EVENTS)
    batch_max_bytes: int = Field(default=MAX_REQUEST_BYTES, ge=1024)
    connect_timeout_seconds: float = Field(default=CONNECT_TIMEOUT_SECONDS, gt=0)
    read_timeout_seconds: float = Field(default=READ_TIMEOUT_SECONDS, gt=0)
    request_deadline_seconds: float = Field(default=REQUEST_DEADLINE_SECONDS, gt=0)
    gzip_level: int = Field(default=1, ge=0, le=9, description="0 sends uncompressed bodies.")

    # --- delivery -------------------------------------------------------------------
    lease_seconds: float = Field(default=LEASE_SECONDS, gt=0)
    max_attempts: int = Field(default=MAX_ATTEMPTS, ge=1)
    auth_failure_pause_seconds: float = Field(default=AUTH_FAILURE_PAUSE_SECONDS, gt=0)
    drain_concurrency: int = Field(default=DRAIN_CONCURRENCY, ge=1, le=16)

    # --- tracking -------------------------------------------------------------------
    strict_tracking: bool = Field(
        default=False, description="Raise tracking errors instead of logging them."
    )

    # --- daemon ---------------------------------------------------------------------
    poll_min_seconds: float = Field(default=POLL_MIN_SECONDS, gt=0)
    poll_max_seconds: float = Field(default=POLL_MAX_SECONDS, gt=0)
    delivered_retention_hours: float = Field(default=DELIVERED_RETENTION_HOURS, ge=0)
    dead_retention_hours: float = Field(default=DEAD_RETENTION_HOURS, ge=MIN_DEAD_RETENTION_HOURS)
    purge_batch_size: int = Field(default=PURGE_BATCH_SIZE, ge=1)
    retention_interval_seconds: float = Field(default=RETENTION_INTERVAL_SECONDS, gt=0)
    gauge_interval_seconds: float = Field(default=GAUGE_INTERVAL_SECONDS, gt=0)
    migrate_lock_timeout_ms: int = Field(
        default=MIGRATE_LOCK_TIMEOUT_MS,
        ge=1,
        description="relay migrate: how long one attempt at a locking statement may wait.",
    )
    migrate_lock_retry_seconds: float = Field(
        default=MIGRATE_LOCK_RETRY_SECONDS,
        ge=0,
        description="relay migrate: how long a locking statement keeps retrying.",
    )
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=METRICS_PORT, ge=0, le=65535, description="0 disables.")
    wake_probe_seconds: float = Field(
        default=WAKE_PROBE_SECONDS,
        ge=0,
        le=60,
        allow_inf_nan=False,
        description="relay run on PostgreSQL: seconds between looks for a new row; 0 disables.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"

    @field_validator("database_url", mode="after")
    @classmethod
    def _mask_database_url(cls, value: SecretStr) -> SecretStr:
        return _DatabaseURL(value.get_secret_value())

    @model_validator(mode="after")
    def _check_poll_bounds(self) -> RelaySettings:
        if self.poll_min_seconds > self.poll_max_seconds:
            raise ValueError("poll_min_seconds must not exceed poll_max_seconds")
        return self

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
        for secret in (
            self.mixpanel_service_account_secret,
            self.mixpanel_project_token,
            self.mixpanel_gdpr_token,
            self.erasure_hash_key,
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
        if not (username and secret and secret.get_secret_value() and project_id):
            raise ConfigurationError(
                "a service account is required: set RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME, "
                "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET and RELAY_MIXPANEL_PROJECT_ID"
            )
        if not project_id.isdigit():
            raise ConfigurationError("RELAY_MIXPANEL_PROJECT_ID must be an integer project id")
        return project_id, username, secret.get_secret_value()

    def require_mixpanel_credentials(self) -> None:
        """Raise ``ConfigurationError`` unless a complete way to authenticate to /import is set."""
        has_service_account = bool(
            self.mixpanel_service_account_username and self.mixpanel_service_account_secret
        )
        if has_service_account and not self.mixpanel_project_id:
            raise ConfigurationError(
                "RELAY_MIXPANEL_PROJECT_ID is required with service-account credentials"
            )
        if not has_service_account and self.mixpanel_project_token is None:
            raise ConfigurationError(
                "no Mixpanel credentials: set RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME, "
                "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET and RELAY_MIXPANEL_PROJECT_ID, "
                "or RELAY_MIXPANEL_PROJECT_TOKEN"
            )
