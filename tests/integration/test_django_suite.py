"""relay's Django tests (tests/contrib_django) and the Django example, each in a pytest of its own.

pytest-django configures Django once per process, from a settings module; relay's own suite
must not run under it. So the Django tests run here as child pytests with
``DJANGO_SETTINGS_MODULE`` set: on psycopg 3 (with SQLite, PostgreSQL and MariaDB) in three
children of about a minute each (:data:`CHUNKS`: pytest-xdist's workers share them, where
one child of the whole directory kept a worker busy for minutes), once with
psycopg 3 hidden so that Django and relay use psycopg2 (the PostgreSQL tests), and the admin's
tests once more with PostgreSQL as Django's default database.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from relay import _migrations

ROOT = Path(__file__).resolve().parents[2]


def _pytest(targets: list[str], settings: str, pythonpath: Path, *extra: str, **env: str) -> None:
    command = [
        sys.executable,
        "-m",
        "pytest",
        *targets,
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "relay.testing.plugin",
        *extra,
    ]
    child_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings,
        "PYTHONPATH": os.pathsep.join([str(pythonpath), os.environ.get("PYTHONPATH", "")]),
        **env,
    }
    done = subprocess.run(
        command, cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=1500, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"the Django tests failed:\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}")
    assert " passed" in done.stdout


DJANGO_TESTS = ROOT / "tests" / "contrib_django"

#: The files of tests/contrib_django, in children that take about as long as each other; the
#: migration tests (the longest file: a child process per command) in two, SQLite in one and
#: the servers in the other, and every other file in a third (each child also pays for its
#: start and for creating its test databases: 10-15 s).
CHUNKS: dict[str, tuple[tuple[str, ...], str]] = {
    "migrate-sqlite": (("test_migrate.py",), "not postgresql and not mariadb"),
    "migrate-servers": (("test_migrate.py",), "postgresql or mariadb"),
    "tracking-admin-commands": (
        (
            "test_admin.py",
            "test_catalog.py",
            "test_commands.py",
            "test_django_routing.py",
            "test_independent.py",
            "test_leaks.py",
            "test_plugin.py",
            "test_postgresql.py",
            "test_profiles.py",
            "test_tracking.py",
        ),
        "",
    ),
}
#: Opt-in files (a headless browser), left out of the chunks.
OPT_IN = ("test_admin_browser.py",)


def test_every_django_test_file_is_in_the_chunks() -> None:
    """A new file of tests/contrib_django runs: it is in a chunk (or opt-in), and a file split
    over chunks by ``-k`` is split by an expression and its negation."""
    files = sorted(path.name for path in DJANGO_TESTS.glob("test_*.py"))
    chunked = sorted({name for names, _ in CHUNKS.values() for name in names})
    assert sorted([*chunked, *OPT_IN]) == files
    for name in chunked:
        selections = sorted(select for names, select in CHUNKS.values() if name in names)
        assert selections in (
            [""],
            ["not postgresql and not mariadb", "postgresql or mariadb"],
        ), name


@pytest.mark.heavy
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("chunk", list(CHUNKS))
def test_django_integration_on_sqlite_postgresql_and_mariadb(chunk: str) -> None:
    """Every Django test passes on the three backends, through psycopg 3."""
    names, select = CHUNKS[chunk]
    targets = [str(DJANGO_TESTS / name) for name in names]
    _pytest(targets, "relay_django_settings", DJANGO_TESTS, *(["-k", select] if select else []))


@pytest.mark.heavy
def test_django_admin_on_postgresql() -> None:
    """The admin tests pass with the outbox on PostgreSQL too (its json audit column included)."""
    _pytest(
        [str(DJANGO_TESTS / "test_admin.py")],
        "relay_django_settings",
        DJANGO_TESTS,
        RELAY_TEST_DJANGO_DEFAULT="postgresql",
    )


@pytest.mark.heavy
def test_django_integration_on_psycopg2() -> None:
    """The PostgreSQL tests pass when Django uses psycopg2."""
    _pytest(
        [str(DJANGO_TESTS)],
        "relay_django_settings",
        DJANGO_TESTS,
        "-k",
        "postgresql and (test_tracking or test_postgresql)",
        RELAY_TEST_DJANGO_PSYCOPG2="1",
    )


@pytest.mark.heavy
def test_django_example_project_tests_pass(tmp_path: Path) -> None:
    """examples/django_app's own tests (pytest-django, relay's plugin) pass as its CI runs them."""
    example = ROOT / "examples" / "django_app"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q"],
        cwd=example,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "DJANGO_"))},
            "SURVEYS_DATA_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    assert "3 passed" in done.stdout


@pytest.mark.heavy
def test_django_example_check_and_migrate_story(tmp_path: Path) -> None:
    """``manage.py check``, ``migrate``, then ``relay migrate`` finds nothing to do."""
    example = ROOT / "examples" / "django_app"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "DJANGO_"))},
        "SURVEYS_DATA_DIR": str(tmp_path),
    }

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=example,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    checked = manage("check")
    assert checked.returncode == 0, checked.stderr
    migrated = manage("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "Applying relay.0001_relay_schema... OK" in migrated.stdout
    again = manage("relay", "migrate")
    assert again.returncode == 0, again.stderr
    assert f"at revision {_migrations.heads()[0]}" in again.stdout
    bad = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=example,
        env={**env, "RELAY_MAX_ATTEMPTS": "0"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode != 0
    assert "relay.E001" in bad.stderr
    assert "MAX_ATTEMPTS" in bad.stderr
