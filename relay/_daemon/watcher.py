"""The daemon's wake-up on PostgreSQL: a cheap look for a newly committed outbox row.

``track()`` sends nothing but its INSERT: no ``NOTIFY``, which would make every host commit on
the server wait for PostgreSQL's global notify lock. Instead a dedicated connection asks for
the newest visible row id every ``wake_probe_seconds`` (an index read at the end of the
primary key) and wakes the drain when it changed: a commit reaches the drain within one
probe interval. A row committed out of id order (its transaction ran longer than a later
one's) is found by the drain's own adaptive polling. Each probe is one statement in
autocommit mode, so it needs no session state and works through a transaction-pooling
PgBouncer. After a failure the connection is replaced with doubling delays; the drain is
woken once on every (re)connect, since rows committed meanwhile were not watched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine

from relay._errors import StoreError
from relay._store import newest_row_id

logger = structlog.get_logger("relay.daemon")

#: Reconnect delays of the watching connection after it fails, doubling up to the maximum.
WATCH_RECONNECT_MIN_SECONDS = 0.5
WATCH_RECONNECT_MAX_SECONDS = 30.0
#: How long shutdown waits for the watcher thread (a probe in flight, or a connect).
WATCH_JOIN_SECONDS = 15.0


class OutboxWatcher:
    """Call ``wake`` whenever the newest outbox row id changes, looking every ``interval``."""

    def __init__(
        self,
        engine: Engine,
        *,
        interval: float,
        wake: Callable[[], None],
        stop: threading.Event,
    ) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._interval = interval
        self._wake = wake
        self._stop = stop

    def run(self) -> None:
        """Watch, reconnecting after failures, until ``stop`` is set (a thread's target)."""
        delay = WATCH_RECONNECT_MIN_SECONDS
        while not self._stop.is_set():
            try:
                with self._engine.connect() as conn:
                    newest = newest_row_id(conn)
                    logger.info("watching", interval_seconds=self._interval)
                    delay = WATCH_RECONNECT_MIN_SECONDS
                    # Rows committed while nobody watched would wait for the next poll.
                    self._wake()
                    while not self._stop.wait(self._interval):
                        seen = newest_row_id(conn)
                        if seen != newest:
                            newest = seen
                            self._wake()
            except (StoreError, sa.exc.SQLAlchemyError, OSError) as exc:
                logger.warning(
                    "watch_connection_failed",
                    error_type=type(exc).__name__,
                    retry_in_seconds=delay,
                    exc_info=True,
                )
                self._stop.wait(delay)
                delay = min(delay * 2, WATCH_RECONNECT_MAX_SECONDS)
