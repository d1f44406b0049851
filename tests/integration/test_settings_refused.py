"""An invalid setting stops every command, and the daemon module's own entry point, before it
does anything: one ``relay:`` line naming the setting, exit 3 (issue 21, items 6 and 10)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from relay.cli import main

#: Every command that reads the settings, with arguments that would otherwise succeed.
COMMANDS = [
    ["migrate"],
    ["drain"],
    ["run"],
    ["stats"],
    ["audit"],
    ["dead-letters", "list"],
    ["export", "--all"],
    ["inspect", "1"],
    ["forget", "--distinct-id", "someone"],
    ["pause", "--reason", "incident"],
    ["resume"],
    ["purge", "--delivered-older-than", "3d", "--dry-run"],
    ["replay", "--all"],
    ["events", "push", "hr_catalog"],
    ["demo"],
    ["check"],
]

BAD = [
    ("RELAY_LEASE_SECONDS", "inf"),
    ("RELAY_LEASE_SECONDS", "0.001"),
    ("RELAY_POLL_MAX_SECONDS", "inf"),
    ("RELAY_PURGE_BATCH_SIZE", "100000000000000000000"),
    ("RELAY_MIXPANEL_API_URL", "127.0.0.1:8765"),
]


def _env(tmp_path: Path, name: str, value: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    return {**env, "RELAY_DATABASE_URL": f"sqlite:///{tmp_path / 'relay.db'}", name: value}


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_every_command_refuses_an_infinite_lease_with_one_line_and_exit_3(
    tmp_path: Path, args: list[str]
) -> None:
    """`RELAY_LEASE_SECONDS=inf relay <command>` is exit 3, one line naming the setting, no file."""
    env = _env(tmp_path, "RELAY_LEASE_SECONDS", "inf")
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 3, result.output
    assert len(lines) == 1, result.output
    assert lines[0].startswith("relay: configuration error: "), result.output
    assert "RELAY_LEASE_SECONDS" in lines[0]
    assert not (tmp_path / "relay.db").exists()  # nothing was created


@pytest.mark.parametrize(("name", "value"), BAD)
def test_the_daemon_module_entry_point_refuses_an_invalid_setting_with_exit_3(
    tmp_path: Path, name: str, value: str
) -> None:
    """`python -m relay._daemon.daemon` with a bad setting: one line naming it, exit 3."""
    env = {**_env(tmp_path, name, value), "RELAY_METRICS_PORT": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "relay._daemon.daemon"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("relay: configuration error: ")
    named = "RELAY_REQUEST_DEADLINE_SECONDS" if value == "0.001" else name
    assert named in lines[0]
    assert value not in lines[0]


@pytest.mark.parametrize(("name", "value"), BAD)
def test_drain_refuses_each_unworkable_setting_before_any_attempt(
    tmp_path: Path, name: str, value: str
) -> None:
    """`relay drain` with each once-accepted bad value is exit 3 naming it, not a traceback."""
    result = CliRunner().invoke(
        main, ["drain"], env=_env(tmp_path, name, value), catch_exceptions=False
    )
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    named = "RELAY_REQUEST_DEADLINE_SECONDS" if value == "0.001" else name
    assert named in result.output
