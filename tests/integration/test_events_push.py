"""``relay events push`` syncs the registry to Lexicon, checked against the Lexicon spec.

Every push runs against the stand-in's Lexicon Schemas API over loopback; every request it
received is validated against the request schema of Mixpanel's OpenAPI document
(``tests/contracts/mixpanel-lexicon-schemas.openapi.yaml``), with jsonschema.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from click.testing import CliRunner, Result
from helpers.standin import StartStandin

from relay.cli import main
from relay.plan.docs import catalog_registry
from relay.plan.lexicon import registry_entries
from relay.testing.mixpanel_standin import LexiconRequest, MixpanelStandin

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "tests" / "contracts" / "mixpanel-lexicon-schemas.openapi.yaml"
RELAY = str(Path(sys.executable).parent / "relay")
PROJECT_ID = "2195193"
EVENTS = sorted(catalog_registry(["hr_catalog"]))


def _request_validator(path: str, method: str) -> jsonschema.Draft7Validator:
    """A validator of the JSON request body the spec defines for ``method path``."""
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    schema = spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    # The body schema's $refs point into the document's components: keep them resolvable.
    return jsonschema.Draft7Validator({**schema, "components": spec["components"]})


BATCH = _request_validator("/projects/{projectId}/schemas", "post")
ONE = _request_validator("/projects/{projectId}/schemas/{entityType}/{name}", "post")


@pytest.fixture
def standin(start_standin: StartStandin) -> MixpanelStandin:
    """A stand-in whose project id is an integer, as the Lexicon Schemas API requires."""
    return start_standin(project_id=PROJECT_ID)


def _env(standin: MixpanelStandin, **overrides: str) -> dict[str, str]:
    env = {
        "RELAY_MIXPANEL_APP_API_URL": standin.app_api_url,
        "RELAY_MIXPANEL_PROJECT_ID": standin.project_id,
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME": standin.username,
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET": standin.secret,
    }
    env.update(overrides)
    return env


def _push(standin: MixpanelStandin, *args: str, **env: str) -> Result:
    runner = CliRunner()
    return runner.invoke(main, ["events", "push", "hr_catalog", *args], env=_env(standin, **env))


def _posts(standin: MixpanelStandin) -> list[LexiconRequest]:
    return [r for r in standin.lexicon_requests() if r.method == "POST"]


def _assert_requests_match_the_spec(standin: MixpanelStandin) -> None:
    for request in standin.lexicon_requests():
        if request.method == "POST" and request.path.endswith("/schemas"):
            BATCH.validate(request.body)
        elif request.method == "POST":
            ONE.validate(request.body)
        else:
            assert request.body is None


def _put_schema(standin: MixpanelStandin, entity: str, name: str, schema: dict[str, Any]) -> None:
    """Store one schema in the stand-in's Lexicon the way another tool would (POST one)."""
    ONE.validate(schema)
    response = httpx.post(
        f"{standin.app_api_url}/projects/{standin.project_id}/schemas/{entity}/{name}",
        json=schema,
        auth=(standin.username, standin.secret),
        timeout=5.0,
    )
    assert response.status_code == 200, response.text


def test_first_push_lists_every_event_as_added_and_uploads_nothing(
    standin: MixpanelStandin,
) -> None:
    """Without --yes the diff against an empty Lexicon is shown, exit 1, and nothing is sent."""
    result = _push(standin)
    assert result.exit_code == 1, result.output
    assert f"Lexicon of project {PROJECT_ID}: {len(EVENTS)} to add, 0 to change" in result.output
    for event in EVENTS:
        assert f"+ {event}" in result.output
    assert "run with --yes to upload" in result.output
    assert _posts(standin) == []
    assert standin.lexicon_entries() == []
    _assert_requests_match_the_spec(standin)


def test_push_yes_uploads_the_registry_in_requests_the_spec_accepts(
    standin: MixpanelStandin,
) -> None:
    """--yes sends one POST /schemas, valid by the spec, never truncating; Lexicon holds it."""
    result = _push(standin, "--yes")
    assert result.exit_code == 0, result.output
    assert f"uploaded {len(EVENTS)} event schemas" in result.output
    (post,) = _posts(standin)
    assert post.body["truncate"] is False
    assert post.status == 200
    _assert_requests_match_the_spec(standin)
    expected = registry_entries(catalog_registry(["hr_catalog"]))
    assert standin.lexicon_entries() == [expected[event] for event in EVENTS]
    held = {e["name"]: e["schemaJson"] for e in standin.lexicon_entries()}
    logged_in = held["svc.auth.user_logged_in"]
    assert logged_in["properties"]["employee_id"] == {
        "type": "string",
        "description": "Employee UUID as string",
    }
    assert logged_in["properties"]["cron_execution_timestamp"]["type"] == "integer"
    assert "Tracked when a user completes authentication" in logged_in["description"]


def test_second_push_has_nothing_to_do(standin: MixpanelStandin) -> None:
    """A push right after a push finds Lexicon in sync: exit 0, no upload, with or without --yes."""
    assert _push(standin, "--yes").exit_code == 0
    for args in ((), ("--yes",)):
        result = _push(standin, *args)
        assert result.exit_code == 0, result.output
        assert "in sync with the registry: nothing to do" in result.output
    assert len(_posts(standin)) == 1


