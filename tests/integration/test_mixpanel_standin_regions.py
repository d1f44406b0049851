"""Stand-ins for data residency (issue 24): one per region in one test, each keeping what it
received; a project moved to another region and refused credentials answer as documented."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from relay._config import load_settings
from relay.testing import MixpanelStandin, write_destinations_file

NOW_MS = 1_700_000_000_000


def _event(insert_id: str) -> dict[str, object]:
    return {
        "event": "svc.test.done",
        "properties": {"time": NOW_MS, "distinct_id": "d1", "$insert_id": insert_id},
    }


def _import(standin: MixpanelStandin, *events: dict[str, object]) -> int:
    answer = httpx.post(
        f"{standin.url}/import",
        params={"strict": "1", "project_id": standin.project_id},
        json=list(events),
        auth=(standin.username, standin.secret),
        timeout=5.0,
    )
    return answer.status_code


def _schemas(standin: MixpanelStandin) -> int:
    answer = httpx.get(
        f"{standin.app_api_url}/projects/{standin.project_id}/schemas",
        auth=(standin.username, standin.secret),
        timeout=5.0,
    )
    return answer.status_code


def _engage(standin: MixpanelStandin) -> int:
    update = {"$token": standin.project_token, "$distinct_id": "d1", "$set": {"plan": "x"}}
    return httpx.post(f"{standin.url}/engage", json=[update], timeout=5.0).status_code


def _gdpr(standin: MixpanelStandin) -> int:
    answer = httpx.post(
        f"{standin.app_api_url}/data-deletions/v3.0/",
        params={"token": standin.project_token},
        json={"distinct_ids": ["d1"], "compliance_type": "GDPR"},
        headers={"Authorization": f"Bearer {standin.oauth_token}"},
        timeout=5.0,
    )
    return answer.status_code


@pytest.fixture
def pair() -> Iterator[tuple[MixpanelStandin, MixpanelStandin]]:
    """A US and an EU stand-in, running side by side."""
    with (
        MixpanelStandin(project_id="111", region="us") as us,
        MixpanelStandin(project_id="222", region="eu") as eu,
    ):
        yield us, eu


def test_two_stand_ins_keep_apart_what_each_received(
    pair: tuple[MixpanelStandin, MixpanelStandin],
) -> None:
    """Events sent to the EU stand-in are the EU's alone, and the US's the US's."""
    us, eu = pair
    assert _import(us, _event("u-1")) == 200
    assert _import(eu, _event("e-1"), _event("e-2")) == 200

    assert [e["properties"]["$insert_id"] for e in us.accepted_events()] == ["u-1"]
    assert [e["properties"]["$insert_id"] for e in eu.accepted_events()] == ["e-1", "e-2"]


def test_a_project_in_another_region_gets_404_at_the_app_api_and_401_at_ingestion(
    pair: tuple[MixpanelStandin, MixpanelStandin],
) -> None:
    """move_project: the app API (Lexicon, GDPR) 404s for it; /import and /engage 401."""
    _, eu = pair
    eu.move_project("us")

    assert eu.project_region == "us"
    assert (_schemas(eu), _gdpr(eu), _import(eu, _event("e-1")), _engage(eu)) == (
        404,
        404,
        401,
        401,
    )
    assert eu.accepted_events() == []

    eu.move_project("eu")
    assert (_schemas(eu), _import(eu, _event("e-1")), _engage(eu)) == (200, 200, 200)


def test_refused_credentials_get_401_everywhere_until_lifted(
    pair: tuple[MixpanelStandin, MixpanelStandin],
) -> None:
    """refuse_credentials(): 401 from every endpoint of that stand-in only; False lifts it."""
    us, eu = pair
    eu.refuse_credentials()

    assert eu.refusing_credentials
    assert (_schemas(eu), _gdpr(eu), _import(eu, _event("e-1")), _engage(eu)) == (
        401,
        401,
        401,
        401,
    )
    assert _import(us, _event("u-1")) == 200  # the other region is untouched
    assert [r.status for r in eu.lexicon_requests()] == [401]  # refused, and still recorded

    eu.refuse_credentials(False)
    assert _import(eu, _event("e-1")) == 200
    assert [e["properties"]["$insert_id"] for e in eu.accepted_events()] == ["e-1"]


