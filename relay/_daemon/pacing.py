"""What the daemon makes of each drain pass: when the next one runs, and what metrics say.

The drainer emits (:class:`relay._delivery.drain.DrainObserver`) and returns a
:class:`~relay._delivery.drain.DrainResult`; everything the daemon concludes from them lives
here, in one place: :class:`MetricsFeed` turns the drainer's events into metrics and tick
health, :class:`DrainPacer` turns a pass's result into the delay before the next pass (adaptive
polling, the pause after an auth failure, the relay-wide backoff while Mixpanel is failing).
Both take their clocks as arguments, so they are unit-tested without a database or a server.
There is one of each per destination (one Mixpanel project): the pause after a refused secret
or while a project fails holds back that destination's drain only.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence

import structlog

from relay._config import RelaySettings
from relay._daemon.metrics import RelayMetrics
from relay._delivery.backoff import retry_delay
from relay._delivery.results import DrainResult
from relay._mixpanel.answers import RequestStat
from relay._tables import DEFAULT_DESTINATION

logger = structlog.get_logger("relay.daemon")


class MetricsFeed:
    """A :class:`~relay._delivery.drain.DrainObserver` that feeds a :class:`RelayMetrics`.

    Every batch counts its rows; a batch that ended without an auth error is a successful
    tick (a long backlog drain keeps ``/healthz`` fresh batch by batch).
    """

    def __init__(self, metrics: RelayMetrics, *, destination: str = DEFAULT_DESTINATION) -> None:
        self._metrics = metrics
        self._destination = destination

    def requests_sent(self, requests: Sequence[RequestStat]) -> None:
        """Record each request's duration by status."""
        self._metrics.observe_requests(requests, destination=self._destination)

    def batch_done(self, result: DrainResult) -> None:
        """Count the batch's rows; mark the tick successful unless Mixpanel refused the auth."""
        self._metrics.observe_drain(result, destination=self._destination)
        if not result.auth_failing:
            self._metrics.tick_succeeded(destination=self._destination)


class DrainPacer:
    """Decides the seconds until the next drain pass, and reports auth health to metrics.

    ``monotonic`` times the pauses (after an auth failure, while Mixpanel is failing); during
    one, :meth:`pause_left` is positive and no pass may run, not even on a wake-up. ``rng``
    draws the backoff's jitter. Called from one thread at a time (the drain job).
    """

    def __init__(
        self,
        settings: RelaySettings,
        metrics: RelayMetrics,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        destination: str = DEFAULT_DESTINATION,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._destination = destination
        self._monotonic = monotonic
        # Jitter for the relay-wide backoff; not a secret.
        self._rng = rng or random.Random()  # noqa: S311
        self._lock = threading.Lock()
        self._idle_delay = settings.poll_min_seconds
        self._paused_until = -float("inf")  # monotonic; no drain pass before it
        self._auth_failing = False
        self._failing_passes = 0

    def pause_left(self) -> float:
        """Seconds until a drain pass may run again (0 when none is paused)."""
        with self._lock:
            return max(0.0, self._paused_until - self._monotonic())

    def pause(self, seconds: float) -> None:
        """No drain pass of this destination for ``seconds`` (its check before the first
        delivery failed)."""
        self._pause(seconds)

    def _pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = self._monotonic() + seconds

    def failed(self, error: BaseException) -> float:
        """A pass raised ``error`` (the database failed): report it, wait ``poll_max_seconds``."""
        self._metrics.tick_failed(error, destination=self._destination)
        return self._settings.poll_max_seconds

    def after_drain(self, result: DrainResult) -> float:
        """Book-keep one drain pass; returns the seconds until the next one."""
        if result.auth_error is not None:
            pause = self._settings.auth_failure_pause_seconds
            self._pause(pause)
            self._auth_failing = True
            self._metrics.set_auth_error(result.auth_error, destination=self._destination)
            logger.critical(
                "mixpanel_auth_failed",
                destination=self._destination,
                error=result.auth_error,
                paused_seconds=pause,
                hint="check the service account (role, expiry), project_id and region",
            )
            return pause
        if result.claimed and self._auth_failing:
            self._auth_failing = False
            self._metrics.set_auth_error(None, destination=self._destination)
            logger.warning("mixpanel_auth_recovered", destination=self._destination)
        if result.throttle_seconds > 0:
            # Mixpanel's rate limit, shared by every relay of the database: wait out the
            # backoff booked there (the rows kept their attempts).
            self._pause(result.throttle_seconds)
            logger.info(
                "mixpanel_throttled_waiting",
                destination=self._destination,
                seconds=round(result.throttle_seconds, 1),
            )
            return result.throttle_seconds
        if result.mixpanel_failing:
            # Every request failed transiently: back off as a whole, as Mixpanel asks for
            # 429 and 5xx, instead of trying the next rows of the backlog at once.
            self._failing_passes += 1
            pause = retry_delay(self._failing_passes, rng=self._rng)
            self._pause(pause)
            logger.warning(
                "mixpanel_failing_backing_off",
                destination=self._destination,
                seconds=round(pause, 1),
                failing_passes=self._failing_passes,
            )
            return pause
        if result.claimed:
            self._failing_passes = 0
            self._idle_delay = self._settings.poll_min_seconds
            return self._settings.poll_min_seconds
        delay = self._idle_delay
        self._idle_delay = min(self._idle_delay * 2, self._settings.poll_max_seconds)
        return delay
