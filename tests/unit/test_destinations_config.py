"""Destinations configured from RELAY_DESTINATIONS_FILE and RELAY_DESTINATION_<NAME>_* (issue 24):
what is read, and every refusal one line naming the destination and setting, never a value."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from relay._config import RelaySettings, load_settings
from relay._errors import ConfigurationError

SECRET = "s3cr3t-Value-that-must-never-show"
TOKEN = "t0ken-Value-that-must-never-show"

TWO = """
[destinations.eu]
region = "eu"
project_id = 222
service_account_username = "eu-user"

[destinations.us-west]
region = "us"
api_url = "http://127.0.0.1:9/"
project_id = "111"
"""


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No RELAY_* variable of the machine's leaks into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("RELAY_"):
            monkeypatch.delenv(name)


def _file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "destinations.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _refusal(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert SECRET not in message
    assert TOKEN not in message
    return message


def _two(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RelaySettings:
    monkeypatch.setenv("RELAY_DESTINATIONS_FILE", _file(tmp_path, TWO))
    monkeypatch.setenv("RELAY_DESTINATION_EU_SERVICE_ACCOUNT_SECRET", SECRET)
    monkeypatch.setenv("RELAY_DESTINATION_US_WEST_PROJECT_TOKEN", TOKEN)
    return load_settings()


def test_the_file_and_environment_make_the_destinations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tables give region, URLs, project id and user; the environment gives each its secrets."""
    settings = _two(tmp_path, monkeypatch)

    # No RELAY_MIXPANEL_* project setting: every project is named, there is no default.
    assert settings.destination_names() == ("eu", "us-west")
    eu = settings.for_destination("eu")
    assert eu.mixpanel_region == "eu"
    assert eu.mixpanel_project_id == "222"  # an integer in TOML, a string as every project id
    assert eu.mixpanel_app_base_url == "https://eu.mixpanel.com/api/app"
    assert eu.mixpanel_base_url == "https://api-eu.mixpanel.com"
    assert eu.require_service_account() == ("222", "eu-user", SECRET)
    west = settings.for_destination("us-west")
    assert west.mixpanel_base_url == "http://127.0.0.1:9"
    assert west.mixpanel_project_token is not None
    assert west.mixpanel_project_token.get_secret_value() == TOKEN
    assert {SECRET, TOKEN} <= settings.secret_values()


def test_default_stays_relay_mixpanel_unless_the_file_defines_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a [destinations.default] table, default is RELAY_MIXPANEL_* (settings unchanged)."""
    monkeypatch.setenv("RELAY_MIXPANEL_PROJECT_TOKEN", "default-token")
    settings = _two(tmp_path, monkeypatch)

    assert settings.destination_names() == ("default", "eu", "us-west")
    default = settings.for_destination("default")
    assert default is settings
    assert default.destination is None
    assert default.mixpanel_project_token is not None
    assert default.mixpanel_project_token.get_secret_value() == "default-token"


def test_a_file_may_define_default_with_its_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[destinations.default] replaces RELAY_MIXPANEL_*; secrets: RELAY_DESTINATION_DEFAULT_*."""
    path = _file(tmp_path, '[destinations.default]\nregion = "in"\n')
    monkeypatch.setenv("RELAY_DESTINATIONS_FILE", path)
    monkeypatch.setenv("RELAY_DESTINATION_DEFAULT_PROJECT_TOKEN", TOKEN)

    default = load_settings().for_destination("default")

    assert default.mixpanel_base_url == "https://api-in.mixpanel.com"
    assert default.destination == "default"


def test_default_in_the_file_and_in_relay_mixpanel_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Configuring default twice is refused, naming the file and the RELAY_MIXPANEL_* setting."""
    path = _file(tmp_path, '[destinations.default]\nregion = "in"\n')
    message = _refusal(
        monkeypatch,
        {
            "RELAY_DESTINATIONS_FILE": path,
            "RELAY_DESTINATION_DEFAULT_PROJECT_TOKEN": TOKEN,
            "RELAY_MIXPANEL_PROJECT_TOKEN": SECRET,
        },
    )
    assert path in message
    assert "RELAY_MIXPANEL_PROJECT_TOKEN" in message


def test_secrets_come_from_secret_files_without_their_line_break(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RELAY_DESTINATION_<NAME>_<SECRET>_FILE names a file whose text (less one newline) is it."""
    secret_file = tmp_path / "eu-secret"
    secret_file.write_text(SECRET + "\n", encoding="utf-8")
    monkeypatch.setenv("RELAY_DESTINATIONS_FILE", _file(tmp_path, TWO))
    monkeypatch.setenv("RELAY_DESTINATION_EU_SERVICE_ACCOUNT_SECRET_FILE", str(secret_file))
    monkeypatch.setenv("RELAY_DESTINATION_US_WEST_PROJECT_TOKEN", TOKEN)

    settings = load_settings()

    assert settings.for_destination("eu").require_service_account()[2] == SECRET


