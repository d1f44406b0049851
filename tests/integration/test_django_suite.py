"""relay's Django tests (tests/contrib_django) and the Django example, each in a pytest of its own.

pytest-django configures Django once per process, from a settings module; relay's own suite
must not run under it. So the Django tests run here as a child pytest with
``DJANGO_SETTINGS_MODULE`` set: once on psycopg 3 (with SQLite, PostgreSQL and MariaDB), once
with psycopg 3 hidden so that Django and relay use psycopg2 (the PostgreSQL tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _pytest(target: Path, settings: str, pythonpath: Path, **env: str) -> None:
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(target),
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "relay.testing.plugin",
        *(env.pop("PYTEST_ARGS", "").split()),
    ]
    child_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings,
        "PYTHONPATH": os.pathsep.join([str(pythonpath), os.environ.get("PYTHONPATH", "")]),
        **env,
    }
    done = subprocess.run(
        command, cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"the Django tests failed:\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}")
    assert " passed" in done.stdout


def test_django_integration_on_sqlite_postgresql_and_mariadb() -> None:
    """Every Django test passes on the three backends, through psycopg 3."""
    tests = ROOT / "tests" / "contrib_django"
    _pytest(tests, "relay_django_settings", tests)


def test_django_integration_on_psycopg2() -> None:
    """The PostgreSQL tests pass when Django uses psycopg2."""
    tests = ROOT / "tests" / "contrib_django"
    _pytest(
        tests,
        "relay_django_settings",
        tests,
        RELAY_TEST_DJANGO_PSYCOPG2="1",
        PYTEST_ARGS="-k postgresql",
    )
