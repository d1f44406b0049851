"""The drainer's side of Mixpanel's rate limit: a 429 slows every relay, and no row pays for it.

A 429 says the *project* is over its rate limit; nothing is wrong with the rows. So their
attempt is given back and they stay pending (the drainer hands them back), and the relays
slow down instead: the throttle is booked in the database (:mod:`relay._store.throttle`) so
that every relay of the database sees it at its next claim, with Mixpanel's documented backoff
("starting with a backoff of 2s and doubling backoff until 60s, with 1-5s of jitter",
``import-events.mdx``): level 1 (a first 429) lowers each relay's :class:`AdaptiveLimiter`;
a 429 after the backoff ended raises the level, and from level 2 no relay claims until the
backoff ends. The first delivery after the end lifts the throttle.

**Probes.** While the backoff pauses claims, each relay sends one *probe* now and then: a
request of :data:`PROBE_EVENTS` event, at most once per Mixpanel's first backoff step
(:func:`probe_interval`: 2 s plus 1-5 s of jitter, never doubling). An accepted probe lifts the
throttle for every relay at once, so delivery resumes within seconds of Mixpanel lifting its
limit instead of at the end of a backoff that has grown to a minute; a throttled probe changes
nothing (its row keeps its attempt, the level does not rise). Mixpanel's limit is on events
(~30,000/s, or 2 GB a minute, per project, on a rolling minute): one event every few seconds
per relay is a few millionths of it, so the probes cannot keep the project over its limit,
while the documented backoff still governs every full batch.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
import socket
import threading

import structlog
from sqlalchemy.engine import Connection, Engine

from relay import _store as store
from relay._delivery.backoff import retry_delay
from relay._store.throttle import (
    PAUSING_LEVEL,
    PauseRows,
    Throttle,
    lift_throttle,
    read_throttle,
    record_throttle,
)
from relay._tables import DEFAULT_DESTINATION

logger = structlog.get_logger("relay.drain")


#: Events in a probe request.
PROBE_EVENTS = 1


def probe_interval(rng: random.Random | None = None) -> float:
    """Seconds between one relay's probes: Mixpanel's first backoff step, 2 s + 1-5 s jitter."""
    return retry_delay(1, rng=rng)


def throttled_rows_due(
    throttle: Throttle, *, now: dt.datetime, rng: random.Random | None = None
) -> dt.datetime:
    """When the rows of a request answered 429 at ``now`` may go again, ``throttle`` in force.

    At the first level, the throttle's end: its backoff is the rows' (Mixpanel's first step,
    2 s plus 1-5 s of jitter). From :data:`PAUSING_LEVEL` on, the backoff (up to 65 s) holds
    every relay's claims, so the rows need not wait it out themselves: they are due after
    Mixpanel's first step, still unclaimed while the pause lasts, and go with the rest as soon
    as a probe lifts it. (Due at the backoff's end, the rows of the last 429s of a 10-minute
    throttle were delivered up to 46 s after every other row.)
    """
    if throttle.level < PAUSING_LEVEL:
        return throttle.until
    return min(throttle.until, now + dt.timedelta(seconds=retry_delay(1, rng=rng)))


def relay_actor() -> str:
    """Who booked a throttle: this host and process (no secret, no personal data)."""
    return f"relay@{socket.gethostname()}:{os.getpid()}"[:255]


class ThrottleGate:
    """This relay's view of ``destination``'s shared throttle; thread-safe.

    Mixpanel's rate limit is per project: each destination has its own throttle row
    (:func:`relay._store.throttle.throttle_scope`), so a 429 from one project never slows
    the delivery to another.

    :meth:`check` says when a throttle is new to this relay (another relay's 429, read at a
    claim), so the drainer can slow its limiter too.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        rng: random.Random | None = None,
        actor: str | None = None,
        destination: str = DEFAULT_DESTINATION,
    ) -> None:
        self._engine = engine
        self._destination = destination
        self._rng = rng
        self._actor = actor or relay_actor()
        self._lock = threading.Lock()
        self._known: Throttle | None = None
        # When (the drainer's monotonic clock) this relay learned of ``_known``: a request sent
        # after it and accepted shows the project takes the slowed-down rate (see delivered()).
        self._known_since = math.inf
        self._next_probe = -math.inf

    def take_probe(self, monotonic: float) -> float:
        """0 when this relay may probe now (the next probe is then scheduled), else the wait."""
        with self._lock:
            wait = self._next_probe - monotonic
            if wait > 0:
                return wait
            self._next_probe = monotonic + probe_interval(self._rng)
            return 0.0

    def probed(self, monotonic: float) -> None:
        """A request just met the 429 that pauses claims: the next probe is an interval away."""
        with self._lock:
            self._next_probe = max(self._next_probe, monotonic + probe_interval(self._rng))

    def probe_wait(self, monotonic: float) -> float:
        """Seconds until this relay's next probe (0: due)."""
        with self._lock:
            return max(0.0, self._next_probe - monotonic)

    def probe_accepted(self, throttle: Throttle, *, now: dt.datetime) -> bool:
        """A probe got through during ``throttle``'s backoff: lift it for every relay.

        A backoff booked meanwhile (ending after ``throttle``'s) survives; ``True`` if lifted.
        """
        with store.transaction(self._engine, write=True, durable=False) as conn:
            lifted = lift_throttle(
                conn, now=max(now, throttle.until), destination=self._destination
            )
        with self._lock:
            if self._known == throttle:
                self._known = None
        if lifted:
            logger.warning(
                "mixpanel_rate_limit_lifted",
                destination=self._destination,
                level=throttle.level,
                by="probe",
            )
        return lifted

    @property
    def known(self) -> Throttle | None:
        """The throttle as last read or booked by this relay, ``None`` if none."""
        with self._lock:
            return self._known

    def check(
        self,
        conn: Connection,
        *,
        pause_rows: PauseRows | None = None,
        monotonic: float = math.inf,
    ) -> tuple[Throttle | None, bool]:
        """Read the throttle in the claim's transaction: (it, whether it is new to this relay).

        From ``pause_rows`` when the transaction has read ``relay_pause`` already. ``monotonic``:
        the drainer's clock now, remembered as when this relay learned of a new throttle.
        """
        throttle = (
            pause_rows.throttle(self._destination)
            if pause_rows is not None
            else read_throttle(conn, destination=self._destination)
        )
        with self._lock:
            new = throttle is not None and throttle != self._known
            if new:
                self._known_since = monotonic
            self._known = throttle
        return throttle, new

    def throttled(self, *, now: dt.datetime, monotonic: float = math.inf) -> Throttle:
        """Book a 429 answered at ``now`` (``monotonic`` on the drainer's clock); returns the
        throttle in force."""
        with store.transaction(self._engine, write=True, durable=False) as conn:
            throttle = record_throttle(
                conn,
                now=now,
                delay=lambda level: retry_delay(level, rng=self._rng),
                actor=self._actor,
                destination=self._destination,
            )
        with self._lock:
            new = throttle != self._known
            if new:
                self._known_since = monotonic
            self._known = throttle
        if new:
            logger.warning(
                "mixpanel_rate_limited",
                destination=self._destination,
                level=throttle.level,
                backoff_seconds=round((throttle.until - now).total_seconds(), 1),
            )
        return throttle

    def delivered(self, *, now: dt.datetime, sent_at: float = -math.inf) -> None:
        """A request sent at ``sent_at`` (the drainer's monotonic clock) was accepted at ``now``:
        lift a throttle whose backoff ended, or a first-level one this relay learned of before
        it sent the request.

        A first-level throttle pauses nobody, it only slows the relays down; a request sent
        after the slowdown and accepted shows the project takes that rate, so the throttle has
        done its work. Left in place until its backoff ends, the next 429 of the limiter's
        careful climb would find it ended but not yet lifted and raise it to the level that
        pauses every relay for seconds (the limiter meets a 429 every few dozen requests at the
        cap).
        """
        with self._lock:
            known, since = self._known, self._known_since
        if known is None:
            return
        answered = known.level < PAUSING_LEVEL and sent_at > since
        if known.until > now and not answered:
            return
        with store.transaction(self._engine, write=True, durable=False) as conn:
            # At least the throttle's end: a later backoff booked meanwhile survives.
            lifted = lift_throttle(conn, now=max(now, known.until), destination=self._destination)
        with self._lock:
            if self._known == known:
                self._known = None
        if lifted:
            logger.warning(
                "mixpanel_rate_limit_lifted", destination=self._destination, level=known.level
            )
