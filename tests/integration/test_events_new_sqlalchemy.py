"""``relay events new --no-django``: a SQLAlchemy host's package passes lint, ruff, mypy, tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from relay.cli import main

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

#: A host project's tool configuration: the host package is first-party, relay third-party.
HOST_PYPROJECT = """\
[tool.ruff]
line-length = 100
target-version = "py311"
[tool.ruff.lint]
select = ["E", "F", "I", "B", "UP", "RUF"]
[tool.ruff.lint.isort]
known-first-party = ["hostapp"]
[tool.mypy]
strict = true
plugins = ["pydantic.mypy"]
[[tool.mypy.overrides]]
module = ["mixpanel.*", "MySQLdb.*", "apscheduler.*", "django.*"]
ignore_missing_imports = true
"""


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd), "MYPYPATH": str(ROOT)}
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300
    )


@pytest.mark.heavy
def test_new_event_passes_lint_ruff_mypy_and_its_tests(tmp_path: Path, mypy_cache: Path) -> None:
    """`events new` output is lint-clean, ruff-clean, formatted, mypy --strict clean, and green."""
    (tmp_path / "pyproject.toml").write_text(HOST_PYPROJECT, encoding="utf-8")
    made = CliRunner().invoke(
        main,
        [
            "events",
            "new",
            "svc.billing.invoice_paid",
            "--package",
            str(tmp_path / "hostapp"),
            "--no-django",
        ],
    )
    assert made.exit_code == 0, made.output
    lint = _run(
        [str(BIN / "relay"), "events", "lint", "hostapp", "--tests", "hostapp/tests"], tmp_path
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    for argv in (
        [str(BIN / "ruff"), "check", "hostapp"],
        [str(BIN / "ruff"), "format", "--check", "hostapp"],
        [str(BIN / "mypy"), "--cache-dir", str(mypy_cache), "hostapp"],
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "hostapp/tests"],
    ):
        proc = _run(argv, tmp_path)
        assert proc.returncode == 0, (argv, proc.stdout, proc.stderr)
    test_text = (tmp_path / "hostapp" / "tests" / "test_invoice_paid_event.py").read_text()
    assert test_text.count("\nclass Test") == 3
    assert (
        "def track_invoice_paid(\n        cls,\n        session:"
        in (tmp_path / "hostapp" / "service" / "billing.py").read_text()
    )


def test_new_refuses_a_bad_event_name(tmp_path: Path) -> None:
    """A name breaking the naming rule writes nothing."""
    result = CliRunner().invoke(
        main, ["events", "new", "svc.billing.cron_paid", "--package", str(tmp_path / "h")]
    )
    assert result.exit_code == 1
    assert not (tmp_path / "h").exists()