def test_refused_credentials_over_http_and_reset(
    pair: tuple[MixpanelStandin, MixpanelStandin],
) -> None:
    """POST /_standin/faults {"op": "refuse_credentials"} turns it on; reset turns it off."""
    _, eu = pair
    answer = httpx.post(f"{eu.url}/_standin/faults", json={"op": "refuse_credentials"})
    assert answer.status_code == 200
    assert _import(eu, _event("e-1")) == 401

    httpx.post(f"{eu.url}/_standin/reset")
    assert not eu.refusing_credentials
    assert _import(eu, _event("e-1")) == 200


def test_write_destinations_file_configures_one_destination_per_stand_in_without_secrets(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pair: tuple[MixpanelStandin, MixpanelStandin],
) -> None:
    """The file holds no secret; with the returned variables, settings name each stand-in."""
    us, eu = pair
    for name in list(os.environ):
        if name.upper().startswith("RELAY_"):
            monkeypatch.delenv(name)
    path = tmp_path / "destinations.toml"

    env = write_destinations_file(str(path), {"us": us, "eu": eu})

    text = path.read_text()
    for secret in (us.secret, us.project_token, us.oauth_token):
        assert secret not in text
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    # Every project named, RELAY_MIXPANEL_* empty: there is no default destination.
    assert settings.destination_names() == ("us", "eu")
    eu_settings = settings.for_destination("eu")
    assert eu_settings.mixpanel_base_url == eu.url
    assert eu_settings.mixpanel_region == "eu"
    assert eu_settings.require_service_account() == ("222", eu.username, eu.secret)


def test_an_unknown_region_is_refused() -> None:
    """Regions are Mixpanel's three: us, eu, in."""
    with pytest.raises(ValueError, match="region must be one of us, eu, in"):
        MixpanelStandin(region="mars")


def test_relay_standin_plays_the_region_it_is_given() -> None:
    """`relay standin --region eu` is a choice of us, eu, in; another is bad usage (exit 2)."""
    from click.testing import CliRunner  # noqa: PLC0415

    from relay.cli import main  # noqa: PLC0415

    result = CliRunner().invoke(main, ["standin", "--region", "mars"])
    assert result.exit_code == 2
    assert "'mars' is not one of 'us', 'eu', 'in'" in result.output

    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RELAY_")}
    with subprocess.Popen(
        [sys.executable, "-m", "relay", "standin", "--port", "0", "--region", "eu"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as served:
        try:
            assert served.stdout is not None
            exports = _exports(served.stdout)
            app, url = exports["RELAY_MIXPANEL_APP_API_URL"], exports["RELAY_MIXPANEL_API_URL"]
            project = exports["RELAY_MIXPANEL_PROJECT_ID"]
            auth = (
                exports["RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME"],
                exports["RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET"],
            )
            schemas = f"{app}/projects/{project}/schemas"
            assert httpx.get(schemas, auth=auth, timeout=5.0).status_code == 200
            # Moving the project to the US makes it foreign to this EU stand-in: 404.
            httpx.post(f"{url}/_standin/faults", json={"op": "move_project", "region": "us"})
            assert httpx.get(schemas, auth=auth, timeout=5.0).status_code == 404
        finally:
            served.terminate()


def _exports(stream: IO[str]) -> dict[str, str]:
    """The ``export NAME=value`` lines `relay standin` prints first, up to its comment line."""
    found: dict[str, str] = {}
    for line in iter(stream.readline, ""):
        if not line.startswith("export "):
            break
        name, _, value = line.removeprefix("export ").strip().partition("=")
        found[name] = shlex.split(value)[0]
    return found
