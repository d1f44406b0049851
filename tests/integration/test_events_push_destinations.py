"""``relay events push`` with several destinations (data residency, issue 24).

Two stand-ins play a US and an EU project, each with its own integer project id and service
account: a push reaches each project's Lexicon with that project's credentials, one outcome
line per destination; ``--destination`` pushes to one only; a destination without a service
account is one line and exit 3 while the other is still pushed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from relay.cli import main
from relay.plan.docs import catalog_registry
from relay.plan.lexicon import registry_entries
from relay.testing.mixpanel_standin import MixpanelStandin

EVENTS = sorted(catalog_registry(["hr_catalog"]))


@pytest.fixture
def us() -> Iterator[MixpanelStandin]:
    """The US project's stand-in."""
    with MixpanelStandin(project_id="1001", username="us-sa", secret="us-secret") as server:
        yield server


@pytest.fixture
def eu() -> Iterator[MixpanelStandin]:
    """The EU project's stand-in: another project id, another service account."""
    with MixpanelStandin(project_id="2002", username="eu-sa", secret="eu-secret") as server:
        yield server


def _destination(standin: MixpanelStandin, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "app_api_url": standin.app_api_url,
        "project_id": standin.project_id,
        "service_account_username": standin.username,
        "service_account_secret": standin.secret,
    }
    values.update(overrides)
    return values


def _push(us: dict[str, Any], eu: dict[str, Any], *args: str) -> Result:
    """The command, with the destinations given as a host hands settings over (Django)."""
    return CliRunner().invoke(
        main,
        ["events", "push", "hr_catalog", *args],
        obj={"destinations": {"us": us, "eu": eu}},
        catch_exceptions=False,
    )


def _held(standin: MixpanelStandin) -> list[str]:
    return sorted(entry["name"] for entry in standin.lexicon_entries())


def _outcomes(result: Result) -> dict[str, str]:
    """destination -> its outcome line (stderr), checking there is exactly one each."""
    found: dict[str, str] = {}
    for line in result.stderr.splitlines():
        name, _, rest = line.removeprefix("destination ").partition(": ")
        assert name not in found, result.stderr
        found[name] = rest
    return found


def test_push_reaches_each_destinations_lexicon_with_its_own_account(
    us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """--yes uploads the registry to both projects (each stand-in refuses the other's
    account, so each was reached with its own); one outcome line per destination, exit 0."""
    result = _push(_destination(us), _destination(eu), "--yes")
    assert result.exit_code == 0, result.output
    expected = registry_entries(catalog_registry(["hr_catalog"]))
    for standin in (us, eu):
        assert standin.lexicon_entries() == [expected[event] for event in EVENTS]
        assert {r.status for r in standin.lexicon_requests()} == {200}
    outcomes = _outcomes(result)
    assert outcomes["us"].startswith(f"uploaded {len(EVENTS)} event schemas")
    assert outcomes["eu"].startswith(f"uploaded {len(EVENTS)} event schemas")
    assert outcomes["default"] == "skipped: no Mixpanel project configured"
    assert f"destination eu: Lexicon of project 2002: {len(EVENTS)} to add" in result.stdout
    assert f"destination us: Lexicon of project 1001: {len(EVENTS)} to add" in result.stdout


def test_destination_option_pushes_to_that_project_only(
    us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """--destination eu uploads to the EU project; the US one receives no request at all."""
    result = _push(_destination(us), _destination(eu), "--yes", "--destination", "eu")
    assert result.exit_code == 0, result.output
    assert _held(eu) == EVENTS
    assert us.lexicon_requests() == []
    assert list(_outcomes(result)) == ["eu"]


def test_an_unknown_destination_is_bad_usage_and_sends_nothing(
    us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """--destination naming no configured destination: one line listing the configured
    ones, exit 2, no request anywhere."""
    result = _push(_destination(us), _destination(eu), "--yes", "--destination", "in")
    assert result.exit_code == 2
    assert "--destination 'in' is not configured" in result.stderr
    assert "the destinations are us, eu\n" in result.stderr  # no default: all are named
    assert us.lexicon_requests() == []
    assert eu.lexicon_requests() == []


def test_a_destination_without_a_service_account_is_one_line_and_exit_3(
    us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """The EU destination delivers with a project token only (no service account, which
    Lexicon requires): its line names the EU settings to set (its table's keys, its secret's
    variable: no RELAY_DESTINATION_EU_PROJECT_ID exists), the US project is still pushed,
    and the exit code is the configuration one."""
    eu_settings = _destination(
        eu,
        service_account_username=None,
        service_account_secret=None,
        project_token=eu.project_token,
    )
    result = _push(_destination(us), eu_settings, "--yes")
    assert result.exit_code == 3, result.output
    assert _held(us) == EVENTS
    assert eu.lexicon_requests() == []
    line = _outcomes(result)["eu"]
    assert line == (
        "no service account: set service_account_username of [destinations.eu], "
        "RELAY_DESTINATION_EU_SERVICE_ACCOUNT_SECRET and project_id of [destinations.eu] "
        "(Lexicon takes a service account only)"
    )


def test_a_destination_refusing_its_credentials_names_its_settings_and_not_the_secret(
    us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """EU's secret is refused (401): its line says so, names the EU settings and never prints
    the secret; the US upload stands; exit 3."""
    result = _push(_destination(us), _destination(eu, service_account_secret="old-eu-1"), "--yes")
    assert result.exit_code == 3, result.output
    assert _held(us) == EVENTS
    line = _outcomes(result)["eu"]
    assert line.startswith("refused: Mixpanel Lexicon refused the credentials (HTTP 401)")
    assert "RELAY_DESTINATION_EU_SERVICE_ACCOUNT_SECRET" in line
    assert "old-eu-1" not in result.output


def test_a_lexicon_down_in_one_region_is_exit_1_and_the_other_is_pushed(
    us: MixpanelStandin,
) -> None:
    """The EU host does not answer: its line says failed, the US upload stands, exit 1."""
    with MixpanelStandin(project_id="2002", username="eu-sa", secret="eu-secret") as gone:
        eu_settings = _destination(gone)
    result = _push(_destination(us), eu_settings, "--yes")
    assert result.exit_code == 1, result.output
    assert _held(us) == EVENTS
    assert _outcomes(result)["eu"].startswith("failed: ")


def test_differences_without_yes_exit_1_and_upload_nothing_anywhere(
    us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """Without --yes both diffs are shown, prefixed by their destination; nothing is uploaded."""
    result = _push(_destination(us), _destination(eu))
    assert result.exit_code == 1, result.output
    assert us.lexicon_entries() == []
    assert eu.lexicon_entries() == []
    for event in EVENTS:
        assert f"destination us: + {event}" in result.stdout
        assert f"destination eu: + {event}" in result.stdout


def test_json_lists_every_destination(us: MixpanelStandin, eu: MixpanelStandin) -> None:
    """--json prints one object per destination: its outcome, project id and diff."""
    result = _push(_destination(us), _destination(eu), "--yes", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    by_name = {d["destination"]: d for d in payload["destinations"]}
    assert by_name["us"]["project_id"] == "1001"
    assert by_name["eu"]["uploaded"] == len(EVENTS)
    assert by_name["eu"]["added"] == EVENTS
    assert by_name["default"]["outcome"] == "skipped"