def test_changed_schema_is_shown_with_what_differs_and_replaced(
    standin: MixpanelStandin,
) -> None:
    """A Lexicon schema that drifted is listed with its differences, and --yes puts it back."""
    assert _push(standin, "--yes").exit_code == 0
    entries = registry_entries(catalog_registry(["hr_catalog"]))
    drifted = json.loads(json.dumps(entries["svc.auth.user_logged_in"]["schemaJson"]))
    drifted["description"] = "edited in the Lexicon UI"
    del drifted["properties"]["employee_id"]
    drifted["properties"]["role"]["type"] = "number"
    drifted["properties"]["legacy_flag"] = {"type": "boolean"}
    _put_schema(standin, "event", "svc.auth.user_logged_in", drifted)

    result = _push(standin)
    assert result.exit_code == 1
    assert "0 to add, 1 to change, 0 only in Lexicon" in result.output
    assert (
        "~ svc.auth.user_logged_in: description; property employee_id: added; "
        "property legacy_flag: removed; property role: type"
    ) in result.output

    result = _push(standin, "--yes")
    assert result.exit_code == 0, result.output
    assert _posts(standin)[-1].body["entries"] == [entries["svc.auth.user_logged_in"]]
    _assert_requests_match_the_spec(standin)
    assert _push(standin).exit_code == 0


def test_only_in_lexicon_is_kept_unless_truncate_with_yes(standin: MixpanelStandin) -> None:
    """Events only Lexicon has are listed and kept; --truncate alone is a dry run; with --yes it
    replaces the whole dictionary (profile schemas too) in one truncating upload."""
    assert _push(standin, "--yes").exit_code == 0
    _put_schema(standin, "event", "svc.legacy.thing_done", {"description": "old"})
    _put_schema(standin, "profile", "plan", {"properties": {"plan": {"type": "string"}}})

    result = _push(standin, "--yes")
    assert result.exit_code == 0, result.output
    assert "- svc.legacy.thing_done (only in Lexicon)" in result.output
    assert "nothing to upload" in result.output
    result = _push(standin, "--truncate")
    assert result.exit_code == 1
    assert "run with --truncate --yes" in result.output
    assert all(post.body.get("truncate") is not True for post in _posts(standin))
    names = {(e["entityType"], e["name"]) for e in standin.lexicon_entries()}
    assert ("event", "svc.legacy.thing_done") in names
    assert ("profile", "plan") in names

    result = _push(standin, "--truncate", "--yes")
    assert result.exit_code == 0, result.output
    assert "replaced Lexicon's dictionary" in result.output
    last = _posts(standin)[-1]
    assert last.body["truncate"] is True
    assert len(last.body["entries"]) == len(EVENTS)
    _assert_requests_match_the_spec(standin)
    assert [e["name"] for e in standin.lexicon_entries()] == EVENTS
    assert _push(standin).exit_code == 0


def test_json_output_lists_the_three_kinds(standin: MixpanelStandin) -> None:
    """--json prints added, changed (with differences) and only-in-Lexicon for tools."""
    _put_schema(standin, "event", "svc.legacy.thing_done", {"description": "old"})
    _put_schema(standin, "event", "svc.auth.user_logged_in", {"description": "x"})
    result = _push(standin, "--json")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["added"] == [e for e in EVENTS if e != "svc.auth.user_logged_in"]
    (changed,) = payload["changed"]
    assert changed["name"] == "svc.auth.user_logged_in"
    assert "description" in changed["differences"]
    assert payload["only_in_lexicon"] == ["svc.legacy.thing_done"]
    assert payload["in_sync"] is False
    assert payload["uploaded"] == 0
    assert payload["truncated"] is False


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RELAY, "events", "push", "hr_catalog", "--yes"],
        cwd=ROOT,
        env={"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(ROOT / "tests"), **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_bad_credentials_exit_3_in_one_line_without_the_secret(
    standin: MixpanelStandin,
) -> None:
    """A secret Lexicon refuses (401) is a configuration error: exit 3, one line, no secret."""
    secret = "hunter2-wrong-secret-value"
    proc = _run(_env(standin, RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET=secret))
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("relay: configuration error: Mixpanel Lexicon refused the")
    assert "401" in lines[0]
    assert secret not in proc.stderr
    assert [r.status for r in standin.lexicon_requests()] == [401]


def test_another_project_is_refused_with_exit_3(standin: MixpanelStandin) -> None:
    """A project the service account cannot open (403) is a configuration error too."""
    proc = _run(_env(standin, RELAY_MIXPANEL_PROJECT_ID="999"))
    assert proc.returncode == 3
    assert "HTTP 403" in proc.stderr


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"RELAY_MIXPANEL_PROJECT_ID": "standin-project"}, "must be an integer"),
        ({"RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET": ""}, "a service account is required"),
    ],
    ids=["project-id-not-an-integer", "no-secret"],
)
def test_incomplete_configuration_exits_3_before_any_request(
    standin: MixpanelStandin, overrides: dict[str, str], needle: str
) -> None:
    """A push that cannot authenticate by the spec stops at the settings: exit 3, no request."""
    result = _push(standin, **overrides)
    assert result.exit_code == 3
    assert needle in result.output
    assert standin.lexicon_requests() == []


def test_lexicon_down_is_one_line_exit_1() -> None:
    """With nothing listening, the push says Lexicon did not answer, in one line, exit 1."""
    with MixpanelStandin(project_id=PROJECT_ID) as standin:
        env = _env(standin)
    proc = _run(env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "did not answer as documented (connection error: ConnectError)" in lines[0]
    assert standin.secret not in proc.stderr
