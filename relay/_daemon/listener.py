"""The daemon's PostgreSQL ``LISTEN`` connection: wakes the drain when ``track()`` commits.

``track()`` sends a ``NOTIFY`` on ``settings.notify_channel`` at commit; a dedicated psycopg
connection (autocommit, outside SQLAlchemy's pool) listens and calls ``wake`` for each. It
reconnects with doubling delays after a failure, and wakes the drain once on every (re)connect,
since rows committed while nobody listened would otherwise wait for the next poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy.engine import Engine

logger = structlog.get_logger("relay.daemon")

#: How long one wait for notifications lasts before the listener checks for shutdown.
LISTEN_WAIT_SECONDS = 0.5
#: Reconnect delays of the LISTEN connection after it fails, doubling up to the maximum.
LISTEN_RECONNECT_MIN_SECONDS = 0.5
LISTEN_RECONNECT_MAX_SECONDS = 30.0
#: A LISTEN connection attempt to an unreachable server gives up after this long.
LISTEN_CONNECT_TIMEOUT_SECONDS = 10
#: How long shutdown waits for the listener thread.
LISTEN_JOIN_SECONDS = LISTEN_CONNECT_TIMEOUT_SECONDS + LISTEN_WAIT_SECONDS


class NotifyListener:
    """``LISTEN`` on ``channel`` and call ``wake`` for every notification until ``stop``."""

    def __init__(
        self,
        engine: Engine,
        *,
        channel: str,
        wake: Callable[[], None],
        stop: threading.Event,
    ) -> None:
        self._engine = engine
        self._channel = channel
        self._wake = wake
        self._stop = stop

    def run(self) -> None:
        """Listen, reconnecting after failures, until ``stop`` is set (a thread's target)."""
        import psycopg  # only the PostgreSQL extra ships it  # noqa: PLC0415
        from psycopg import sql  # noqa: PLC0415

        conninfo = libpq_conninfo(self._engine)
        delay = LISTEN_RECONNECT_MIN_SECONDS
        channel = self._channel
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    conninfo, autocommit=True, connect_timeout=LISTEN_CONNECT_TIMEOUT_SECONDS
                ) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    logger.info("listening", channel=channel)
                    delay = LISTEN_RECONNECT_MIN_SECONDS
                    # Rows committed while nobody listened would wait for the next poll.
                    self._wake()
                    while not self._stop.is_set():
                        for _notification in conn.notifies(timeout=LISTEN_WAIT_SECONDS):
                            self._wake()
            except psycopg.Error:
                logger.warning("listen_connection_failed", retry_in_seconds=delay, exc_info=True)
                self._stop.wait(delay)
                delay = min(delay * 2, LISTEN_RECONNECT_MAX_SECONDS)


def libpq_conninfo(engine: Engine) -> str:
    """The engine's URL as a libpq connection string for a dedicated psycopg connection."""
    from psycopg.conninfo import make_conninfo  # noqa: PLC0415

    url = engine.url
    params: dict[str, Any] = url.translate_connect_args(username="user", database="dbname")
    for key, value in url.query.items():
        params[key] = value if isinstance(value, str) else value[-1]
    return make_conninfo("", **params)
