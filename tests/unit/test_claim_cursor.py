"""``ClaimCursor``: where the next claim starts, driven by a fake monotonic clock.

While claims come back full the cursor moves to the latest ``next_attempt_at`` claimed, never
back; a short claim, or ``rescan_seconds`` of full ones, sends the next claim to the oldest due
row again, so a row due behind the cursor waits at most that long.
"""

from __future__ import annotations

import datetime as dt

from relay._delivery.cursor import ClaimCursor
from relay._store import Claim

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _claim(last_due_seconds: float | None) -> Claim:
    last_due = None if last_due_seconds is None else T0 + dt.timedelta(seconds=last_due_seconds)
    return Claim(token="t", events=[], last_due=last_due, full=True)


def test_a_fresh_cursor_starts_at_the_oldest_due_row() -> None:
    """Before any claim, the start is ``None``: read from the head of the due rows."""
    cursor = ClaimCursor(rescan_seconds=5.0, monotonic=FakeClock())
    assert cursor.start() is None


def test_full_claims_move_the_cursor_forward_only() -> None:
    """A full claim moves the start to its latest due time; an earlier one never moves it back."""
    clock = FakeClock()
    cursor = ClaimCursor(rescan_seconds=5.0, monotonic=clock)
    cursor.start()
    cursor.advance(_claim(10), full=True)
    assert cursor.start() == T0 + dt.timedelta(seconds=10)
    cursor.advance(_claim(4), full=True)
    assert cursor.start() == T0 + dt.timedelta(seconds=10)
    cursor.advance(_claim(20), full=True)
    assert cursor.start() == T0 + dt.timedelta(seconds=20)


def test_a_short_claim_sends_the_next_one_back_to_the_start() -> None:
    """A claim that reached the end of the due rows resets the cursor."""
    cursor = ClaimCursor(rescan_seconds=5.0, monotonic=FakeClock())
    cursor.start()
    cursor.advance(_claim(10), full=True)
    cursor.advance(_claim(12), full=False)
    assert cursor.start() is None


def test_a_full_claim_that_took_nothing_resets_the_cursor() -> None:
    """A full claim without a due time (only too-large rows, say) gives no place to resume."""
    cursor = ClaimCursor(rescan_seconds=5.0, monotonic=FakeClock())
    cursor.start()
    cursor.advance(_claim(10), full=True)
    cursor.advance(_claim(None), full=True)
    assert cursor.start() is None


def test_full_claims_rescan_from_the_start_every_rescan_seconds() -> None:
    """While every claim is full, the start goes back to the head once ``rescan_seconds`` pass."""
    clock = FakeClock()
    cursor = ClaimCursor(rescan_seconds=5.0, monotonic=clock)
    assert cursor.start() is None  # a rescan now
    cursor.advance(_claim(10), full=True)
    clock.now += 4.9
    assert cursor.start() == T0 + dt.timedelta(seconds=10)
    cursor.advance(_claim(11), full=True)
    clock.now += 0.1  # 5.0 s since the last rescan
    assert cursor.start() is None
    cursor.advance(_claim(12), full=True)
    clock.now += 4.9  # the rescan clock restarted at the last start from the head
    assert cursor.start() == T0 + dt.timedelta(seconds=12)


def test_after_a_short_claim_the_rescan_clock_restarts_with_the_next_start() -> None:
    """A reset cursor counts ``rescan_seconds`` from the next claim from the head."""
    clock = FakeClock()
    cursor = ClaimCursor(rescan_seconds=5.0, monotonic=clock)
    cursor.start()
    cursor.advance(_claim(10), full=False)
    clock.now += 100.0
    assert cursor.start() is None
    cursor.advance(_claim(30), full=True)
    clock.now += 4.0
    assert cursor.start() == T0 + dt.timedelta(seconds=30)
