"""Log lines hold no local variables and no secret, in JSON and console format, from structlog
and from the standard library."""

from __future__ import annotations

import logging

import pytest
import structlog

from relay._config import RelaySettings
from relay._logging import configure_logging

PW = "Zq7s3cr3tPW"
MP_SECRET = "mp-s3cr3t-value"
LOCAL_ONLY = "only-in-a-local-variable"


pytestmark = pytest.mark.usefixtures("restored_logging")


URL = f"postgresql+psycopg://relay:{PW}@db/app?sslmode=require"


def _settings(log_format: str) -> RelaySettings:
    return RelaySettings(
        database_url=URL,
        mixpanel_service_account_secret=MP_SECRET,
        log_format=log_format,  # type: ignore[arg-type]
    )


def _fail(settings: RelaySettings) -> None:
    secret_local = LOCAL_ONLY  # noqa: F841 - what show_locals would print
    conninfo = f"host=db password={PW}"  # noqa: F841 - as psycopg's frames hold it
    raise RuntimeError(f"connect failed for {URL}")


@pytest.mark.parametrize("log_format", ["json", "console"])
@pytest.mark.parametrize("source", ["structlog", "stdlib"])
def test_a_logged_traceback_shows_no_locals_and_no_secret(
    log_format: str, source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An exception logged with its traceback prints the frames but neither the frames' local
    variables nor a secret its message quotes (the database password, the Mixpanel secret)."""
    settings = _settings(log_format)
    configure_logging(settings)
    try:
        _fail(settings)
    except RuntimeError:
        if source == "structlog":
            structlog.get_logger("test").exception("tick_failed", secret_echo=MP_SECRET + "!")
        else:
            logging.getLogger("somelib").exception("failed with %s", MP_SECRET)
    printed = capsys.readouterr().err
    assert "_fail" in printed  # the traceback is there
    assert LOCAL_ONLY not in printed
    assert PW not in printed
    assert MP_SECRET not in printed
    assert "***" in printed


def test_console_log_messages_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    """Remote text a library formats into its log message cannot forge a console line or colour
    the terminal (structlog prints the event, unlike other values, as it is)."""
    configure_logging(_settings("console"))
    logging.getLogger("somelib").warning("refused: %s", "x\n2026 relay: ok\x1b[31m")
    printed = capsys.readouterr().err
    assert "\x1b" not in printed
    assert len(printed.strip().splitlines()) == 1


def test_json_log_lines_escape_c1_controls(capsys: pytest.CaptureFixture[str]) -> None:
    """JSON lines carry no raw C1 control or bidi override (JSON allows them raw)."""
    configure_logging(_settings("json"))
    structlog.get_logger("test").warning("refused", error="x\x9b31m\u202e")
    printed = capsys.readouterr().err
    assert "\x9b" not in printed
    assert "\u202e" not in printed
    assert "\\u009b" in printed
