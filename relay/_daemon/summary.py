"""The daemon's periodic delivery summary: what was delivered, dead-lettered and retried since
the last one, logged at INFO so that a healthy relay says so (routine drain ticks log at DEBUG).

The drain job adds each pass's :class:`~relay._delivery.results.DrainResult`; the summary job
takes the totals every :data:`SUMMARY_INTERVAL_SECONDS` and the daemon takes the rest as it
stops. Producers report, this observer counts (STYLE 14).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from relay._delivery.results import DrainResult

#: How often a running relay logs its ``delivery_summary`` line.
SUMMARY_INTERVAL_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class DeliverySummary:
    """Rows delivered, dead-lettered (refused, or out of attempts) and scheduled for a retry."""

    delivered: int = 0
    dead: int = 0
    retried: int = 0

    def as_log(self) -> dict[str, int]:
        """The key-value pairs of the log line."""
        return {"delivered": self.delivered, "dead": self.dead, "retried": self.retried}


class SummaryCounter:
    """Thread-safe totals since the last :meth:`take`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = DrainResult()

    def add(self, result: DrainResult) -> None:
        """Count one drain pass."""
        with self._lock:
            self._total += result

    def take(self) -> DeliverySummary:
        """The totals since the last call, and start again from zero."""
        with self._lock:
            total, self._total = self._total, DrainResult()
        return DeliverySummary(
            delivered=total.delivered,
            dead=total.rejected + total.dead_after_max_attempts,
            retried=total.retried,
        )
