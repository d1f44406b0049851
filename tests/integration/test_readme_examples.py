"""The README's and the guides' Python examples, run exactly as written in a fresh directory,
with what they promise checked (tests/integration/test_docs_examples.py runs every block).

The Quickstart (README) and its track_many() cron run (docs/guides/tracking.md) run as one
script, and the "Testing your application" ``conftest.py`` and test file
(docs/guides/testing.md) run as a host project's own pytest session with the plugin.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _section_blocks(heading: str, page: str = "README.md") -> list[str]:
    text = "\n" + (ROOT / page).read_text(encoding="utf-8")
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + len(heading) + 2)
    section = text[start : end if end != -1 else len(text)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "PYTEST_"))}


def test_the_quickstart_and_its_cron_run_track_into_a_committed_outbox(tmp_path: Path) -> None:
    """The Quickstart and its track_many() cron run, as written: four events pending in relay.db.

    The blocks run in order in one script, as a reader following the section would.
    """
    quickstart = _section_blocks("## Quickstart")[0]
    many = _section_blocks("## Many events at once: `track_many()`", "docs/guides/tracking.md")[0]
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
    with sqlite3.connect(tmp_path / "relay.db") as db:
        rows = db.execute(
            "SELECT event, state, properties FROM relay_outbox ORDER BY id"
        ).fetchall()
    assert [(event, state) for event, state, _ in rows] == [
        ("svc.billing.invoice_paid", "pending")
    ] * 4
    assert all('"is_cron_job":true' in props.replace(" ", "") for *_, props in rows[1:])


def test_the_plugin_example_passes_as_a_host_test_suite(tmp_path: Path) -> None:
    """The README's conftest.py and test file pass under pytest with relay's plugin."""
    conftest, test_module = _section_blocks("# Testing your application", "docs/guides/testing.md")[
        :2
    ]
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


def _standin(env: dict[str, str]) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("relay")), "standin", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    exports: dict[str, str] = {}
    for line in proc.stdout:
        match = re.fullmatch(r"export (RELAY_\w+)=(\S+)\n", line)
        if match is None:
            break
        exports[match.group(1)] = match.group(2)
    return proc, exports


def test_the_quickstart_event_reaches_the_standin_through_the_default_database(
    tmp_path: Path,
) -> None:
    """Following the Quickstart, then `relay migrate && relay drain` with the stand-in's
    settings and no RELAY_DATABASE_URL, delivers its event: both use ./relay.db."""
    quickstart = _section_blocks("## Quickstart")[0]
    (tmp_path / "quickstart.py").write_text(quickstart, encoding="utf-8")
    env = _clean_env()
    done = subprocess.run(
        [sys.executable, "quickstart.py"], cwd=tmp_path, env=env, check=False, timeout=120
    )
    assert done.returncode == 0
    proc, exports = _standin(env)
    try:
        drained = subprocess.run(
            ["bash", "-c", "relay migrate && relay drain"],  # as a reader types it
            cwd=tmp_path,
            env={**env, **exports, "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        proc.terminate()
        proc.communicate(timeout=30)

    assert drained.returncode == 0, drained.stderr
    assert "delivered 1," in drained.stdout
    assert "empty" not in drained.stderr


def test_drain_on_an_outbox_never_tracked_into_says_which_database_is_empty(
    tmp_path: Path,
) -> None:
    """`relay drain` on a migrated but never-used database says that database is empty and
    asks whether it is the application's, instead of a bare "delivered 0"."""
    relay_cli = str(Path(sys.executable).with_name("relay"))
    env = {
        **_clean_env(),
        "RELAY_DATABASE_URL": f"sqlite:///{tmp_path / 'other.db'}",
        "RELAY_MIXPANEL_PROJECT_TOKEN": "token",
        "RELAY_MIXPANEL_API_URL": "http://127.0.0.1:9",
    }
    subprocess.run([relay_cli, "migrate"], env=env, check=True, capture_output=True, timeout=60)

    drained = subprocess.run(
        [relay_cli, "drain"], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert drained.returncode == 0, drained.stderr
    assert f"the outbox in sqlite:///{tmp_path / 'other.db'} is empty" in drained.stderr
    assert "RELAY_DATABASE_URL" in drained.stderr
