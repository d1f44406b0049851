"""Shared fixtures: real databases, each test run in throwaway databases of its own.

PostgreSQL and MariaDB are required services: when one is down the tests that need it fail
loudly (a connection error), never skip. Every pytest run creates its own databases named
``relay_t_<random>`` and drops them at the end, so concurrent runs never see each other's rows.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from relay import _migrations
from relay._database import create_engine
from relay._tables import metadata

POSTGRES_ADMIN_URL = os.environ.get(
    "RELAY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB_ADMIN_URL = os.environ.get(
    "RELAY_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
)

DIALECTS = ("sqlite", "postgresql", "mariadb")

# relay's Django tests need Django settings and pytest-django: they run in a pytest process of
# their own (tests/integration/test_django_suite.py), which sets DJANGO_SETTINGS_MODULE.
collect_ignore = [] if os.environ.get("DJANGO_SETTINGS_MODULE") else ["contrib_django"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long", action="store_true", default=False, help="run the long fault scenarios"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--long"):
        return
    skip_long = pytest.mark.skip(reason="long scenario: run with --long")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_long)


def _scratch_database(admin_url: str) -> Iterator[str]:
    name = f"relay_t_{secrets.token_hex(6)}"
    # Pre-ping: the fault suite restarts PostgreSQL, which kills pooled connections.
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            if admin.dialect.name == "postgresql":
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            else:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this test run."""
    yield from _scratch_database(POSTGRES_ADMIN_URL)


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    """URL of a fresh MariaDB database for this test run."""
    yield from _scratch_database(MARIADB_ADMIN_URL)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of a SQLite file for this test run."""
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'relay.db'}"


@pytest.fixture(params=DIALECTS)
def db_url(request: pytest.FixtureRequest) -> str:
    """The URL of each database relay supports, one test per dialect."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


def _fresh_schema(url: str) -> Iterator[Engine]:
    engine = create_engine(url)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    _migrations.stamp(engine)  # so that `relay run`/`drain` pass their schema check
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on each supported database, with empty relay tables."""
    yield from _fresh_schema(db_url)


@pytest.fixture
def pg_engine(postgresql_url: str) -> Iterator[Engine]:
    """An engine on PostgreSQL only, with empty relay tables."""
    yield from _fresh_schema(postgresql_url)


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    """An engine on SQLite only, with empty relay tables."""
    yield from _fresh_schema(sqlite_url)
