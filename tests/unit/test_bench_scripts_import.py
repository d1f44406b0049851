"""Every script in bench/ imports cleanly, so a refactor cannot leave a benchmark broken unseen.

The benchmarks are not run by the suite (they take minutes and their figures go to
BENCHMARKS.md), but their imports are: a helper module renamed or split under them (as
``bench/_common.py`` once was) fails here, not on the next person's measurement.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py"))


def test_there_are_benchmarks_to_check() -> None:
    """The glob finds the scripts (a moved folder would otherwise pass every check below)."""
    assert "track_many" in SCRIPTS
    assert "_stats" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_script_imports(script: str) -> None:
    """``import <script>`` from bench/ succeeds: its helpers exist under the names it uses."""
    done = subprocess.run(
        [sys.executable, "-c", f"import {script}"],
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
