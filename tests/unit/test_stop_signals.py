"""``stop_on_signals``: SIGINT and SIGTERM set the stop event, including one that came while
``relay.__main__`` held them, and the old handlers come back."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import pytest

from relay import _exit
from relay._daemon.daemon import stop_on_signals


@pytest.fixture
def handlers_restored() -> Iterator[None]:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    held = list(_exit._held)
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        _exit._held[:] = held


@pytest.mark.usefixtures("handlers_restored")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_held_before_the_handlers_were_installed_is_a_stop(sig: signal.Signals) -> None:
    _exit.hold_stop_signals()
    signal.raise_signal(sig)  # noted by the holding handler, nothing else happens
    assert _exit.stop_requested()

    stop = threading.Event()
    restore = stop_on_signals(stop)

    assert stop.is_set()
    restore()
    assert signal.getsignal(sig) is _exit._hold


@pytest.mark.usefixtures("handlers_restored")
def test_without_a_held_signal_only_a_new_one_stops() -> None:
    _exit._held.clear()
    stop = threading.Event()
    restore = stop_on_signals(stop)
    try:
        assert not stop.is_set()
        signal.raise_signal(signal.SIGTERM)
        assert stop.is_set()
    finally:
        restore()
