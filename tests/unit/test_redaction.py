"""Database URLs shown to people, the settings that hold them, and the CLI's escaping of text."""

from __future__ import annotations

import orjson
import pytest

from relay._config import RelaySettings
from relay._database import MASK, UNPARSEABLE_URL, redact_url, scrub, url_secrets
from relay.cli._output import dumps, safe_text

PW = "Zq7-s3cr3t"

URL_FORMS = [
    pytest.param(f"postgresql+psycopg://relay:{PW}@db.internal:5432/app", id="userinfo"),
    pytest.param(f"postgresql+psycopg://relay@db.internal/app?password={PW}", id="query"),
    pytest.param(f"mysql+pymysql://root@db/app?passwd={PW}&charset=utf8mb4", id="passwd"),
    pytest.param(f"mysql+mysqldb://root@db/app?pwd={PW}", id="pwd"),
    pytest.param(f"postgresql+psycopg://relay@db/app?sslpassword={PW}", id="sslpassword"),
    pytest.param(f"postgresql+psycopg://relay@db/app?PASSWORD={PW}", id="query-upper-case"),
    pytest.param(
        f"postgresql+psycopg:///app?dsn=host%3Ddb+user%3Drelay+password%3D{PW}", id="dsn-query"
    ),
    pytest.param(f"postgresql+psycopg:///app?dsn=host%3Ddb+password%3D%27{PW}%27", id="dsn-quoted"),
    pytest.param(f"postgresql+psycopg://relay@db/app?options=-c%20password%3D{PW}", id="options"),
    pytest.param(f"host=db user=relay password={PW} dbname=app", id="libpq-dsn"),
    pytest.param(f"host=db password='{PW}' dbname=app", id="libpq-dsn-quoted"),
]


@pytest.mark.parametrize("url", URL_FORMS)
def test_redact_url_hides_the_password_of_every_url_form(url: str) -> None:
    """No form a password can take in a database URL survives redact_url, and *** shows it."""
    shown = redact_url(url)
    assert PW not in shown
    assert MASK in shown


@pytest.mark.parametrize("url", URL_FORMS)
def test_url_secrets_finds_the_password_of_every_url_form(url: str) -> None:
    """url_secrets yields the password of every form, so scrub removes it from any text."""
    text = f"connection failed: {url} (password {PW})"
    assert PW not in scrub(text, url_secrets(url))


def test_a_percent_encoded_password_is_hidden_in_both_spellings() -> None:
    """A password with URL-special characters is found raw and percent-encoded."""
    url = f"postgresql+psycopg://relay:{PW}%40x@db/app"
    assert f"{PW}@x" not in redact_url(url)
    assert f"{PW}%40x" not in redact_url(url)
    text = scrub(f"failed: {url}, password {PW}@x", url_secrets(url))
    assert f"{PW}@x" not in text
    assert f"{PW}%40x" not in text


def test_redact_url_keeps_what_names_the_database() -> None:
    """The redacted URL still says driver, user, host, port, database and harmless options."""
    shown = redact_url(f"postgresql+psycopg://relay:{PW}@db.internal:6432/app?sslmode=require")
    assert shown == "postgresql+psycopg://relay:***@db.internal:6432/app?sslmode=require"


def test_redact_url_shows_an_unparseable_url_as_a_placeholder() -> None:
    """A string SQLAlchemy cannot parse is never echoed: it may be a secret whole."""
    assert redact_url(f"not a url {PW}") == UNPARSEABLE_URL


def test_a_url_without_password_is_shown_whole_and_has_no_secrets() -> None:
    """SQLite paths and passwordless URLs are shown as they are."""
    assert redact_url("sqlite:///var/lib/relay.db") == "sqlite:///var/lib/relay.db"
    assert url_secrets("postgresql+psycopg://relay@db/app") == frozenset()


@pytest.mark.parametrize("url", URL_FORMS[:3])
def test_settings_never_show_the_database_password(url: str) -> None:
    """repr, str, model_dump and JSON of RelaySettings show the URL redacted, never its password."""
    settings = RelaySettings(database_url=url)
    for shown in (
        repr(settings),
        str(settings),
        str(settings.model_dump()),
        settings.model_dump_json(),
        repr(settings.database_url),
        str(settings.database_url),
        settings.database_url_redacted,
        f"{settings!r}",
    ):
        assert PW not in shown
    assert settings.database_url.get_secret_value() == url


def test_settings_secret_values_cover_the_database_and_mixpanel_secrets() -> None:
    """secret_values holds the database password and the Mixpanel secret and token."""
    settings = RelaySettings(
        database_url=f"postgresql+psycopg://relay:{PW}@db/app",
        mixpanel_service_account_secret="mp-secret-1",
        mixpanel_project_token="mp-token-2",
    )
    assert {PW, "mp-secret-1", "mp-token-2"} <= settings.secret_values()


def test_dead_retention_below_one_hour_is_refused() -> None:
    """RELAY_DEAD_RETENTION_HOURS=0 is a configuration error: dead letters must be seen first."""
    with pytest.raises(ValueError, match="dead_retention_hours"):
        RelaySettings(dead_retention_hours=0)
    assert RelaySettings(dead_retention_hours=1).dead_retention_hours == 1


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("401: bad\n2026-01-01 relay: ok", "401: bad\\n2026-01-01 relay: ok"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("csi\x9b31m", "csi\\x9b31m"),
        ("bidi \u202eevil", "bidi \\u202eevil"),
        ("carriage\roverwrite", "carriage\\roverwrite"),
        ("a literal \\n stays", "a literal \\\\n stays"),
        ("plain text, ünïcode ok", "plain text, ünïcode ok"),
    ],
)
def test_safe_text_escapes_every_control_character(raw: str, shown: str) -> None:
    """Newlines, escape sequences, C1 controls and bidi overrides are printed escaped."""
    assert safe_text(raw) == shown
    assert safe_text(raw).isprintable()


def test_cli_json_escapes_what_json_leaves_raw() -> None:
    """JSON output has no raw C1 control or bidi override and still parses to the same value."""
    value = {"last_error": "x\x9b31m\u202e\x1b\n"}
    text = dumps(value)
    assert text.isprintable()
    assert orjson.loads(text) == value


def test_a_short_secret_is_masked_where_it_stands_alone_never_inside_words() -> None:
    """A one-character secret hides in ``u:i@host`` and ``token=i`` but leaves "info" and
    "unreachable" readable (not "***nfo", "unreach***able")."""
    text = "info: Mixpanel unreachable; u:i@host token=i"

    assert scrub(text, frozenset({"i"})) == "info: Mixpanel unreachable; u:***@host token=***"


def test_a_long_secret_is_masked_even_inside_a_word() -> None:
    """A secret of eight characters or more is masked wherever it appears, glued or not."""
    assert scrub("xs3cr3t-pass!y", frozenset({"s3cr3t-pass!"})) == f"x{MASK}y"