@pytest.mark.parametrize(
    "key", ["service_account_secret", "project_token", "gdpr_token", "project_token_file"]
)
def test_a_secret_in_the_file_is_refused_naming_the_key_and_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    """A secret (or a secret file's path) in the file: refused, naming key, file, and variable."""
    path = _file(tmp_path, f'[destinations.eu]\nregion = "eu"\n{key} = "{SECRET}"\n')

    message = _refusal(monkeypatch, {"RELAY_DESTINATIONS_FILE": path})

    assert repr(key) in message
    assert path in message
    assert "RELAY_DESTINATION_EU_" in message
    assert "secrets never go in the file" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[destinations.eu]\nregion = "eu"\nproject = 1\n', "unknown key 'project'"),
        ('[destinations.eu]\nregion = "mars"\n', "destination 'eu': region"),
        (f'[destinations.eu]\napi_url = "{SECRET}"\n', "destination 'eu': api_url: must be"),
        (f'[destinations.eu]\napp_api_url = "h://{SECRET}"\n', "'eu': app_api_url: must be"),
        ('[destinations.EU]\nregion = "eu"\n', "not a destination name"),
        ('[destinations.a]\nregion = "eu"\n[destinations.b_]\n', "no credentials"),
        ("[destinations.eu-west]\n[destinations.eu_west]\n", "share the variables"),
        ("[destinations.eu]\nregion = 3\n", "region must be a string"),
        ("[destinations]\n", "no [destinations.<name>] table"),
        ('[other]\nx = "y"\n', "unknown top-level key 'other'"),
        (f'[destinations.eu]\nregion = "{SECRET}\n', "not valid TOML"),
    ],
)
def test_every_invalid_file_is_refused_in_one_line_without_its_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    """Bad keys, regions, URLs, names and syntax: one line naming what, never the value."""
    path = _file(tmp_path, text)

    message = _refusal(
        monkeypatch,
        {
            "RELAY_DESTINATIONS_FILE": path,
            # Each table but b_ has a token, so that only the problem under test remains.
            **{
                f"RELAY_DESTINATION_{n.upper()}_PROJECT_TOKEN": TOKEN
                for n in re.findall(r"^\[destinations\.([a-z][a-z0-9-]*)\]$", text, re.M)
            },
        },
    )

    assert expected in message


def test_an_empty_file_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """RELAY_DESTINATIONS_FILE set but empty is a mistake, not 'no destinations'."""
    message = _refusal(monkeypatch, {"RELAY_DESTINATIONS_FILE": " "})
    assert message.startswith("RELAY_DESTINATIONS_FILE is empty")


