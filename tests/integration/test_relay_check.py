"""`relay check` and check_destination against real stand-ins on loopback (issue 24): each
destination's credentials and region judged by the status of the documented calls, the verdict
one line per destination, exit 0 / 3 (misconfigured) / 1 (could not tell), never a secret."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from relay._config import RelaySettings, load_settings
from relay._mixpanel.check import DestinationCheck, check_destination
from relay.testing import MixpanelStandin, write_destinations_file

US_SECRET = "us-Secret-0123456789-never-printed"
EU_SECRET = "eu-Secret-9876543210-never-printed"
EU_TOKEN = "eu-Token-abcdefabcdef-never-printed"
SECRETS = (US_SECRET, EU_SECRET, EU_TOKEN, "standin-token", "standin-oauth-token")


@pytest.fixture
def us() -> Iterator[MixpanelStandin]:
    """The US project's stand-in."""
    with MixpanelStandin(project_id="111", region="us", secret=US_SECRET) as server:
        yield server


@pytest.fixture
def eu() -> Iterator[MixpanelStandin]:
    """The EU project's stand-in."""
    with MixpanelStandin(
        project_id="222", region="eu", secret=EU_SECRET, project_token=EU_TOKEN
    ) as server:
        yield server


def _settings(**destinations: MixpanelStandin) -> RelaySettings:
    return load_settings(
        mixpanel_project_token="unused-default-token",
        destinations={name: s.destination_settings() for name, s in destinations.items()},
    )


def _check(settings: RelaySettings, name: str) -> DestinationCheck:
    return check_destination(settings.for_destination(name), name)


