"""``RelaySettings`` refuses what cannot work, as a whole (issue 21, item 6): non-finite and
unbounded numbers, a request deadline not under the lease, a Mixpanel URL without a scheme."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from relay import RelaySettings
from relay._config import describe_invalid, load_settings
from relay._errors import ConfigurationError

#: (field, value): each once accepted, each failing only at run time (a traceback, every tick,
#: or retention that never purges).
UNWORKABLE = [
    ("lease_seconds", "inf"),
    ("lease_seconds", "nan"),
    ("lease_seconds", "1e12"),
    ("poll_max_seconds", "inf"),
    ("retention_interval_seconds", "inf"),
    ("gauge_interval_seconds", "1e12"),
    ("delivered_retention_hours", "inf"),
    ("dead_retention_hours", "1e12"),
    ("purge_batch_size", str(2**63)),
    ("purge_batch_size", "100000000000000000000"),
    ("max_attempts", str(2**63)),
    ("batch_max_bytes", str(2**63)),
    ("migrate_lock_timeout_ms", str(2**63)),
    ("migrate_lock_retry_seconds", "inf"),
    ("auth_failure_pause_seconds", "-inf"),
    ("connect_timeout_seconds", "nan"),
    ("read_timeout_seconds", "1e12"),
    ("mixpanel_api_url", "127.0.0.1:8765"),
    ("mixpanel_api_url", "api.mixpanel.com"),
    ("mixpanel_api_url", "ftp://api.mixpanel.com"),
    ("mixpanel_api_url", "http://:80"),
    ("mixpanel_api_url", "http://127.0.0.1:port"),
    ("mixpanel_app_api_url", "mixpanel.com/api/app"),
]


@pytest.mark.parametrize(("field", "value"), UNWORKABLE)
def test_an_unworkable_value_is_refused_naming_the_setting_not_the_value(
    monkeypatch: pytest.MonkeyPatch, field: str, value: str
) -> None:
    """Each unworkable RELAY_* value is a ConfigurationError naming the variable, not the value."""
    monkeypatch.setenv(f"RELAY_{field.upper()}", value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert f"RELAY_{field.upper()}" in message
    assert value not in message
    assert "\n" not in message


def test_a_request_deadline_not_under_the_lease_is_refused_naming_both() -> None:
    """RELAY_LEASE_SECONDS=0.001 under the default 45 s deadline is refused, naming both."""
    with pytest.raises(ValidationError) as caught:
        RelaySettings(lease_seconds=0.001)
    text = describe_invalid(caught.value)
    assert "RELAY_REQUEST_DEADLINE_SECONDS" in text
    assert "RELAY_LEASE_SECONDS" in text
    with pytest.raises(ValidationError):
        RelaySettings(lease_seconds=10, request_deadline_seconds=10)


def test_a_poll_minimum_over_the_maximum_is_refused_naming_both() -> None:
    """RELAY_POLL_MIN_SECONDS over RELAY_POLL_MAX_SECONDS is one problem naming both."""
    with pytest.raises(ValidationError) as caught:
        RelaySettings(poll_min_seconds=5, poll_max_seconds=1)
    assert describe_invalid(caught.value) == (
        "RELAY_POLL_MIN_SECONDS must not exceed RELAY_POLL_MAX_SECONDS"
    )


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8765", "https://api-eu.mixpanel.com", "http://[::1]:9/base/"]
)
def test_http_urls_with_a_host_are_kept_as_written(url: str) -> None:
    """A full http(s) URL is accepted unchanged (the stand-in's loopback URL included)."""
    assert RelaySettings(mixpanel_api_url=url).mixpanel_api_url == url


def test_the_bounds_leave_every_default_and_documented_example_valid() -> None:
    """The defaults, and the short lease the fault rig runs with, still validate."""
    RelaySettings()
    RelaySettings(lease_seconds=3, request_deadline_seconds=2.5, poll_max_seconds=0.5)
    RelaySettings(delivered_retention_hours=0, migrate_lock_retry_seconds=0)