def test_a_missing_file_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RELAY_DESTINATIONS_FILE pointing at nothing is one line naming the variable and path."""
    path = str(tmp_path / "nope.toml")
    message = _refusal(monkeypatch, {"RELAY_DESTINATIONS_FILE": path})
    assert message.startswith(f"RELAY_DESTINATIONS_FILE {path}: cannot read it")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"RELAY_DESTINATION_EUU_PROJECT_TOKEN": TOKEN},
            "RELAY_DESTINATION_EUU_PROJECT_TOKEN names destination 'euu'",
        ),
        (
            {"RELAY_DESTINATION_EU_PROJECT_ID": "222"},
            "RELAY_DESTINATION_EU_PROJECT_ID is not a relay setting",
        ),
        (
            {
                "RELAY_DESTINATION_EU_SERVICE_ACCOUNT_SECRET": SECRET,
                "RELAY_DESTINATION_EU_SERVICE_ACCOUNT_SECRET_FILE": "/dev/null",
            },
            "service_account_secret is given twice",
        ),
        (
            {"RELAY_DESTINATION_EU_SERVICE_ACCOUNT_SECRET_FILE": "/nonexistent/secret"},
            "RELAY_DESTINATION_EU_SERVICE_ACCOUNT_SECRET_FILE: cannot read /nonexistent/secret",
        ),
        (
            {"RELAY_DESTINATION_EU_SERVICE_ACCOUNT_SECRET_FILE": "/dev/null"},
            "RELAY_DESTINATION_EU_SERVICE_ACCOUNT_SECRET_FILE is empty",
        ),
        ({}, "service_account_username is set without its secret: set RELAY_DESTINATION_EU_"),
    ],
)
def test_every_invalid_secret_variable_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    """Typos in names, non-secret variables, twice-given, unreadable or empty secrets: refused."""
    message = _refusal(
        monkeypatch,
        {
            "RELAY_DESTINATIONS_FILE": _file(tmp_path, TWO),
            "RELAY_DESTINATION_US_WEST_PROJECT_TOKEN": TOKEN,
            **env,
        },
    )
    assert expected in message


def test_a_destination_secret_without_a_file_is_a_typo(monkeypatch: pytest.MonkeyPatch) -> None:
    """A RELAY_DESTINATION_* secret with no RELAY_DESTINATIONS_FILE at all is refused."""
    message = _refusal(monkeypatch, {"RELAY_DESTINATION_EU_PROJECT_TOKEN": TOKEN})
    assert "RELAY_DESTINATIONS_FILE is not set" in message


def test_a_service_account_secret_without_its_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret for a table with no service_account_username names what is missing."""
    message = _refusal(
        monkeypatch,
        {
            "RELAY_DESTINATIONS_FILE": _file(tmp_path, TWO),
            "RELAY_DESTINATION_EU_SERVICE_ACCOUNT_SECRET": SECRET,
            "RELAY_DESTINATION_US_WEST_PROJECT_TOKEN": TOKEN,
            "RELAY_DESTINATION_US_WEST_SERVICE_ACCOUNT_SECRET": SECRET,
        },
    )
    assert "destination 'us-west'" in message
    assert "without service_account_username" in message


def test_settings_read_from_the_file_survive_a_rebuild_from_their_dump(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """load_settings(**settings.model_dump()) (the CLI's --database-url) keeps the destinations."""
    settings = _two(tmp_path, monkeypatch)

    rebuilt = load_settings(**(settings.model_dump() | {"database_url": "sqlite:///x.db"}))

    assert rebuilt.destinations == settings.destinations


def test_a_destination_given_differently_in_python_and_the_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same name from the caller and the file, with different settings, is refused."""
    monkeypatch.setenv("RELAY_DESTINATIONS_FILE", _file(tmp_path, TWO))
    monkeypatch.setenv("RELAY_DESTINATION_EU_SERVICE_ACCOUNT_SECRET", SECRET)
    monkeypatch.setenv("RELAY_DESTINATION_US_WEST_PROJECT_TOKEN", TOKEN)

    with pytest.raises(ConfigurationError, match="'eu' is defined both in"):
        load_settings(destinations={"eu": {"region": "in", "project_token": TOKEN}})


def test_messages_about_a_destination_copy_name_the_destination_and_its_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """require_service_account on a token-only destination names it, its table and variable."""
    west = _two(tmp_path, monkeypatch).for_destination("us-west")

    with pytest.raises(ConfigurationError) as caught:
        west.require_service_account()

    message = str(caught.value)
    assert message.startswith("destination 'us-west': a service account is required")
    assert "RELAY_DESTINATION_US_WEST_SERVICE_ACCOUNT_SECRET" in message
    assert "[destinations.us-west]" in message
    assert "RELAY_MIXPANEL" not in message


def test_a_programmatic_destination_with_a_bad_url_or_name_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Destinations given in Python are checked too: URL and name, naming the destination."""
    with pytest.raises(ConfigurationError, match=r"destination 'eu': api_url: must be an http"):
        load_settings(destinations={"eu": {"api_url": "127.0.0.1:8765"}})
    with pytest.raises(ConfigurationError, match="not a destination name"):
        load_settings(destinations={"Bad Name": {}})