def test_a_working_destination_is_ok_after_both_documented_calls(
    us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """200 from Lexicon's list at the app API and 400 for the empty /import batch: ok."""
    verdict = _check(_settings(us=us, eu=eu), "eu")

    assert verdict.ok, verdict
    assert verdict.problem is None
    assert verdict.calls == (
        f"GET {eu.app_api_url}/projects/222/schemas/event?entity_name=relay-check",
        f"POST {eu.url}/import?strict=1&project_id=222",
    )
    assert [r.status for r in eu.request_log()] == [400]  # the empty batch: nothing ingested
    assert [(r.method, r.status) for r in eu.lexicon_requests()] == [("GET", 200)]
    assert eu.accepted_events() == []
    assert us.request_log() == []  # the EU check never touched the US project
    assert us.lexicon_requests() == []


def test_refused_credentials_are_a_configuration_problem_naming_the_401_call(
    us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """While the EU stand-in refuses credentials, its check fails on the app API's 401."""
    eu.refuse_credentials()

    verdict = _check(_settings(us=us, eu=eu), "eu")

    assert not verdict.ok
    assert verdict.configuration
    assert verdict.problem is not None
    assert verdict.problem.startswith("credentials refused (HTTP 401 from GET ")
    assert _check(_settings(us=us, eu=eu), "us").ok  # the US project is unaffected


def test_a_project_in_another_region_is_a_configuration_problem(
    us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """The app API's 404 for the project reads as 'lives in another region than eu'."""
    eu.move_project("us")

    verdict = _check(_settings(eu=eu), "eu")

    assert not verdict.ok
    assert verdict.configuration
    assert verdict.problem is not None
    assert "HTTP 404" in verdict.problem
    assert "another region than 'eu'" in verdict.problem


def test_a_wrong_secret_is_refused(eu: MixpanelStandin) -> None:
    """A secret the project does not know: 401, a configuration problem."""
    settings = load_settings(
        destinations={"eu": {**eu.destination_settings(), "service_account_secret": "wrong"}}
    )
    verdict = _check(settings, "eu")
    assert verdict.configuration
    assert verdict.problem is not None
    assert "HTTP 401" in verdict.problem


def test_a_project_token_only_destination_is_checked_at_import_only(eu: MixpanelStandin) -> None:
    """No service account: one /import call with the token; its 401 reads as refused or wrong
    region, its 400 for the empty batch as accepted."""
    table = {"region": "eu", "api_url": eu.url, "project_token": EU_TOKEN}
    settings = load_settings(destinations={"eu": table})

    verdict = _check(settings, "eu")
    assert verdict.ok, verdict
    assert verdict.calls == (f"POST {eu.url}/import?strict=1",)
    assert "project token cannot call the app API" in verdict.scope

    eu.move_project("in")
    moved = _check(settings, "eu")
    assert moved.configuration
    assert moved.problem is not None
    assert "not in region 'eu'" in moved.problem


def test_a_busy_or_unreachable_project_is_undecided_not_misconfigured(
    eu: MixpanelStandin,
) -> None:
    """A 503, or no answer at all, is 'could not check' (exit 1), never a configuration verdict."""
    settings = _settings(eu=eu)
    eu.set_outage(503, None)
    busy = _check(settings, "eu")
    assert not busy.ok
    assert not busy.configuration
    assert busy.problem is not None
    assert busy.problem.startswith("could not check: HTTP 503")

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    table = {"api_url": f"http://127.0.0.1:{closed_port}", "project_token": EU_TOKEN}
    gone = _check(load_settings(destinations={"eu": table}), "eu")
    assert not gone.ok
    assert not gone.configuration
    assert gone.problem is not None
    assert gone.problem.startswith("could not check: no answer")


def test_missing_credentials_are_refused_before_any_call() -> None:
    """A destination whose settings cannot authenticate makes no call and names the setting."""
    verdict = _check(load_settings(destinations={"eu": {"region": "eu"}}), "eu")
    assert verdict.configuration
    assert verdict.calls == ()
    assert verdict.problem is not None
    assert "RELAY_DESTINATION_EU_PROJECT_TOKEN" in verdict.problem


# --- the command, in a subprocess, configured as an operator would -------------------------


def _env(tmp_path: Path, us: MixpanelStandin, eu: MixpanelStandin) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("RELAY_")}
    files = write_destinations_file(str(tmp_path / "destinations.toml"), {"us": us, "eu": eu})
    return {
        **base,
        **files,
        "RELAY_DATABASE_URL": f"sqlite:///{tmp_path / 'absent.db'}",  # relay check needs none
        "RELAY_MIXPANEL_API_URL": us.url,
        "RELAY_MIXPANEL_APP_API_URL": us.app_api_url,
        "RELAY_MIXPANEL_PROJECT_ID": us.project_id,
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME": us.username,
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET": us.secret,
    }


def _relay_check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "relay", "check", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr
    return result


def test_relay_check_exits_0_with_one_ok_line_per_destination(
    tmp_path: Path, us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """All three destinations (default, us, eu) answer as working projects: three ok lines."""
    result = _relay_check(_env(tmp_path, us, eu))

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["default", "us", "eu"]
    assert all(line.endswith("ok (app API and /import)") for line in lines)
    assert f"region eu, {eu.url}, project 222" in lines[2]


def test_relay_check_exits_3_naming_the_eu_destination_while_it_refuses_credentials(
    tmp_path: Path, us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """The EU stand-in refusing credentials: exit 3, one stderr line naming eu; us still ok."""
    eu.refuse_credentials()

    result = _relay_check(_env(tmp_path, us, eu))

    assert result.returncode == 3
    errors = result.stderr.splitlines()
    assert len(errors) == 1
    assert errors[0].startswith("relay: destination 'eu' (region eu, ")
    assert "credentials refused (HTTP 401" in errors[0]
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == ["default", "us"]


def test_relay_check_exits_3_when_a_project_is_not_in_its_region(
    tmp_path: Path, us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """The EU destination's project living in the US: exit 3, the line says another region."""
    eu.move_project("us")

    result = _relay_check(_env(tmp_path, us, eu), "--destination", "eu")

    assert result.returncode == 3
    assert result.stdout == ""
    assert "another region than 'eu'" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_relay_check_recovers_once_the_stand_in_accepts_credentials_again(
    tmp_path: Path, us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """refuse_credentials(False) over HTTP (the fault op) ends the refusal: exit 0 again."""
    env = _env(tmp_path, us, eu)
    eu.apply_faults({"op": "refuse_credentials"})
    assert _relay_check(env, "--destination", "eu").returncode == 3

    eu.apply_faults({"op": "refuse_credentials", "refuse": False})
    assert _relay_check(env, "--destination", "eu").returncode == 0


def test_relay_check_exits_1_when_it_cannot_tell(
    tmp_path: Path, us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """A 503 from the EU project is no verdict: exit 1, not 3."""
    eu.set_outage(503, None)
    result = _relay_check(_env(tmp_path, us, eu))
    assert result.returncode == 1
    assert "could not check: HTTP 503" in result.stderr


def test_relay_check_json_and_an_unknown_destination(
    tmp_path: Path, us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """--json lists each verdict with its calls; an unknown --destination is bad usage (2)."""
    env = _env(tmp_path, us, eu)
    result = _relay_check(env, "--json")
    assert result.returncode == 0
    payload = orjson.loads(result.stdout)
    assert [d["destination"] for d in payload["destinations"]] == ["default", "us", "eu"]
    assert all(d["ok"] for d in payload["destinations"])

    unknown = _relay_check(env, "--destination", "mars")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("relay: unknown destination 'mars'")


def test_relay_check_refuses_a_secret_in_the_file_with_exit_3(
    tmp_path: Path, us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """A secret written into the destinations file: exit 3, one line naming key and file."""
    env = _env(tmp_path, us, eu)
    path = Path(env["RELAY_DESTINATIONS_FILE"])
    path.write_text(path.read_text() + f'\n[destinations.in]\nproject_token = "{EU_TOKEN}"\n')

    result = _relay_check(env)

    assert result.returncode == 3
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert "'project_token'" in result.stderr
    assert str(path) in result.stderr
