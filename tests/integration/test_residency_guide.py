"""The examples of docs/guides/residency.md, run as written against a US and an EU stand-in.

The US project is ``default`` (``RELAY_MIXPANEL_*``, set as the guide sets it). The guide's
destinations file is used as it stands, with its table's hosts pointed at the EU stand-in
(the stand-ins carry the guide's project ids and service-account user names); its
router is executed from the page; its `relay forget` and `relay events push` commands run as
written (the events from examples/optimo, as in the tracking-plan guide), and the forget output
is compared line by line with the one the page shows (``...`` stands for what varies).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import relay
from relay import MixpanelSuperEventPropertiesSchema, SystemRole, register_event
from relay import _store as store
from relay._database import create_engine
from relay._store.profiles import count_person_rows
from relay._tables import outbox
from relay.testing.mixpanel_standin import MixpanelStandin

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guides" / "residency.md"
OPTIMO = ROOT / "examples" / "optimo"
RELAY = str(Path(sys.executable).parent / "relay")
FORGET = "relay forget --distinct-id 0b6f8f0e-5b1a-4c1e-9a57-2f9d7c1e4a10 --mixpanel --yes"
PUSH_ALL = "relay events push optimo_analytics --yes"
PUSH_EU = "relay events push optimo_analytics --yes --destination eu"
PERSON = "0b6f8f0e-5b1a-4c1e-9a57-2f9d7c1e4a10"
EU_ORG = "7d2b1f3c-5a4e-4c1d-9b8a-2e3f4a5b6c7d"  # in the guide's EU_ORGANIZATIONS
US_ORG = "1c9e6a2b-3d4f-4a5b-8c7d-9e0f1a2b3c4d"
EVENT = "svc.residency_guide.widget_routed"
_FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```", re.M | re.S)


class WidgetRoutedSchema(MixpanelSuperEventPropertiesSchema):
    """Test event: a widget was routed (the guide's router sends it by organization)."""

    widget_id: str


register_event(EVENT, WidgetRoutedSchema)


def _block(lang: str, containing: str) -> str:
    """The guide's one ``lang`` block that contains ``containing``."""
    text = GUIDE.read_text(encoding="utf-8")
    (found,) = [
        m["body"] for m in _FENCE.finditer(text) if m["lang"] == lang and containing in m["body"]
    ]
    return found


@pytest.fixture
def us() -> Iterator[MixpanelStandin]:
    """The US project, ``default`` in the guide (its project id and service account)."""
    with MixpanelStandin(region="us", project_id="3100001", username="relay-us") as server:
        yield server


@pytest.fixture
def eu() -> Iterator[MixpanelStandin]:
    """The EU project of the guide's file, playing the EU region's servers."""
    with MixpanelStandin(
        region="eu",
        project_id="3100002",
        username="relay-eu",
        secret="eu-secret",
        project_token="eu-token",
        oauth_token="eu-oauth",
    ) as server:
        yield server


@pytest.fixture
def env(tmp_path: Path, us: MixpanelStandin, eu: MixpanelStandin) -> dict[str, str]:
    """The guide's settings: ``RELAY_MIXPANEL_*`` naming the US project as the guide's exports
    do (plus the stand-in's hosts), the guide's file with the EU table's hosts pointed at the
    EU stand-in, the EU secrets in the environment, and a migrated SQLite outbox."""
    text = _block("toml", "[destinations.eu]")
    (table,) = tomllib.loads(text)["destinations"].values()
    assert (table["project_id"], table["service_account_username"]) == (
        eu.project_id,
        eu.username,
    )
    text = text.replace(
        "[destinations.eu]\n",
        f"[destinations.eu]\napi_url = {eu.url!r}\napp_api_url = {eu.app_api_url!r}\n",
    )
    path = tmp_path / "destinations.toml"
    path.write_text(text, encoding="utf-8")
    exports = _block("sh", "RELAY_DESTINATIONS_FILE=")
    assert "RELAY_MIXPANEL_PROJECT_ID=3100001" in exports
    assert "RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME=relay-us" in exports
    values = {
        "PATH": str(Path(sys.executable).parent),
        "RELAY_DATABASE_URL": f"sqlite:///{tmp_path / 'relay.db'}",
        "RELAY_ERASURE_HASH_KEY": "residency-guide-key",
        "RELAY_MIXPANEL_REGION": "us",
        "RELAY_MIXPANEL_API_URL": us.url,
        "RELAY_MIXPANEL_APP_API_URL": us.app_api_url,
        "RELAY_MIXPANEL_PROJECT_ID": us.project_id,
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME": us.username,
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET": us.secret,
        "RELAY_MIXPANEL_PROJECT_TOKEN": us.project_token,
        "RELAY_MIXPANEL_GDPR_TOKEN": us.oauth_token,
        "RELAY_DESTINATIONS_FILE": str(path),
    }
    for key, secret in (
        ("SERVICE_ACCOUNT_SECRET", eu.secret),
        ("PROJECT_TOKEN", eu.project_token),
        ("GDPR_TOKEN", eu.oauth_token),
    ):
        # The guide gives the EU secrets as secret files (`..._FILE`): so does the test.
        assert f"RELAY_DESTINATION_EU_{key}_FILE=" in exports
        secret_file = tmp_path / f"eu-{key.lower()}"
        secret_file.write_text(secret, encoding="utf-8")
        values[f"RELAY_DESTINATION_EU_{key}_FILE"] = str(secret_file)
    _run(["relay", "migrate"], values, expect=0)
    return values


@pytest.fixture
def guide_router() -> Iterator[None]:
    """The guide's router, executed from the page, removed afterwards."""
    exec(compile(_block("python", "relay.set_router("), str(GUIDE), "exec"), {})  # noqa: S102
    yield
    relay.set_router(None, destinations=["default"])


def _run(
    argv: list[str], env: dict[str, str], *, expect: int, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [RELAY, *argv[1:]],
        env=env,
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == expect, f"{done.stdout}\n{done.stderr}"
    return done


def _props(org: str) -> dict[str, object]:
    return {
        "employee_id": PERSON,
        "organization_id": org,
        "organization_name": "Acme",
        "role": SystemRole.MANAGER,
        "impersonation": False,
        "widget_id": "w-1",
    }


def test_relay_check_accepts_the_guides_destinations(env: dict[str, str]) -> None:
    """The guide's settings make two destinations `relay check` finds working."""
    done = _run(["relay", "check"], env, expect=0)
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["default", "eu"]
    assert all(": ok" in line for line in lines)


@pytest.mark.usefixtures("guide_router")
def test_the_guides_router_delivers_each_organization_to_its_project_only(
    env: dict[str, str], us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """An EU organization's event reaches the EU project and a US one's the US project, and
    neither reaches the other (the router from the page, `relay drain` as operators run it)."""
    engine = create_engine(env["RELAY_DATABASE_URL"])
    try:
        with Session(engine) as session, session.begin():
            relay.track(
                session, event=EVENT, distinct_id="u-eu", properties=_props(EU_ORG), strict=True
            )
            relay.track(
                session, event=EVENT, distinct_id="u-us", properties=_props(US_ORG), strict=True
            )
        with engine.connect() as conn:
            rows = conn.execute(sa.select(outbox.c.distinct_id, outbox.c.destination)).all()
    finally:
        engine.dispose()
    assert sorted((str(d), str(n)) for d, n in rows) == [("u-eu", "eu"), ("u-us", "default")]
    _run(["relay", "drain"], env, expect=0)
    assert [e.key[1] for e in eu.ingested()] == ["u-eu"]
    assert [e.key[1] for e in us.ingested()] == ["u-us"]


@pytest.mark.usefixtures("guide_router")
def test_the_guides_forget_files_with_both_projects_and_prints_what_the_page_shows(
    env: dict[str, str], us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """`relay forget ... --mixpanel --yes` as the page writes it: each project receives one
    deletion of the person, and the output is the page's, line for line."""
    engine = create_engine(env["RELAY_DATABASE_URL"])
    try:
        with Session(engine) as session, session.begin():
            for plan in ("pro", "team"):
                relay.update_profile(
                    session,
                    distinct_id=PERSON,
                    operation="$set",
                    properties={"plan": plan},
                    strict=True,
                )
            relay.track(
                session, event=EVENT, distinct_id=PERSON, properties=_props(EU_ORG), strict=True
            )
        with engine.begin() as conn:
            conn.execute(
                sa.update(outbox).where(outbox.c.kind == "event").values(state="delivered")
            )
        with engine.connect() as conn:
            routed = conn.execute(
                sa.select(outbox.c.kind, outbox.c.destination).where(outbox.c.distinct_id == PERSON)
            ).all()
        # The person's profile updates name no organization: the router looks the person up.
        assert sorted((str(k), str(d)) for k, d in routed) == [
            ("event", "eu"),
            ("user", "eu"),
            ("user", "eu"),
        ]
        with store.transaction(engine) as conn:
            assert count_person_rows(conn, distinct_id=PERSON) == {
                "event/delivered": 1,
                "user/pending": 2,
            }
    finally:
        engine.dispose()
    done = _run(shlex.split(FORGET), env, expect=0)
    assert [job.distinct_ids for job in us.gdpr_jobs()] == [(PERSON,)]
    assert [job.distinct_ids for job in eu.gdpr_jobs()] == [(PERSON,)]
    shown = [line for line in _block("console", FORGET).splitlines() if line][1:]
    printed = done.stdout.splitlines()
    assert len(printed) == len(shown), done.stdout
    for line, expected in zip(printed, shown, strict=True):
        pattern = ".+".join(re.escape(part) for part in expected.split("..."))
        assert re.fullmatch(pattern, line), (line, expected)


def test_the_guides_push_commands_reach_each_project(
    env: dict[str, str], us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """The push to every destination fills both Lexicons; the push to `eu` only then finds EU
    in sync and sends the US project nothing."""
    assert f"$ {PUSH_ALL}" in _block("console", PUSH_EU)
    _run(shlex.split(PUSH_ALL), env, expect=0, cwd=OPTIMO)
    held_us = sorted(e["name"] for e in us.lexicon_entries())
    assert held_us
    assert sorted(e["name"] for e in eu.lexicon_entries()) == held_us
    before = len(us.lexicon_requests())
    done = _run(shlex.split(PUSH_EU), env, expect=0, cwd=OPTIMO)
    assert len(us.lexicon_requests()) == before
    assert (
        done.stderr.strip() == "destination eu: Lexicon is in sync with the registry: nothing to do"
    )
