"""Fixtures shared by the integration tests (helpers without fixtures: ``tests/helpers``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def no_relay_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No RELAY_* variable of the developer's shell leaks into the test."""
    for key in list(os.environ):
        if key.startswith("RELAY_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache directory for the tests that run mypy on a project, per pytest process.

    A cold mypy run reads Django, SQLAlchemy and pydantic (20-40 s on this machine); with
    their results cached, 1-3 s. mypy checks every entry against its source file's hash and
    the options, so a project never takes another project's results for its own. One per
    process (xdist worker): two mypy runs never write the same cache at once.
    """
    return tmp_path_factory.mktemp("mypy-cache")
