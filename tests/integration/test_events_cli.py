"""The `relay events` examples of docs/guides/tracking-plan.md, run as written (examples/optimo)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPTIMO = ROOT / "examples" / "optimo"
RELAY = str(Path(sys.executable).parent / "relay")

#: Each example command of the tracking-plan guide and the exit code it documents.
EXAMPLES = [
    ("relay events lint optimo_analytics", 0),
    ("relay events lint optimo_analytics --tests optimo_analytics/tests", 0),
    ("relay events lint optimo_analytics --json", 0),
    ("relay events docs optimo_analytics", 0),
    ("relay events docs optimo_analytics --format json-schema --output {out}", 0),
]


@pytest.mark.parametrize(("command", "code"), EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_readme_example_runs_as_written(command: str, code: int, tmp_path: Path) -> None:
    """The documented command exits with the documented code in the seed's example project."""
    argv = shlex.split(command.format(out=tmp_path / "plan"))
    proc = subprocess.run(
        [RELAY, *argv[1:]], cwd=OPTIMO, capture_output=True, text=True, check=False, timeout=120
    )
    assert proc.returncode == code, proc.stderr
    if "--json" in argv:
        assert json.loads(proc.stdout)["count"] == 0
    if "--output" in argv:
        assert len(list((tmp_path / "plan").glob("svc.*.schema.json"))) == 6


def test_readme_new_then_lint_example_runs_as_written(tmp_path: Path) -> None:
    """`relay events new ... --package hostapp` then `relay events lint hostapp ...` exit 0."""
    for command in (
        "relay events new svc.billing.invoice_paid --package hostapp",
        "relay events lint hostapp --tests hostapp/tests",
    ):
        argv = shlex.split(command)
        proc = subprocess.run(
            [RELAY, *argv[1:]], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
    assert "0 findings in hostapp" in proc.stderr


@pytest.mark.parametrize("command", ["lint", "docs", "push"])
def test_a_command_without_module_is_one_usage_line(command: str, tmp_path: Path) -> None:
    """relay ships no events: `relay events CMD` without MODULE exits 2 naming the argument."""
    proc = subprocess.run(
        [RELAY, "events", command],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("RELAY_")},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"relay: relay events {command} needs MODULE"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""
