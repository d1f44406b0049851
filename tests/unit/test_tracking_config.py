"""The process's tracking defaults are one typed object, set by configure_tracking()."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from relay import RelaySettings, configure_tracking, is_strict, strict_tracking
from relay._tracking import config


@pytest.fixture(autouse=True)
def _restore_defaults() -> Iterator[None]:
    saved = config.settings.strict
    yield
    config.settings.strict = saved


def test_configure_tracking_sets_strict_mode_for_the_process() -> None:
    """The setting lands on the typed TrackingConfig, typed as it was given."""
    configure_tracking(RelaySettings.model_construct(strict_tracking=True))
    assert config.settings == config.TrackingConfig(strict=True)
    assert is_strict() is True


def test_a_call_beats_a_block_which_beats_the_process() -> None:
    """Per call, else per block, else the process default."""
    assert config.TrackingConfig() == config.TrackingConfig(False)
    configure_tracking(RelaySettings.model_construct(strict_tracking=True))
    with strict_tracking(False):
        assert is_strict() is False
        assert is_strict(True) is True
    assert is_strict() is True
    assert is_strict(False) is False
