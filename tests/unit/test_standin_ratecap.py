"""The stand-in's per-project rate cap: a rolling window of admitted events."""

from __future__ import annotations

import pytest

from relay.testing.mixpanel_standin._ratecap import RateCap


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_cap_admits_up_to_the_window_budget_and_refuses_beyond() -> None:
    """Within one window, events up to rate x window are admitted and the next request is not."""
    clock = _Clock()
    cap = RateCap(1000, window_seconds=2.0, clock=clock)
    assert cap.admit(1500)
    assert cap.admit(500)
    assert not cap.admit(1)


def test_refused_requests_do_not_use_the_budget() -> None:
    """A refused request counts for nothing: a smaller one after it still fits."""
    clock = _Clock()
    cap = RateCap(1000, window_seconds=1.0, clock=clock)
    assert cap.admit(900)
    assert not cap.admit(200)
    assert cap.admit(100)


def test_events_leave_the_window_after_it_rolls_past() -> None:
    """Events admitted more than a window ago no longer count against the cap."""
    clock = _Clock()
    cap = RateCap(1000, window_seconds=1.0, clock=clock)
    assert cap.admit(1000)
    clock.now += 0.5
    assert not cap.admit(1)
    clock.now += 0.5
    assert cap.admit(1000)


def test_a_request_larger_than_the_whole_budget_is_never_admitted() -> None:
    """A batch bigger than rate x window is refused even on an idle project."""
    cap = RateCap(100, window_seconds=1.0, clock=_Clock())
    assert not cap.admit(101)


def test_no_cap_admits_everything() -> None:
    """Without a rate, any volume is admitted."""
    cap = RateCap(None)
    assert all(cap.admit(1_000_000) for _ in range(10))


@pytest.mark.parametrize(("rate", "window"), [(0, 1.0), (-5, 1.0), (10, 0.0)])
def test_cap_refuses_a_careless_configuration(rate: float, window: float) -> None:
    """A non-positive rate or window is refused at construction, not silently ignored."""
    with pytest.raises(ValueError, match="must be positive"):
        RateCap(rate, window_seconds=window)
