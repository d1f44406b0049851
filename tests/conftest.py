"""Shared fixtures: real databases, each test run in throwaway databases of its own, and the
Mixpanel stand-in (``standin``, ``start_standin``) of the integration and fault suites.

PostgreSQL and MariaDB are required services: when one is down the tests that need it fail
loudly (a connection error), never skip. Every pytest run creates its own databases named
``relay_t_<random>`` and drops them at the end, so concurrent runs never see each other's rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from helpers.logs import logging_restored, plain_structlog_defaults
from helpers.standin import StartStandin
from hypothesis import settings
from sqlalchemy.engine import Engine

from relay.testing.mixpanel_standin import MixpanelStandin
from relay.testing.scratch import (
    MARIADB_ADMIN_URL,
    POSTGRES_ADMIN_URL,
    fresh_tables,
    scratch_database,
)

DIALECTS = ("sqlite", "postgresql", "mariadb")

# Property-based tests run few examples by default (the quick loop and CI) and many on request:
# HYPOTHESIS_PROFILE=thorough pytest ...
settings.register_profile("quick", max_examples=30)
settings.register_profile("thorough", max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))
plain_structlog_defaults()
FAULTS_DIR = Path(__file__).resolve().parent / "faults"

# relay's Django tests need Django settings and pytest-django: they run in a pytest process of
# their own (tests/integration/test_django_suite.py), which sets DJANGO_SETTINGS_MODULE.
collect_ignore = [] if os.environ.get("DJANGO_SETTINGS_MODULE") else ["contrib_django"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long", action="store_true", default=False, help="run the long fault scenarios"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test of the fault suite ``faults``; skip ``slow`` ones unless ``--long``;
    run ``heavy`` ones first, then the fault suite, then the rest.

    Heavy tests (a child pytest, a tool run, a million rows: tens of seconds each) and the
    fault suite (real processes and deadlines: 5-80 s a test) go first so that pytest-xdist
    hands them out while every worker has work left, and the run does not end with one worker
    finishing a long test while the other waits. The order is the same in every worker, as
    xdist requires; in a single process only the order changes.
    """
    faults = pytest.mark.faults
    for item in items:
        if item.path.is_relative_to(FAULTS_DIR):
            item.add_marker(faults)

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("heavy") is not None:
            return 0
        return 1 if item.get_closest_marker("faults") is not None else 2

    items.sort(key=rank)
    if config.getoption("--long"):
        return
    skip_long = pytest.mark.skip(reason="long scenario: run with --long")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_long)


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this test run."""
    with scratch_database(POSTGRES_ADMIN_URL) as url:
        yield url


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    """URL of a fresh MariaDB database for this test run."""
    with scratch_database(MARIADB_ADMIN_URL) as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of a SQLite file for this test run."""
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'relay.db'}"


@pytest.fixture(params=DIALECTS)
def db_url(request: pytest.FixtureRequest) -> str:
    """The URL of each database relay supports, one test per dialect."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on each supported database, with empty relay tables."""
    with fresh_tables(db_url) as fresh:
        yield fresh


@pytest.fixture
def pg_engine(postgresql_url: str) -> Iterator[Engine]:
    """An engine on PostgreSQL only, with empty relay tables."""
    with fresh_tables(postgresql_url) as fresh:
        yield fresh


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    """An engine on SQLite only, with empty relay tables."""
    with fresh_tables(sqlite_url) as fresh:
        yield fresh


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """The test configures logging for the process (a command, ``configure_logging``): undo it
    for the tests after."""
    with logging_restored():
        yield


@pytest.fixture
def start_standin() -> Iterator[StartStandin]:
    """Start Mixpanel stand-ins on loopback, ``start_standin(**options)`` taking
    ``MixpanelStandin``'s options; every one started is stopped after the test."""
    with ExitStack() as stack:

        def start(**options: Any) -> MixpanelStandin:
            return stack.enter_context(MixpanelStandin(**options))

        yield start


@pytest.fixture
def standin(start_standin: StartStandin) -> MixpanelStandin:
    """A Mixpanel stand-in on loopback with Mixpanel's limits. A module whose tests need other
    options (a pinned clock, a project id, smaller limits) defines its own ``standin`` from
    ``start_standin``."""
    return start_standin()
