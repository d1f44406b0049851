"""examples/optimo, the seed's ``optimo_analytics`` app on relay, passes the seed's validations.

The project is the HR product's catalog (the events relay once shipped as ``relay.catalog``)
in the seed's layout. Its own checks (ruff, mypy, ``manage.py check``, ``relay events lint``,
its pytest-django tests reading the outbox) run here in child processes, as its CI would run
them; then on a copy, ``relay events new`` adds the next two events, and everything still passes
with a diff made only of the new events' lines.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "optimo"
BIN = Path(sys.executable).parent
PACKAGE = "optimo_analytics"
#: The example's own tests: six events, six tests each.
EXAMPLE_TESTS = 36


def _run(argv: list[str], cwd: Path, data: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "DJANGO_"))}
    env.update(PYTHONPATH=str(cwd), MYPYPATH=str(ROOT), OPTIMO_DATA_DIR=str(data))
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600
    )


def _checks(project: Path, tmp_path: Path, mypy_cache: Path) -> subprocess.CompletedProcess[str]:
    """Every validation of the seed, in order; the last one (pytest) is returned."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    proc = None
    for argv in (
        [str(BIN / "ruff"), "check", "--no-cache", "."],
        [str(BIN / "ruff"), "format", "--no-cache", "--check", "."],
        [str(BIN / "mypy"), "--cache-dir", str(mypy_cache), PACKAGE, "optimo_core"],
        [sys.executable, "manage.py", "check"],
        [str(BIN / "relay"), "events", "lint", PACKAGE, "--tests", f"{PACKAGE}/tests"],
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
    ):
        proc = _run(argv, project, data)
        assert proc.returncode == 0, (argv, proc.stdout[-4000:], proc.stderr[-3000:])
    assert proc is not None
    return proc


def _sources(project: Path) -> dict[str, list[str]]:
    return {
        str(p.relative_to(project)): p.read_text(encoding="utf-8").splitlines()
        for p in sorted((project / PACKAGE).rglob("*.py"))
    }


@pytest.mark.timeout(900)
@pytest.mark.heavy
def test_the_example_passes_ruff_mypy_check_lint_and_its_own_tests(
    tmp_path: Path, mypy_cache: Path
) -> None:
    """examples/optimo as committed passes every validation the seed asks of a change."""
    proc = _checks(EXAMPLE, tmp_path, mypy_cache)
    assert f"{EXAMPLE_TESTS} passed" in proc.stdout


@pytest.mark.timeout(900)
@pytest.mark.heavy
def test_events_new_adds_the_next_two_events_touching_only_their_lines(
    tmp_path: Path, mypy_cache: Path
) -> None:
    """Two ``relay events new --django`` runs on a copy add only lines, and every check passes."""
    project = tmp_path / "optimo"
    shutil.copytree(
        EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", ".*_cache", "*.db")
    )
    before = _sources(project)
    for event, domain in (
        ("svc.surveys.survey_closed", "survey"),
        ("svc.hris_csv.upload.analysis_completed.error", "core"),
    ):
        done = _run(
            [
                str(BIN / "relay"),
                "events",
                "new",
                event,
                "--package",
                PACKAGE,
                "--domain",
                domain,
                "--django",
            ],
            project,
            tmp_path,
        )
        assert done.returncode == 0, (done.stdout, done.stderr)
    after = _sources(project)
    for name, lines in before.items():
        diff = difflib.unified_diff(lines, after[name], lineterm="", n=0)
        removed = [d for d in diff if d.startswith("-") and not d.startswith("---")]
        assert removed == [], (name, removed)
    assert set(after) - set(before) == {
        f"{PACKAGE}/tests/test_survey_closed_event.py",
        f"{PACKAGE}/tests/test_upload_analysis_completed_error_event.py",
    }
    assert "svc.surveys.survey_closed" in "\n".join(after[f"{PACKAGE}/constants.py"])
    helper = "    def track_upload_analysis_completed_error("
    assert after[f"{PACKAGE}/service/core.py"].count(helper) == 1
    proc = _checks(project, tmp_path, mypy_cache)
    assert f"{EXAMPLE_TESTS + 10} passed" in proc.stdout
