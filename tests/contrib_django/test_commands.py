"""``manage.py relay <command>`` and the daemon: what Django wrote, the relay delivers.

The commands run as real child processes (``python -m django relay ...``) with the test
project's settings, against the test databases and the Mixpanel stand-in on loopback.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import relay_django_settings
from conftest import ALIASES, SURVEY_DELIVERED, rolled_back, survey_properties
from django.core.management import CommandError, call_command
from django.db import transaction

from relay.contrib.django import track
from relay.testing.mixpanel_standin import MixpanelStandin

pytestmark = pytest.mark.django_db(transaction=True, databases=list(ALIASES))

HERE = Path(__file__).resolve().parent


@pytest.fixture
def standin() -> Iterator[MixpanelStandin]:
    with MixpanelStandin() as server:
        yield server


def manage(
    *args: str, default: str = "default", command: str = "relay", **env: str
) -> subprocess.CompletedProcess[str]:
    """``python -m django relay ARGS`` in a child process, on the test databases.

    ``default`` names the alias whose database the child sees as ``default``; ``command``
    another management command (``migrate``).
    """
    child = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("RELAY_") or key.startswith("RELAY_TEST")
    }
    child.update(
        DJANGO_SETTINGS_MODULE="relay_django_settings",
        PYTHONPATH=str(HERE),
        RELAY_TEST_DJANGO_RUN=relay_django_settings.RUN,
        RELAY_TEST_DJANGO_TEST_NAMES="1",
        RELAY_TEST_DJANGO_DEFAULT=default,
        RELAY_LOG_LEVEL="WARNING",
    )
    child.update(env)
    return subprocess.run(
        [sys.executable, "-m", "django", command, *args],
        env=child,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _track_committed(alias: str, count: int) -> list[str]:
    ids = []
    with transaction.atomic(using=alias):
        for n in range(count):
            insert_id = track(
                event=SURVEY_DELIVERED,
                distinct_id=f"emp-{n}",
                properties=survey_properties(survey_id=f"s{n}"),
                using=alias,
            )
            assert insert_id is not None
            ids.append(insert_id)
    return ids


def test_drain_delivers_what_django_committed_once(alias: str, standin: MixpanelStandin) -> None:
    """``manage.py relay drain`` sends every committed event once; rolled-back ones never."""
    ids = _track_committed(alias, 3)
    with rolled_back(alias):
        track(event=SURVEY_DELIVERED, distinct_id="x", properties=survey_properties(), using=alias)
    done = manage("drain", "--json", default=alias, **standin.settings_env())
    assert done.returncode == 0, done.stderr
    assert sorted(e.event["properties"]["$insert_id"] for e in standin.ingested()) == sorted(ids)
    again = manage("drain", "--json", default=alias, **standin.settings_env())
    assert again.returncode == 0, again.stderr
    assert len(standin.ingested()) == 3  # delivered once: nothing left to send


def test_stats_reads_the_django_database(alias: str) -> None:
    """``manage.py relay stats --json`` reports the rows Django's transaction committed."""
    _track_committed(alias, 2)
    done = manage("stats", "--json", default=alias)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["pending"] == 2
    assert report["pending_by_event"] == {SURVEY_DELIVERED: 2}


def test_environment_wins_over_django_settings() -> None:
    """A set ``RELAY_*`` variable overrides the ``RELAY`` dict; a bad one exits 3 by name."""
    bad = manage("stats", RELAY_MAX_ATTEMPTS="zero")
    assert bad.returncode == 3
    assert "MAX_ATTEMPTS" in bad.stderr
    assert "zero" not in bad.stderr or "RELAY_MAX_ATTEMPTS" in bad.stderr
    elsewhere = manage("stats", RELAY_DATABASE_URL="sqlite:////nonexistent-dir/x.db")
    assert elsewhere.returncode != 0  # the variable, not Django's database, was used


def test_usage_errors_keep_relay_exit_codes() -> None:
    """An unknown relay command exits 2 with relay's own usage message."""
    done = manage("no-such-command")
    assert done.returncode == 2
    assert "no-such-command" in done.stderr


def test_call_command_raises_on_failure() -> None:
    """``call_command("relay", ...)`` raises ``CommandError`` with relay's exit status."""
    with pytest.raises(CommandError) as caught:
        call_command("relay", "no-such-command")
    assert caught.value.returncode == 2


def test_call_command_passes_relays_options_through() -> None:
    """``call_command("relay", "stats", "--json", stdout=buf)`` parses as relay; the JSON in buf."""
    _track_committed("default", 1)
    out = io.StringIO()
    call_command("relay", "stats", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["pending"] == 1
    assert report["pending_by_event"] == {SURVEY_DELIVERED: 1}
