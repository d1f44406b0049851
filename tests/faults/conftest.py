"""Fixtures of the fault suite: the Mixpanel stand-in, relay processes, and test ordering.

Tests marked ``runs_last`` (the PostgreSQL restart, which cuts every session on the shared
cluster) are moved to the end of the whole session, whatever else was collected with them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rig import RelayLauncher
from sqlalchemy.engine import Engine

from relay.testing.mixpanel_standin import MixpanelStandin


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "runs_last: disrupts shared services; run after every other test"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    last = [item for item in items if item.get_closest_marker("runs_last") is not None]
    if last:
        items[:] = [item for item in items if item.get_closest_marker("runs_last") is None] + last


@pytest.fixture
def standin() -> Iterator[MixpanelStandin]:
    """A Mixpanel stand-in on loopback that keeps every record it accepted."""
    with MixpanelStandin(retain_events=True) as server:
        yield server


@pytest.fixture
def relays(pg_engine: Engine, standin: MixpanelStandin, tmp_path: Path) -> Iterator[RelayLauncher]:
    """Start ``relay run`` processes on the scratch PostgreSQL database; all killed at the end."""
    launcher = RelayLauncher(
        database_url=pg_engine.url.render_as_string(hide_password=False),
        standin=standin,
        log_dir=tmp_path,
    )
    try:
        yield launcher
    finally:
        launcher.kill_all()
