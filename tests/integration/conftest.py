"""Fixtures shared by the integration tests (helpers without fixtures: ``tests/helpers``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from relay.testing.mixpanel_standin import MixpanelStandin


@pytest.fixture
def no_relay_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No RELAY_* variable of the developer's shell leaks into the test."""
    for key in list(os.environ):
        if key.startswith("RELAY_"):
            monkeypatch.delenv(key)


@pytest.fixture
def standin() -> Iterator[MixpanelStandin]:
    """A Mixpanel stand-in on loopback (a module may define its own ``standin``)."""
    with MixpanelStandin() as server:
        yield server
