"""The README's Python examples, run exactly as written in a fresh directory.

Each fenced ``python`` block is taken from README.md as it stands: the Quickstart runs as a
script, and the "Testing your application" ``conftest.py`` and test file run as a host
project's own pytest session with the plugin. A README edit that breaks an example fails here.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _section_blocks(heading: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + len(heading) + 2)
    section = text[start : end if end != -1 else len(text)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "PYTEST_"))}


def test_the_quickstart_and_its_cron_run_track_into_a_committed_outbox(tmp_path: Path) -> None:
    """The Quickstart and its track_many() cron run, as written: four events pending in app.db.

    The blocks run in order in one script, as a reader following the section would.
    """
    quickstart, many = _section_blocks("## Quickstart")[:2]
    assert "track_many" in many
    (tmp_path / "quickstart.py").write_text(quickstart + "\n" + many, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "quickstart.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=_clean_env(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^tracked [0-9a-f-]{36}$", done.stdout, flags=re.M), done.stdout
    assert "tracked 3 in one transaction" in done.stdout
    with sqlite3.connect(tmp_path / "app.db") as db:
        rows = db.execute(
            "SELECT event, state, properties FROM relay_outbox ORDER BY id"
        ).fetchall()
    assert [(event, state) for event, state, _ in rows] == [
        ("svc.billing.invoice_paid", "pending")
    ] * 4
    assert all('"is_cron_job":true' in props.replace(" ", "") for *_, props in rows[1:])


def test_the_plugin_example_passes_as_a_host_test_suite(tmp_path: Path) -> None:
    """The README's conftest.py and test file pass under pytest with relay's plugin."""
    conftest, test_module = _section_blocks("## Testing your application")
    assert conftest.startswith("# conftest.py")
    assert test_module.startswith("# test_billing.py")
    (tmp_path / "conftest.py").write_text(conftest, encoding="utf-8")
    (tmp_path / "test_billing.py").write_text(test_module, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_billing.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env=_clean_env(),
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
