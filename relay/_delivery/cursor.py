"""Where the next claim starts reading the due rows: the drainer's claim cursor.

Kept apart from :mod:`relay._delivery.drain` because it is pure book-keeping over a clock
(unit-tested with a fake one, ``tests/unit/test_claim_cursor.py``).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

from relay._store import Claim


class ClaimCursor:
    """Where the next claim starts reading the due rows, shared by a drainer's threads.

    While claims come back full (a backlog), each one starts at the ``next_attempt_at`` of the
    latest row the previous claims took, instead of at the oldest pending index entry: on
    PostgreSQL that head of the index fills with dead entries of rows delivered since the last
    VACUUM, and a claim from the start would walk all of them (``bench/claim_scan.py``: 3,654
    index pages per claim near the end of a 1,000,000-event drain, against a steady 12 from
    the cursor). A row due before the cursor (a
    lease that ran out, a transaction that committed long after it inserted its rows, a row
    another relay held when it was passed over) is not lost, only left for the next claim from
    the start: after any claim that comes back short (the end of the due rows was reached),
    and at least every ``rescan_seconds`` while claims come back full.
    """

    def __init__(
        self, *, rescan_seconds: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._rescan_seconds = rescan_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._due_from: dt.datetime | None = None
        self._rescanned_at = -float("inf")

    def start(self) -> dt.datetime | None:
        """Where the next claim starts; ``None``: from the oldest due row."""
        with self._lock:
            if self._monotonic() - self._rescanned_at >= self._rescan_seconds:
                self._due_from = None
            if self._due_from is None:
                self._rescanned_at = self._monotonic()
            return self._due_from

    def advance(self, claim: Claim, *, full: bool) -> None:
        """Move past ``claim``'s rows when it came back full; else start over next time."""
        with self._lock:
            if not full or claim.last_due is None:
                self._due_from = None
                self._rescanned_at = -float("inf")
            elif self._due_from is None or claim.last_due > self._due_from:
                self._due_from = claim.last_due
