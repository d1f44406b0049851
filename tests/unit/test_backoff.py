"""The retry schedule: 2 s doubling to 60 s, plus 1-5 s of jitter."""

import random

import pytest

from relay._delivery.backoff import (
    RETRY_CAP_SECONDS,
    RETRY_JITTER_MAX_SECONDS,
    RETRY_JITTER_MIN_SECONDS,
    retry_delay,
)


class _FixedJitter(random.Random):
    """A Random whose uniform() always returns one end of the range."""

    def __init__(self, *, high: bool) -> None:
        super().__init__(0)
        self._high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self._high else a


@pytest.mark.parametrize(
    ("attempt", "base"),
    [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 32.0), (6, 60.0), (7, 60.0), (1000, 60.0)],
)
def test_delay_doubles_from_two_seconds_up_to_the_cap(attempt: int, base: float) -> None:
    """Without jitter's spread, the delay is 2 s doubling per attempt, capped at 60 s."""
    assert retry_delay(attempt, rng=_FixedJitter(high=False)) == base + RETRY_JITTER_MIN_SECONDS
    assert retry_delay(attempt, rng=_FixedJitter(high=True)) == base + RETRY_JITTER_MAX_SECONDS


def test_jitter_stays_between_one_and_five_seconds() -> None:
    """Every drawn delay lies within the base plus 1-5 s, and the draws actually vary."""
    rng = random.Random(42)
    delays = [retry_delay(1, rng=rng) for _ in range(2000)]
    assert all(3.0 <= d <= 7.0 for d in delays)
    assert max(delays) - min(delays) > 3.5


def test_capped_delay_never_exceeds_cap_plus_maximum_jitter() -> None:
    """Far past the cap, the delay stays within 61-65 s."""
    rng = random.Random(7)
    for attempt in range(6, 200):
        delay = retry_delay(attempt, rng=rng)
        assert RETRY_CAP_SECONDS + 1.0 <= delay <= RETRY_CAP_SECONDS + 5.0


def test_same_seed_gives_same_schedule() -> None:
    """A seeded generator makes the schedule reproducible."""
    first = [retry_delay(a, rng=random.Random(3)) for a in range(1, 10)]
    second = [retry_delay(a, rng=random.Random(3)) for a in range(1, 10)]
    assert first == second


def test_delay_works_without_a_generator() -> None:
    """Without ``rng`` the module's own generator supplies the jitter."""
    assert 3.0 <= retry_delay(1) <= 7.0


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempt_below_one_is_refused(attempt: int) -> None:
    """Attempts are counted from one; anything lower is a caller bug."""
    with pytest.raises(ValueError, match="at least 1"):
        retry_delay(attempt)
