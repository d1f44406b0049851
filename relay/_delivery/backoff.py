"""The retry schedule for retryable delivery failures: pure arithmetic, no I/O, no clock.

Mixpanel's guidance for 429 and 502/503 answers is "a backoff of 2s and doubling backoff until
60s, with 1-5s of jitter"; the relay applies the same schedule to timeouts and connection errors.
"""

from __future__ import annotations

import random

#: Delay before the second attempt of a row, before jitter.
RETRY_BASE_SECONDS = 2.0
#: The doubling stops here, before jitter.
RETRY_CAP_SECONDS = 60.0
#: Jitter added to every delay, drawn uniformly from this range, so relays that failed
#: together do not come back together.
RETRY_JITTER_MIN_SECONDS = 1.0
RETRY_JITTER_MAX_SECONDS = 5.0

# 2 s * 2**5 = 64 s is already past the cap; larger exponents only risk float overflow.
_MAX_DOUBLINGS = 5

# Jitter spreads load; it is not a secret, so a plain PRNG is the right tool.
_DEFAULT_RNG = random.Random()  # noqa: S311


def retry_delay(attempt: int, *, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first attempt).

    ``2 * 2**(attempt - 1)`` capped at 60, plus 1-5 s of uniform jitter: 3-7 s after the first
    attempt, 61-65 s from the sixth on. Pass ``rng`` to make the jitter reproducible.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be at least 1, got {attempt}")
    doublings = min(attempt - 1, _MAX_DOUBLINGS)
    base = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2.0**doublings)
    jitter = (rng or _DEFAULT_RNG).uniform(RETRY_JITTER_MIN_SECONDS, RETRY_JITTER_MAX_SECONDS)
    return base + jitter
