"""The `relay events` examples of docs/guides/tracking-plan.md, run as written from the root."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RELAY = str(Path(sys.executable).parent / "relay")

#: Each example command of the tracking-plan guide and the exit code it documents.
EXAMPLES = [
    ("relay events lint", 0),
    ("relay events lint relay.catalog --tests tests", 0),
    ("relay events lint --json", 0),
    ("relay events docs", 0),
    ("relay events docs --format json-schema --output {out}", 0),
]


@pytest.mark.parametrize(("command", "code"), EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_readme_example_runs_as_written(command: str, code: int, tmp_path: Path) -> None:
    """The documented command exits with the documented code from the project root."""
    argv = shlex.split(command.format(out=tmp_path / "plan"))
    proc = subprocess.run(
        [RELAY, *argv[1:]], cwd=ROOT, capture_output=True, text=True, check=False, timeout=120
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
