"""One drain tick: claim a batch, send it with no transaction open, ack it fenced.

The claim commits before any byte goes to Mixpanel and the ack runs in a new transaction that
only touches rows still holding this tick's lease token, so a slow send, a crash or a second
relay can at worst cause a re-send of the same ``$insert_id`` (which Mixpanel deduplicates),
never a lost row or an overwritten newer claim.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.engine import Engine

from relay import _store as store
from relay._config import RelaySettings
from relay._delivery.backoff import retry_delay
from relay._delivery.cursor import ClaimCursor
from relay._delivery.limiter import AdaptiveLimiter, Reservation
from relay._delivery.results import BatchSender, DrainObserver, DrainResult
from relay._delivery.throttling import ThrottleGate
from relay._event.properties import datetime_to_timestamp_ms, timestamp_ms_to_datetime
from relay._mixpanel.answers import SendOutcome
from relay._store.profiles import claim_profile_updates
from relay._tables import DEFAULT_DESTINATION, OutboxEvent

if TYPE_CHECKING:
    from relay._mixpanel.profiles import ProfileClient

# DrainResult and the protocols live in relay._delivery.results; importable from here too.
__all__ = [
    "CLAIM_BUDGET_REQUESTS",
    "DEFAULT_RESCAN_SECONDS",
    "BatchSender",
    "DrainObserver",
    "DrainResult",
    "Drainer",
    "utc_now",
]

logger = structlog.get_logger("relay.drain")

#: While a backlog drains, how often a claim goes back to the oldest due row (seconds).
DEFAULT_RESCAN_SECONDS = 5.0
#: A claim takes rows whose stored properties add up to at most this many requests' worth
#: (``batch_max_bytes`` each): a few requests per claim keep batches full, while the text one
#: claim fetches (and the memory it needs) stays bounded whatever the rows hold.
CLAIM_BUDGET_REQUESTS = 4


def utc_now() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


class _Budget:
    """A thread-safe countdown of batches; ``None`` never runs out."""

    def __init__(self, batches: int | None) -> None:
        self._left = batches
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._left is None:
                return True
            if self._left <= 0:
                return False
            self._left -= 1
            return True


class Drainer:
    """Moves due outbox rows to Mixpanel, one batch per :meth:`drain_once`.

    ``observer`` (optional) hears of every batch's requests and result
    (:class:`DrainObserver`); the drainer keeps no metrics itself. ``stop`` (optional) is
    checked after the claim: once it is set a claimed batch is released
    unsent instead of being sent. ``monotonic`` measures how long the send took, which is
    added to the tick's ``now`` to time-stamp the ack; tests pin it to make acks exact.
    ``concurrency`` is how many batches :meth:`drain_until_idle` keeps in flight at once.
    ``rescan_seconds`` bounds how long claims may skip rows due before the latest claimed one
    while a backlog drains (see :class:`ClaimCursor`).

    ``limiter`` (optional) paces the requests in flight to what Mixpanel accepts
    (:class:`AdaptiveLimiter`): :meth:`drain_until_idle` then runs ``limiter.ceiling + 1``
    threads, each claiming its next batch while the others' are in flight, and a claimed
    batch waits for the limiter before it is sent (its ack never holds up another's send).
    A 429 is never the rows' failure (:mod:`relay._delivery.throttling`).

    ``destination`` is the one Mixpanel project this drainer delivers to: it claims only that
    destination's rows and books that project's throttle; ``client`` and ``settings`` must be
    that destination's (:func:`relay._delivery.wiring.open_drainer` builds them so).
    """

    def __init__(
        self,
        engine: Engine,
        client: BatchSender,
        settings: RelaySettings,
        *,
        observer: DrainObserver | None = None,
        stop: threading.Event | None = None,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        concurrency: int = 1,
        rescan_seconds: float = DEFAULT_RESCAN_SECONDS,
        limiter: AdaptiveLimiter | None = None,
        destination: str = DEFAULT_DESTINATION,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._engine = engine
        self._client = client
        self._settings = settings
        self._observer = observer
        self._stop = stop
        self._rng = rng
        self._monotonic = monotonic
        self._concurrency = concurrency
        self._cursor = ClaimCursor(rescan_seconds=rescan_seconds, monotonic=monotonic)
        self._profile_client: ProfileClient | None = None
        self._limiter = limiter
        self._destination = destination
        self._gate = ThrottleGate(engine, rng=rng, destination=destination)

    @property
    def destination(self) -> str:
        """The destination (Mixpanel project) whose rows this drainer claims."""
        return self._destination

    @property
    def limiter(self) -> AdaptiveLimiter | None:
        """The adaptive limit on requests in flight, if any (for metrics)."""
        return self._limiter

    @property
    def throttle_gate(self) -> ThrottleGate:
        """This relay's view of Mixpanel's shared throttle (for metrics)."""
        return self._gate

    def drain_once(self, *, now: dt.datetime) -> DrainResult:
        """Claim up to ``settings.batch_max_events`` rows due at ``now``, send them, ack them.

        Raises :class:`relay._errors.StoreError` when the database fails; rows claimed but not
        acked then come back when their lease expires.
        """
        result = self._drain_once(now=now)
        if self._observer is not None:
            self._observer.batch_done(result)
        return result

    def _drain_once(self, *, now: dt.datetime) -> DrainResult:
        events = self._drain_events(now=now)
        if self._stop is not None and self._stop.is_set():
            return events
        profiles = self._drain_profiles(now=now)
        if not profiles.claimed:
            return events
        return dataclasses.replace(
            events + profiles, batch_full=events.batch_full or profiles.batch_full
        )

    def close(self) -> None:
        """Close the profile client, if one was opened (the event client is the caller's)."""
        if self._profile_client is not None:
            self._profile_client.close()
            self._profile_client = None

    def _drain_profiles(self, *, now: dt.datetime) -> DrainResult:
        """One pass over profile updates: claim the head of each profile's queue, send, ack.

        Skipped without a project token (``require_profile_token`` refuses to start then).
        ``batch_full`` when more updates may be due: the ones queued behind those just sent.
        """
        token = self._settings.mixpanel_project_token
        if token is None or not token.get_secret_value():
            return DrainResult()
        with store.transaction(self._engine, write=True, durable=False) as conn:
            claimed = claim_profile_updates(
                conn,
                now=now,
                limit=self._settings.batch_max_events,
                lease_seconds=self._settings.lease_seconds,
                destination=self._destination,
            )
        claim = claimed.claim
        if not claim.events:
            return DrainResult(batch_full=claimed.more)
        log = logger.bind(lease=claim.token[:8], claimed=len(claim.events), kind="profile")
        if self._profile_client is None:
            from relay._mixpanel.profiles import ProfileClient  # noqa: PLC0415 - opened on need

            self._profile_client = ProfileClient(self._settings, cancel=self._stop)
        started = self._monotonic()
        try:
            outcome = self._profile_client.send(claim.events, claimed.kinds)
        except Exception as exc:
            log.exception("profile_send_failed_unexpectedly")
            outcome = SendOutcome(
                delivered=[],
                rejected={},
                retry={e.id: f"client error: {type(exc).__name__}" for e in claim.events},
                unsent=[],
                auth_error=None,
                requests=[],
            )
        ack_now = now + dt.timedelta(seconds=max(0.0, self._monotonic() - started))
        if self._observer is not None:
            self._observer.requests_sent(outcome.requests)
        # A 429 from /engage or /groups is the project's rate limit as on /import: the updates
        # keep their attempt and wait, with every relay, for the shared backoff's end.
        retry_at = self._gate.throttled(now=ack_now).until if outcome.throttled else None
        result = self._ack(claim, outcome, now=ack_now, throttled_until=retry_at)
        log.debug("profile_batch_acked", delivered=result.delivered, rejected=result.rejected)
        return dataclasses.replace(result, batch_full=claimed.more or bool(result.delivered))

    def _drain_events(self, *, now: dt.datetime) -> DrainResult:
        limiter = self._limiter
        if limiter is None:
            return self._claim_and_send(now=now, reservation=None)
        # Claim ahead only as far as the limit goes: the rows held follow the limit.
        reservation = limiter.reserve(
            timeout=self._settings.lease_seconds, cancelled=self._stopping
        )
        if reservation is None:
            return DrainResult(batch_full=not self._stopping())
        try:
            return self._claim_and_send(now=now, reservation=reservation)
        finally:
            reservation.close()

    def _claim_and_send(self, *, now: dt.datetime, reservation: Reservation | None) -> DrainResult:
        limit = self._settings.batch_max_events
        due_from = self._cursor.start()
        request_bytes = self._settings.batch_max_bytes
        with store.transaction(self._engine, write=True, durable=False) as conn:
            throttle, new = self._gate.check(conn)
            pause = 0.0 if throttle is None else throttle.pause_left(now)
            if new and self._limiter is not None:
                # Another relay's 429 slows this one too.
                if pause > 0:
                    self._limiter.halt(pause)
                else:
                    self._limiter.slow_down()
            if pause > 0:
                return DrainResult(throttle_seconds=pause)
            claim = store.claim(
                conn,
                now=now,
                limit=limit,
                lease_seconds=self._settings.lease_seconds,
                due_from=due_from,
                max_bytes=request_bytes * CLAIM_BUDGET_REQUESTS,
                row_max_bytes=request_bytes,
                destination=self._destination,
            )
        self._cursor.advance(claim, full=claim.full)
        # A short claim that started past the oldest rows may have left some behind it: say
        # that more may be due, so that the drain loop claims once more, from the start.
        batch_full = claim.full or due_from is not None
        if claim.too_large:
            logger.warning("rows_too_large_dead_lettered", rows=claim.too_large)
        too_large = DrainResult(
            claimed=claim.too_large, rejected=claim.too_large, batch_full=batch_full
        )
        if not claim.events:
            return too_large
        log = logger.bind(lease=claim.token[:8], claimed=len(claim.events))
        log.debug("batch_claimed")
        claim, postponed = self._postpone_early(claim, now=now)
        if postponed:
            log.info("rows_postponed_until_their_time", postponed=postponed)
            if not claim.events:
                return too_large + DrainResult(
                    claimed=postponed, postponed=postponed, batch_full=batch_full
                )

        if self._stop is not None and self._stop.is_set():
            with store.transaction(self._engine, write=True, durable=False) as conn:
                released = store.release(
                    conn,
                    token=claim.token,
                    ids=[e.id for e in claim.events],
                    next_attempt_at=now,
                    now=now,
                )
            log.info("batch_released_unsent", released=released)
            return too_large + DrainResult(
                claimed=len(claim.events) + postponed, released=released, postponed=postponed
            )

        started = self._monotonic()
        if self._limiter is not None and not self._limiter.acquire(
            timeout=self._settings.lease_seconds / 2,
            cancelled=self._stopping,
            reservation=reservation,
        ):
            # Halted by the shared throttle (or stopping) while the batch waited: hand it back.
            return too_large + self._hand_back_waiting(claim, postponed, now=now, log=log)
        outcome = self._send(claim.events, log)
        send_seconds = max(0.0, self._monotonic() - started)
        ack_now = now + dt.timedelta(seconds=send_seconds)
        if self._observer is not None:
            self._observer.requests_sent(outcome.requests)
        throttle_seconds, retry_at = self._after_send(outcome, now=ack_now)

        result = self._ack(claim, outcome, now=ack_now, throttled_until=retry_at)
        result = too_large + dataclasses.replace(
            result,
            claimed=result.claimed + postponed,
            postponed=postponed,
            batch_full=batch_full,
            throttle_seconds=throttle_seconds,
        )
        log.debug(
            "batch_acked",
            delivered=result.delivered,
            rejected=result.rejected,
            retried=result.retried,
            dead_after_max_attempts=result.dead_after_max_attempts,
            released=result.released,
            lease_lost=result.lease_lost,
        )
        if result.lease_lost:
            log.warning("lease_lost_before_ack", rows=result.lease_lost)
        return result

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    def _after_send(
        self, outcome: SendOutcome, *, now: dt.datetime
    ) -> tuple[float, dt.datetime | None]:
        """Tell the limiter and the shared throttle how the send went.

        Returns the pause every relay must observe, and when a throttled request may be
        retried ("with exponential backoff", Mixpanel's 429 says): the throttle's end.
        """
        limiter = self._limiter
        stats = outcome.requests
        seconds = max((r.seconds for r in stats), default=0.0)
        if outcome.throttled:
            throttle = self._gate.throttled(now=now)
            if limiter is None:
                # Nothing paces this relay: wait out the backoff rather than hammer Mixpanel.
                return max(0.0, (throttle.until - now).total_seconds()), throttle.until
            limiter.throttled(seconds=seconds)
            pause = throttle.pause_left(now)
            if pause > 0:
                limiter.halt(pause)
            return pause, throttle.until
        if limiter is not None:
            if not stats:
                limiter.abandoned()
            elif outcome.retry and not outcome.delivered:
                limiter.failed(seconds=seconds)
            else:
                limiter.accepted(events=len(outcome.delivered), seconds=seconds)
        if outcome.delivered:
            self._gate.delivered(now=now)
        return 0.0, None

    def _hand_back_waiting(
        self, claim: store.Claim, postponed: int, *, now: dt.datetime, log: structlog.BoundLogger
    ) -> DrainResult:
        """Release a claimed batch that never got to go (its attempt returned, due now)."""
        with store.transaction(self._engine, write=True, durable=False) as conn:
            released = store.release(
                conn,
                token=claim.token,
                ids=[e.id for e in claim.events],
                next_attempt_at=now,
                now=now,
            )
        known = self._gate.known
        pause = 0.0 if known is None else known.pause_left(now)
        log.info("batch_released_unsent", released=released, throttle_seconds=round(pause, 1))
        if self._stopping() or pause <= 0:
            return DrainResult(
                claimed=len(claim.events) + postponed, released=released, postponed=postponed
            )
        return DrainResult(
            claimed=len(claim.events) + postponed,
            throttled=released,
            postponed=postponed,
            throttle_seconds=pause,
        )

    def _postpone_early(self, claim: store.Claim, *, now: dt.datetime) -> tuple[store.Claim, int]:
        """Give back the claimed rows whose ``time`` is ahead of ``now``, due at that time.

        Mixpanel replaces a ``time`` ahead of its clock with its ingestion time, which changes
        the dedup key: a re-send would count twice. ``track()`` already stores such rows due
        at their time; this covers rows written by older relays, replayed or requeued.
        Returns the claim without them and how many went back.
        """
        now_ms = datetime_to_timestamp_ms(now)
        early = {
            e.id: timestamp_ms_to_datetime(e.time_ms) for e in claim.events if e.time_ms > now_ms
        }
        if not early:
            return claim, 0
        with store.transaction(self._engine, write=True, durable=False) as conn:
            postponed = store.postpone(conn, token=claim.token, due=early, now=now)
        kept = [e for e in claim.events if e.id not in early]
        return dataclasses.replace(claim, events=kept), postponed

    def drain_until_idle(
        self,
        *,
        clock: Callable[[], dt.datetime] = utc_now,
        max_batches: int | None = None,
    ) -> DrainResult:
        """Call :meth:`drain_once` while batches come back full, at ``clock()`` each time.

        With ``concurrency`` above 1, once a first batch came back full that many threads
        drain side by side, so one batch's HTTP round trip overlaps another's claim and ack
        (claims never overlap: SKIP LOCKED, or SQLite's write lock). Each thread stops on a
        short batch, an auth error, released rows (sending them again at once would only
        repeat the problem), a transient failure, ``stop``, or when ``max_batches`` batches were
        drained in all.
        Raises the first :class:`relay._errors.StoreError` any thread met.
        """
        budget = _Budget(max_batches)
        if not budget.take():
            return DrainResult()
        first = self.drain_once(now=clock())
        if not self._more_due(first):
            return first
        threads = self._concurrency if self._limiter is None else self._limiter.ceiling + 1
        if threads == 1:
            return first + self._drain_loop(clock, budget)
        with ThreadPoolExecutor(threads, thread_name_prefix="relay-drain") as pool:
            futures = [pool.submit(self._drain_loop, clock, budget) for _ in range(threads)]
        total = first
        for future in futures:
            total += future.result()
        return total

    def _drain_loop(self, clock: Callable[[], dt.datetime], budget: _Budget) -> DrainResult:
        total = DrainResult()
        while budget.take():
            result = self.drain_once(now=clock())
            total += result
            if not self._more_due(result):
                break
        return total

    def _more_due(self, result: DrainResult) -> bool:
        if not result.batch_full or result.auth_failing or result.released:
            return False
        if result.throttle_seconds > 0:
            return False  # Mixpanel's rate limit: every relay waits out the backoff
        if result.failed_transiently:
            # Mixpanel is failing transiently (429, 5xx, timeouts): hammering it with the
            # rest of the backlog would only burn those rows' attempts too.
            return False
        return self._stop is None or not self._stop.is_set()

    def _send(self, events: Sequence[OutboxEvent], log: structlog.BoundLogger) -> SendOutcome:
        try:
            return self._client.send(events)
        except Exception as exc:
            # The client promises not to raise; if it does anyway (a bug), the batch is
            # retried with backoff rather than left leased until the lease expires.
            log.exception("send_failed_unexpectedly")
            return SendOutcome(
                delivered=[],
                rejected={},
                retry={e.id: f"client error: {type(exc).__name__}" for e in events},
                unsent=[],
                auth_error=None,
                requests=[],
            )

    def _ack(
        self,
        claim: store.Claim,
        outcome: SendOutcome,
        *,
        now: dt.datetime,
        throttled_until: dt.datetime | None = None,
    ) -> DrainResult:
        """Write every row's outcome in one fenced transaction."""
        if len(outcome.delivered) == len(claim.events):
            # The usual case: the whole batch was accepted (one statement; see the store).
            with store.transaction(self._engine, write=True, durable=False) as conn:
                delivered = store.mark_claim_delivered(conn, claim=claim, now=now)
            return DrainResult(
                claimed=len(claim.events),
                delivered=delivered,
                lease_lost=len(claim.events) - delivered,
                auth_error=outcome.auth_error,
            )
        attempts = {e.id: e.attempts for e in claim.events}
        max_attempts = self._settings.max_attempts
        dead = dict(outcome.rejected)
        out_of_attempts: dict[int, str] = {}
        retries: dict[int, store.Retry] = {}
        # Unsent rows (after a 401, the client stops sending) were never tried: they go
        # back with their attempt returned and are due again at once.
        release_ids = list(outcome.unsent)
        # A 429 is the project's rate limit, not the rows' failure: they (and the rows the
        # client then left unsent) go back pending, their attempt returned, due when the
        # shared backoff ends; the relays slow down meanwhile (ThrottleGate, the limiter).
        throttle_ids = [*outcome.throttled, *release_ids] if outcome.throttled else []
        if throttle_ids:
            release_ids = []
        delays: dict[int, float] = {}
        for row_id, error in outcome.retry.items():
            attempt = attempts[row_id]
            if attempt >= max_attempts:
                out_of_attempts[row_id] = f"max attempts ({max_attempts}) reached: {error}"
                continue
            # One draw per attempt number: rows failing together come back together, which
            # keeps the next batch full.
            if attempt not in delays:
                delays[attempt] = retry_delay(attempt, rng=self._rng)
            retries[row_id] = store.Retry(
                at=now + dt.timedelta(seconds=delays[attempt]), error=error
            )
        expected = len(outcome.delivered) + len(dead) + len(out_of_attempts)
        expected += len(retries) + len(release_ids) + len(throttle_ids)
        with store.transaction(self._engine, write=True, durable=False) as conn:
            delivered = store.mark_delivered(
                conn, token=claim.token, ids=outcome.delivered, now=now
            )
            rejected = store.mark_dead(conn, token=claim.token, errors=dead, now=now)
            exhausted = store.mark_dead(conn, token=claim.token, errors=out_of_attempts, now=now)
            retried = store.schedule_retry(conn, token=claim.token, retries=retries, now=now)
            released = store.release(
                conn, token=claim.token, ids=release_ids, next_attempt_at=now, now=now
            )
            throttled = store.release(
                conn,
                token=claim.token,
                ids=throttle_ids,
                next_attempt_at=max(now, throttled_until or now),
                now=now,
            )
        changed = delivered + rejected + exhausted + retried + released + throttled
        return DrainResult(
            claimed=len(claim.events),
            delivered=delivered,
            rejected=rejected,
            retried=retried,
            dead_after_max_attempts=exhausted,
            released=released,
            lease_lost=expected - changed,
            auth_error=outcome.auth_error,
            throttled=throttled,
        )
