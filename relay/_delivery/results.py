"""What one drain tick reports: :class:`DrainResult`, and the protocols around the drainer.

``BatchSender`` is what the drainer needs from a Mixpanel client; ``DrainObserver`` is who
listens to it (the daemon's metrics). Kept apart from :mod:`relay._delivery.drain` so that
readers of results (the daemon, ``relay drain``, the test plugin) need not load the drainer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from relay._mixpanel.answers import RequestStat, SendOutcome
from relay._tables import OutboxEvent


class BatchSender(Protocol):
    """What the drainer needs from a Mixpanel client (``MixpanelImportClient`` fits)."""

    def send(self, events: Sequence[OutboxEvent]) -> SendOutcome:
        """Send ``events``; every id lands in exactly one bucket of the outcome."""
        ...


@dataclass(frozen=True, slots=True)
class DrainResult:
    """What one tick (or, summed, several) did to the rows it claimed.

    ``rejected`` rows were refused by Mixpanel, or found by the claim too large for any
    request, and are dead; ``dead_after_max_attempts`` ran
    out of attempts on a retryable failure; ``released`` went back unsent with their attempt
    returned; ``lease_lost`` rows had been re-claimed by another relay before the ack, which
    therefore left them alone. ``postponed`` rows carried a ``time`` still ahead of the tick's
    ``now`` and went back unsent, due at that time, their attempt returned. ``batch_full``
    says more rows may be due: the claim hit its row limit or byte budget, or it started
    past the oldest due rows (see :class:`ClaimCursor`). ``throttled`` rows were in a request
    Mixpanel answered 429: they went back pending with their attempt returned, and the relay
    (every relay of the database) slows down instead. ``throttle_seconds`` is how long no relay
    may claim (Mixpanel's backoff, shared through the database), or until this relay's next
    probe of one event if that comes first (:mod:`relay._delivery.throttling`); 0 when claims
    may go on.
    """

    claimed: int = 0
    delivered: int = 0
    rejected: int = 0
    retried: int = 0
    dead_after_max_attempts: int = 0
    released: int = 0
    lease_lost: int = 0
    auth_error: str | None = None
    batch_full: bool = False
    postponed: int = 0
    throttled: int = 0
    throttle_seconds: float = 0.0

    @property
    def failed_transiently(self) -> bool:
        """Some request of this tick failed transiently (429, 5xx, a timeout, a cut answer)."""
        return bool(self.retried or self.dead_after_max_attempts)

    @property
    def mixpanel_failing(self) -> bool:
        """Mixpanel is failing: requests failed transiently and none delivered anything.

        The one test of "Mixpanel is down", behind the daemon's relay-wide backoff and
        ``relay drain``'s early stop. Within one pass the drainer stops sooner, at the first
        :attr:`failed_transiently` batch, so as not to burn the attempts of the rest.
        """
        return self.failed_transiently and not self.delivered

    @property
    def auth_failing(self) -> bool:
        """Mixpanel refused the credentials or the URL (401/403/404, a redirect)."""
        return self.auth_error is not None

    def __add__(self, other: DrainResult) -> DrainResult:
        """Totals of two results; the later auth error and fullness win, the longer throttle."""
        return DrainResult(
            claimed=self.claimed + other.claimed,
            delivered=self.delivered + other.delivered,
            rejected=self.rejected + other.rejected,
            retried=self.retried + other.retried,
            dead_after_max_attempts=self.dead_after_max_attempts + other.dead_after_max_attempts,
            released=self.released + other.released,
            lease_lost=self.lease_lost + other.lease_lost,
            auth_error=other.auth_error or self.auth_error,
            batch_full=other.batch_full,
            postponed=self.postponed + other.postponed,
            throttled=self.throttled + other.throttled,
            throttle_seconds=max(self.throttle_seconds, other.throttle_seconds),
        )


class DrainObserver(Protocol):
    """What a drainer tells whoever listens (the daemon's metrics): it emits, they count.

    Both are called from the draining thread, several at once with ``concurrency`` above 1.
    """

    def requests_sent(self, requests: Sequence[RequestStat]) -> None:
        """The HTTP requests of one batch's send, with their status and duration."""
        ...

    def batch_done(self, result: DrainResult) -> None:
        """One :meth:`Drainer.drain_once` ended with ``result`` (not called when it raised)."""
        ...
