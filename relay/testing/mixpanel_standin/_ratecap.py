"""Mixpanel's per-project rate limit, and the round trip a real ``/import`` takes.

Mixpanel caps each project at "~30k events per second, measured on a rolling 1 minute basis"
and answers 429 beyond it (``mixpanel-docs/rate-limits.mdx``, ``import-events.mdx``). A
:class:`RateCap` admits a request's events while the events admitted in the last
``window_seconds`` stay within ``events_per_second * window_seconds``; a refused request is not
counted (Mixpanel ingested nothing of it). A shorter window than Mixpanel's minute makes the
cap bite at a benchmark's scale: with a one-second window a burst cannot borrow from the
quiet seconds before it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

#: Mixpanel's window: "measured on a rolling 1 minute basis".
DEFAULT_RATE_WINDOW_SECONDS = 60.0


class RateCap:
    """A rolling-window cap on events per second; thread-safe, ``None`` admits everything.

    A request larger than the whole window's budget is never admitted (as Mixpanel would
    refuse a project whose every request is over its limit).
    """

    def __init__(
        self,
        events_per_second: float | None,
        *,
        window_seconds: float = DEFAULT_RATE_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if events_per_second is not None and events_per_second <= 0:
            raise ValueError("events_per_second must be positive")
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        self.events_per_second = events_per_second
        self.window_seconds = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._admitted: deque[tuple[float, int]] = deque()
        self._total = 0

    def admit(self, events: int) -> bool:
        """Count ``events`` in the window and return ``True``, or ``False`` (429) over the cap."""
        if self.events_per_second is None:
            return True
        budget = self.events_per_second * self.window_seconds
        with self._lock:
            now = self._clock()
            horizon = now - self.window_seconds
            admitted = self._admitted
            while admitted and admitted[0][0] <= horizon:
                self._total -= admitted.popleft()[1]
            if self._total + events > budget:
                return False
            admitted.append((now, events))
            self._total += events
            return True

    def clear(self) -> None:
        """Forget what was admitted (a fresh window)."""
        with self._lock:
            self._admitted.clear()
            self._total = 0
