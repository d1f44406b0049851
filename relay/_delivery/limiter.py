"""How many ``/import`` requests a relay keeps in flight: an AIMD limit, paced, found from 429s.

Mixpanel's advice for a backfill is to "send data as quickly as possible with concurrent
clients until the server returns 429" and back off on it (``import-events.mdx``). Its limit is a
*rate* (events per second per project, on a rolling window), so the limit here is the
average number of requests in flight, ``limit`` (a float), and sends are paced one
``latency / limit`` apart, so that a limit of 1.5 means "one and a half round trips' worth of
requests", not "one, then two".

The algorithm is Netflix concurrency-limits' ``AIMDLimit`` (additive increase while answers
come back accepted, multiplicative decrease on a drop), chosen over its gradient limiters
(``Gradient2Limit``, ``VegasLimit``) because Mixpanel's limit is not a queue that shows in the
round-trip time: its answers take as long when the project is over the cap as when it is not,
so a latency gradient has nothing to read, while the 429 is an explicit, documented drop
signal. Three changes fit it to a rate cap:

* **slow start**: until the first drop the limit grows by :data:`SLOW_START_INCREASE` per
  accepted answer (half a request: 1.5 times a round trip, gentler than TCP's doubling, so
  that fewer requests of the round trip that overshoots meet a 429), and a relay reaches the
  cap in a few round trips;
* **leaving slow start at what was accepted**: the first 429 sets the limit to
  :data:`DECREASE_RATIO` of the rate Mixpanel *accepted* over the last :data:`MEASURE_SECONDS`
  (converted back into requests in flight), not to a fraction of the limit: that rate is the
  project's cap, measured, however far slow start overshot, and it is remembered as the
  maximum, so the climb from there is the careful one;
* **a fast climb, a plateau, then a probe** (as TCP CUBIC's around its last maximum): each
  later 429 remembers the limit it happened at and cuts by :data:`BACKOFF_RATIO`; the limit
  then grows by :data:`FAST_INCREASE_RATIO` per accepted answer back to
  :data:`NEAR_MAX_RATIO` of that maximum, by :data:`PROBE_INCREASE_RATIO` from there, and
  holds at :data:`PLATEAU_RATIO` of it until :data:`PLATEAU_SECONDS` after the cut; only then
  does it probe beyond. A cap that does not move is thus met about twice a minute, not every
  ten seconds, and a cap that was raised is still found. Leaving slow start holds the same
  way, under the rate it measured: with the round trip measured right, that rate reads the
  cap within a few per cent (1.50-1.55 requests for a nominal 1.59 in a dozen ``rate_cap.py``
  runs), and the careful climb from it met the cap again within ten seconds.

Further drops of the same burst cut nothing more: a 429 for a request sent before the last cut
(as TCP's recovery period), or one that comes within a round trip of it. The round-trip estimate
starts at the first answer's time (as RFC 6298's first measurement does), not at a guess moved
by an average: leaving slow start converts the accepted rate into requests in flight with it,
and a guess still far under the real round trip would cut the limit to a fraction of the cap.

A batch is claimed ahead only with a reservation (:meth:`AdaptiveLimiter.reserve`): at most
:data:`CLAIM_AHEAD` batches (and never more than ``ceil(limit)``) wait claimed while others are
in flight, so the rows a relay holds in memory stay bounded whatever the number of threads.

The limit never exceeds ``ceiling`` (``RELAY_MAX_IN_FLIGHT``) and never falls below
:data:`MIN_LIMIT` (one request in flight probes whether the throttle lifted). Thread-safe;
the clock is injectable so tests drive it without sleeping.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from relay._config import RelaySettings

#: Batches claimed and encoded ahead, waiting for their turn to be sent.
CLAIM_AHEAD = 2
#: In slow start each accepted answer adds this many requests in flight (x1.5 a round trip).
SLOW_START_INCREASE = 0.5
#: Below this the limit never falls: one request at a time still probes Mixpanel.
MIN_LIMIT = 1.0
#: The first 429 sets the limit to this share of the rate Mixpanel accepted just before.
DECREASE_RATIO = 0.95
#: Each later 429 multiplies the limit by this.
BACKOFF_RATIO = 0.9
#: On a 5xx or timeout (no measure of the cap), the limit is multiplied by this.
FAILURE_RATIO = 0.7
#: After slow start, each accepted answer raises the limit by this share of itself while it
#: is below :data:`NEAR_MAX_RATIO` of the limit of the last 429...
FAST_INCREASE_RATIO = 0.01
NEAR_MAX_RATIO = 0.95
#: ...and by this share beyond it...
PROBE_INCREASE_RATIO = 0.001
#: ...up to this share of that limit, until :data:`PLATEAU_SECONDS` after the last cut; past
#: them it probes beyond the last maximum (the cap may have been raised, or another relay
#: sharing the project stopped).
PLATEAU_RATIO = 0.98
PLATEAU_SECONDS = 30.0
#: The accepted rate slow start ends at is measured over this many seconds at least.
MEASURE_SECONDS = 1.0
#: Round-trip estimate before the first answer (seconds); replaced by a moving average.
INITIAL_LATENCY_SECONDS = 0.1
_LATENCY_WEIGHT = 0.2


class Reservation:
    """The right to claim one batch ahead; :meth:`AdaptiveLimiter.acquire` uses it up.

    ``close()`` gives back a reservation that was never used (nothing was claimed, or the
    batch went back unsent).
    """

    def __init__(self, limiter: AdaptiveLimiter) -> None:
        self._limiter = limiter
        self.used = False

    def close(self) -> None:
        """Give the reservation back unless it was used."""
        if not self.used:
            self.used = True
            self._limiter._unreserve()


@dataclass(frozen=True, slots=True)
class LimiterState:
    """A snapshot for metrics and ``relay stats``."""

    limit: float
    in_flight: int
    waiting: int
    ceiling: int
    latency_seconds: float
    accepted_per_second: float
    throttled: int
    slow_start: bool


class AdaptiveLimiter:
    """The paced AIMD limit on requests in flight; see the module's docstring."""

    def __init__(
        self,
        ceiling: int,
        *,
        initial_limit: float = MIN_LIMIT,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if ceiling < 1:
            raise ValueError("ceiling must be at least 1")
        self.ceiling = ceiling
        self._monotonic = monotonic
        self._changed = threading.Condition()
        self._limit = min(float(ceiling), max(MIN_LIMIT, initial_limit))
        self._in_flight = 0
        self._reserved = 0
        self._next_send = -math.inf
        self._latency = INITIAL_LATENCY_SECONDS
        self._latency_measured = False
        self._last_cut_at = -math.inf
        self._events_per_request = 0.0
        self._accepted: deque[tuple[float, int]] = deque()
        self._slow_start = True
        self._last_max = 0.0
        self._plateau_until = -math.inf
        self._ignore_drops_until = -math.inf
        self._halted_until = -math.inf
        self._throttled = 0
        self._first_send: float | None = None

    # --- sending ----------------------------------------------------------------------------

    def reserve(
        self, *, timeout: float, cancelled: Callable[[], bool] | None = None
    ) -> Reservation | None:
        """Wait until fewer than ``min(CLAIM_AHEAD, ceil(limit))`` batches wait claimed.

        ``None`` on timeout or when cancelled. A reservation lasts until its batch gets a slot
        (:meth:`acquire`) or it is closed, so batches waiting for a slot count against it.
        """
        with self._changed:
            give_up = self._monotonic() + timeout
            while self._reserved >= min(CLAIM_AHEAD, math.ceil(self._limit)):
                now = self._monotonic()
                if now >= give_up or (cancelled is not None and cancelled()):
                    return None
                self._changed.wait(min(give_up - now, 0.25))
            self._reserved += 1
            return Reservation(self)

    def _unreserve(self) -> None:
        with self._changed:
            self._reserved -= 1
            self._changed.notify_all()

    def acquire(
        self,
        *,
        timeout: float,
        cancelled: Callable[[], bool] | None = None,
        reservation: Reservation | None = None,
    ) -> bool:
        """Wait for a slot and the pacing; ``False`` if halted, cancelled or out of ``timeout``.

        On ``True`` the caller sends one request and then calls exactly one of
        :meth:`accepted`, :meth:`throttled`, :meth:`failed` or :meth:`abandoned`; the
        ``reservation`` is then used up (on ``False`` the caller closes it).
        """
        with self._changed:
            give_up = self._monotonic() + timeout
            while True:
                now = self._monotonic()
                if now < self._halted_until or (cancelled is not None and cancelled()):
                    return False
                if self._in_flight < math.ceil(self._limit) and now >= self._next_send:
                    self._in_flight += 1
                    if reservation is not None and not reservation.used:
                        reservation.used = True
                        self._reserved -= 1
                        self._changed.notify_all()
                    if self._first_send is None:
                        self._first_send = now
                    self._next_send = now + self._latency / self._limit
                    return True
                if now >= give_up:
                    return False
                wake = give_up if self._in_flight >= math.ceil(self._limit) else self._next_send
                # Capped so that a cancel or a halt set elsewhere is seen within a moment.
                self._changed.wait(min(max(wake - now, 0.0), 0.25))

    def accepted(self, *, events: int, seconds: float) -> None:
        """Mixpanel accepted a request of ``events`` that took ``seconds``: grow."""
        with self._changed:
            now = self._monotonic()
            self._release(seconds)
            self._accepted.append((now, events))
            self._trim(now)
            self._events_per_request = max(self._events_per_request, float(events))
            if self._slow_start:
                self._limit += SLOW_START_INCREASE
            elif self._limit < NEAR_MAX_RATIO * self._last_max:
                self._limit += FAST_INCREASE_RATIO * self._limit
            else:
                grown = self._limit * (1 + PROBE_INCREASE_RATIO)
                if now < self._plateau_until:
                    grown = min(grown, max(self._limit, PLATEAU_RATIO * self._last_max))
                self._limit = grown
            self._limit = min(self._limit, float(self.ceiling))
            self._changed.notify_all()

    def throttled(self, *, seconds: float) -> None:
        """Mixpanel answered 429 to a request that took ``seconds``: fall to just under the rate
        it accepted, unless the request left before the last cut (the same burst's answer)."""
        with self._changed:
            sent_at = self._monotonic() - seconds
            self._release(seconds)
            self._throttled += 1
            if sent_at >= self._last_cut_at:
                self._cut()
            self._changed.notify_all()

    def slow_down(self) -> None:
        """Another relay of the database met a 429: fall as if this one had."""
        with self._changed:
            self._cut()
            self._changed.notify_all()

    def failed(self, *, seconds: float) -> None:
        """A 5xx, timeout or cut answer: shrink by :data:`FAILURE_RATIO` (once a round trip)."""
        with self._changed:
            now = self._monotonic()
            self._release(seconds)
            if now >= self._ignore_drops_until:
                self._slow_start = False
                self._limit = max(MIN_LIMIT, FAILURE_RATIO * self._limit)
                self._ignore_drops_until = now + self._latency
            self._changed.notify_all()

    def abandoned(self) -> None:
        """The slot was taken but no request answered that says anything of Mixpanel's limit."""
        with self._changed:
            self._in_flight -= 1
            self._changed.notify_all()

    def halt(self, seconds: float) -> None:
        """No request may start for ``seconds`` (the relays' shared backoff); waiters give up.

        Afterwards the limit starts again from one request, in slow start: the project's
        capacity may have changed meanwhile, and a slow climb would waste the first seconds
        after the throttle lifts.
        """
        with self._changed:
            self._halted_until = max(self._halted_until, self._monotonic() + seconds)
            self._restart()
            self._changed.notify_all()

    def resume(self) -> None:
        """The shared throttle was lifted before its backoff ended (a probe got through): end
        the halt at once; the limit climbs again from one request, in slow start."""
        with self._changed:
            if self._halted_until > self._monotonic():
                self._halted_until = -math.inf
                self._restart()
                self._ignore_drops_until = -math.inf
                self._changed.notify_all()

    def state(self) -> LimiterState:
        """The current limit, requests in flight and measures."""
        with self._changed:
            now = self._monotonic()
            self._trim(now)
            return LimiterState(
                limit=self._limit,
                in_flight=self._in_flight,
                waiting=self._reserved,
                ceiling=self.ceiling,
                latency_seconds=self._latency,
                accepted_per_second=self._accepted_rate(now),
                throttled=self._throttled,
                slow_start=self._slow_start,
            )

    # --- internals (the caller holds the lock) ------------------------------------------------

    def _restart(self) -> None:
        """From one request, in slow start, measuring the accepted rate and the round trip
        afresh: the rate that leaving slow start reads must span only the sends since the
        restart (a window that reaches back into the halt would count its silence and cut the
        limit far under the cap), and it is converted into requests in flight with the round
        trip of full batches. During a halt the only answers are probes of one event and 429s,
        quicker than a batch of 2,000: an average still weighed by them read a 10-minute
        throttle's round trip as 0.27 s for 0.32 s, and slow start then ended at 80 % of the
        cap, climbing from there 0.1 % an answer.
        """
        self._limit = MIN_LIMIT
        self._slow_start = True
        self._plateau_until = -math.inf
        self._accepted.clear()
        self._first_send = None
        self._latency_measured = False

    def _cut(self) -> None:
        now = self._monotonic()
        if now < self._ignore_drops_until:
            return
        if self._slow_start:
            self._slow_start = False
            # The accepted rate is the project's cap, measured: the climb from just under it
            # is the careful one. (Remembering slow start's overshoot as the maximum instead
            # made the climb fast up to it, straight into the cap's next 429s; their rows then
            # wait out the backoff, seconds of an empty pipe at the end of a backlog.)
            measured = self._accepted_limit(now)
            self._limit = max(MIN_LIMIT, DECREASE_RATIO * measured)
            self._last_max = max(measured, self._limit)
        else:
            self._last_max = self._limit
            self._limit = max(MIN_LIMIT, BACKOFF_RATIO * self._limit)
        self._plateau_until = now + PLATEAU_SECONDS
        self._ignore_drops_until = now + self._latency
        self._last_cut_at = now

    def _release(self, seconds: float) -> None:
        self._in_flight -= 1
        measured = max(seconds, 0.001)
        if self._latency_measured:
            self._latency += _LATENCY_WEIGHT * (measured - self._latency)
        else:
            self._latency, self._latency_measured = measured, True

    def _window(self) -> float:
        return max(MEASURE_SECONDS, 3 * self._latency)

    def _trim(self, now: float) -> None:
        horizon = now - self._window()
        while self._accepted and self._accepted[0][0] <= horizon:
            self._accepted.popleft()

    def _accepted_rate(self, now: float) -> float:
        """Events per second Mixpanel accepted over the last window."""
        self._trim(now)
        if not self._accepted or self._first_send is None:
            return 0.0
        # Early on, the window reaches back before the first send: measure since then.
        span = max(min(self._window(), now - self._first_send), self._latency)
        return sum(events for _, events in self._accepted) / span

    def _accepted_limit(self, now: float) -> float:
        """The accepted rate as requests in flight: rate x round trip / events per request."""
        if not self._events_per_request:
            return MIN_LIMIT
        return self._accepted_rate(now) * self._latency / self._events_per_request


def limiter_for(settings: RelaySettings) -> AdaptiveLimiter | None:
    """The limiter ``RELAY_MAX_IN_FLIGHT`` asks for; ``None`` when it is 0 (turned off)."""
    return AdaptiveLimiter(settings.max_in_flight) if settings.max_in_flight else None
