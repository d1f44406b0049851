"""Every script in bench/ imports cleanly, so a refactor cannot leave a benchmark broken unseen.

The benchmarks are not run by the suite (they take minutes and their figures go to
BENCHMARKS.md), but their imports are: a helper module renamed or split under them (as
``bench/_common.py`` once was) fails here, not on the next person's measurement. One child
process imports them all, one after the other, and reports each script's own outcome: a child
per script spent about a second of CPU each on the same imports of SQLAlchemy and relay.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py"))

#: Imports each script named on the command line; prints {script: traceback or null} as JSON.
_IMPORT_EACH = """
import importlib, json, sys, traceback
outcomes = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except BaseException:
        outcomes[name] = traceback.format_exc()[-2000:]
    else:
        outcomes[name] = None
print(json.dumps(outcomes))
"""


@pytest.fixture(scope="module")
def import_outcomes() -> dict[str, str | None]:
    """Each script's import: ``None`` when it succeeded, else its traceback."""
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, *SCRIPTS],
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    outcomes: dict[str, str | None] = json.loads(done.stdout.splitlines()[-1])
    return outcomes


def test_there_are_benchmarks_to_check() -> None:
    """The glob finds the scripts (a moved folder would otherwise pass every check below)."""
    assert "track_many" in SCRIPTS
    assert "_stats" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_script_imports(script: str, import_outcomes: dict[str, str | None]) -> None:
    """``import <script>`` from bench/ succeeds: its helpers exist under the names it uses."""
    assert script in import_outcomes
    assert import_outcomes[script] is None, import_outcomes[script]
