"""What a redirect or a refused credential tells an operator to check names the destination's
own settings (its ``[destinations.<name>]`` keys, its ``RELAY_DESTINATION_<NAME>_*``
variables), never default's ``RELAY_MIXPANEL_*``, which are set and fine."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from helpers.logs import logging_restored
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from relay import (
    MixpanelSuperEventPropertiesSchema,
    Route,
    SystemRole,
    register_event,
    set_router,
    track,
)
from relay._config import RelaySettings, load_settings
from relay._errors import ConfigurationError
from relay._mixpanel.gdpr import REFUSED, request_deletion
from relay._mixpanel.lexicon import LexiconClient
from relay._tables import outbox
from relay.cli import main
from relay.testing import MixpanelStandin

EVENT = "svc.tests.hint_checked"
EU_ORG = "9a1b1f3c-5a4e-4c1d-9b8a-2e3f4a5b6c7d"
USER = "1f1c7a0e-1b2c-4d5e-8f90-123456789abc"
#: Lexicon's project ids are integers.
EU_PROJECT_ID = "3100002"
#: What a redirect of EU's ingestion and application API requests says to check.
EU_URL_HINT = "check api_url of [destinations.eu] / region of [destinations.eu]"
EU_APP_URL_HINT = "check app_api_url of [destinations.eu] / region of [destinations.eu]"


class HintCheckedSchema(MixpanelSuperEventPropertiesSchema):
    """Test event: a hint was checked."""

    hint_id: str


register_event(EVENT, HintCheckedSchema)


def _props() -> dict[str, Any]:
    return {
        "employee_id": USER,
        "organization_id": EU_ORG,
        "organization_name": "Acme",
        "role": SystemRole.MANAGER,
        "impersonation": False,
        "hint_id": "h-1",
    }


def _to_eu(_route: Route) -> str:
    return "eu"


@pytest.fixture
def routed_to_eu() -> Iterator[None]:
    set_router(_to_eu, destinations=["eu"])
    yield
    set_router(None, destinations=["default"])


class _Redirecting(http.server.BaseHTTPRequestHandler):
    """Answers every request with a 308 elsewhere, as a proxy in front of a moved host might."""

    def _redirect(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(308)
        self.send_header("Location", "https://elsewhere.example/api/app?token=x")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self._redirect()

    def do_POST(self) -> None:
        self._redirect()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test's output quiet."""


@pytest.fixture
def redirecting() -> Iterator[str]:
    """The base URL of a loopback server that redirects every request."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _with_eu(eu: MixpanelStandin, **eu_changes: Any) -> RelaySettings:
    """Default configured and working (a US project), plus ``eu`` (with ``eu_changes``)."""
    return load_settings(
        mixpanel_api_url="http://127.0.0.1:9",
        mixpanel_app_api_url="http://127.0.0.1:9/api/app",
        mixpanel_project_id="1",
        mixpanel_service_account_username="us-sa",
        mixpanel_service_account_secret="us-secret",
        mixpanel_project_token="us-token",
        mixpanel_gdpr_token="us-gdpr",
        destinations={"eu": eu.destination_settings() | eu_changes},
    )


def _drain(engine: Engine, destinations: dict[str, Any], *args: str) -> Result:
    url = engine.url.render_as_string(hide_password=False)
    with logging_restored():
        return CliRunner().invoke(
            main,
            ["--database-url", url, "drain", *args],
            obj={"destinations": destinations},
            catch_exceptions=False,
        )


def test_a_redirect_of_a_destinations_import_names_its_own_settings(
    engine: Engine, routed_to_eu: None, no_relay_env: None
) -> None:
    """EU's /import answers 307: ``relay drain`` exits 3 telling the operator to check EU's
    api_url and region (its table's keys), not RELAY_MIXPANEL_API_URL; the row is untouched."""
    with MixpanelStandin(region="eu") as eu:
        with Session(engine) as session, session.begin():
            track(session, event=EVENT, distinct_id=USER, properties=_props(), strict=True)
        eu.fail_next(307)

        result = _drain(engine, {"eu": eu.destination_settings()})

        assert result.exit_code == 3, result.output
        assert "HTTP 307: redirected to" in result.stderr
        assert EU_URL_HINT in result.stderr
        assert "RELAY_MIXPANEL" not in result.stderr
        with engine.connect() as conn:
            row = conn.execute(sa.select(outbox.c.state, outbox.c.attempts)).one()
        assert tuple(row) == ("pending", 0)


def test_a_redirect_of_a_destinations_app_api_names_its_own_settings(
    redirecting: str,
) -> None:
    """EU's application API redirects: Lexicon's error and the GDPR filing's problem name EU's
    app_api_url and region; the same redirect for default names RELAY_MIXPANEL_APP_API_URL."""
    with MixpanelStandin(region="eu", project_id=EU_PROJECT_ID) as eu:
        settings = _with_eu(eu, app_api_url=f"{redirecting}/api/app")
        own = settings.for_destination("eu")

        with (
            LexiconClient(own, destination="eu") as client,
            pytest.raises(ConfigurationError) as lex,
        ):
            client.event_schemas()
        deletion = request_deletion(own, USER, destination="eu")

    for message in (str(lex.value), deletion.problem or ""):
        assert "redirected (HTTP 308)" in message
        assert EU_APP_URL_HINT in message
        assert "RELAY_MIXPANEL" not in message
    assert (deletion.outcome, deletion.configuration) == (REFUSED, True)

    default = load_settings(
        mixpanel_app_api_url=f"{redirecting}/api/app",
        mixpanel_project_token="us-token",
        mixpanel_gdpr_token="us-gdpr",
    )
    filed = request_deletion(default, USER)
    assert "check RELAY_MIXPANEL_APP_API_URL / RELAY_MIXPANEL_REGION" in (filed.problem or "")


def test_refused_credentials_of_a_destinations_app_api_name_its_own_settings() -> None:
    """EU's project refuses the credentials (401): Lexicon's error names EU's service-account
    settings and the GDPR filing's problem EU's tokens, never a RELAY_MIXPANEL_* variable nor
    a secret."""
    with MixpanelStandin(region="eu", project_id=EU_PROJECT_ID) as eu:
        own = _with_eu(eu).for_destination("eu")
        eu.refuse_credentials()

        with (
            LexiconClient(own, destination="eu") as client,
            pytest.raises(ConfigurationError) as lex,
        ):
            client.event_schemas()
        deletion = request_deletion(own, USER, destination="eu")

    lexicon = str(lex.value)
    assert "refused the credentials (HTTP 401)" in lexicon
    assert (
        "check service_account_username of [destinations.eu], "
        "RELAY_DESTINATION_EU_SERVICE_ACCOUNT_SECRET and project_id of [destinations.eu]"
    ) in lexicon
    gdpr = deletion.problem or ""
    assert "check RELAY_DESTINATION_EU_GDPR_TOKEN and RELAY_DESTINATION_EU_PROJECT_TOKEN" in gdpr
    for message in (lexicon, gdpr):
        assert "RELAY_MIXPANEL" not in message
        assert eu.secret not in message
        assert eu.oauth_token not in message
