"""Fixtures shared by the integration tests (helpers without fixtures: ``tests/helpers``)."""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_relay_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No RELAY_* variable of the developer's shell leaks into the test."""
    for key in list(os.environ):
        if key.startswith("RELAY_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache directory for the tests that run mypy on a project, per pytest process.

    A cold mypy run reads relay, SQLAlchemy, pydantic and the standard library (20-40 s on
    this machine); with their results cached, 1-3 s. So the directory starts as a copy of the
    repository's own cache when there is one (``.ci/run`` runs mypy on relay before the tests):
    each xdist worker's first mypy run is then warm too. mypy checks every entry against its
    source file's hash and the options, so a project never takes another project's results
    (nor relay's, checked under other options) for its own. One per process (xdist worker):
    two mypy runs never write the same cache at once, and the repository's is only read.
    """
    cache = tmp_path_factory.mktemp("mypy-cache")
    _copy_mypy_cache(ROOT / ".mypy_cache", cache)
    return cache


def _copy_mypy_cache(source: Path, target: Path) -> None:
    """Copy mypy's cache; its SQLite files through SQLite's backup, a consistent snapshot even
    while a mypy run of the developer's writes to them."""
    if not source.is_dir():
        return
    shutil.copytree(
        source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.db", "*.db-*")
    )
    for db in source.rglob("*.db"):
        copy = target / db.relative_to(source)
        with (
            closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as read,
            closing(sqlite3.connect(copy)) as write,
        ):
            read.backup(write)
