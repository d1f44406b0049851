"""Fixtures of the fault suite: the Mixpanel stand-in and relay processes.

A test that restarts a database server starts a private one (see test_zz_database_restart.py),
so no test depends on running before or after another.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.standin import StartStandin
from rig import RelayLauncher
from sqlalchemy.engine import Engine

from relay.testing.mixpanel_standin import MixpanelStandin


@pytest.fixture
def standin(start_standin: StartStandin) -> MixpanelStandin:
    """A Mixpanel stand-in on loopback that keeps every record it accepted."""
    return start_standin(retain_events=True)


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
