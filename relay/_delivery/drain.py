"""One drain tick: claim a batch, send it with no transaction open, ack it fenced.

The claim commits before any byte goes to Mixpanel and the ack runs in a new transaction that
only touches rows still holding this tick's lease token, so a slow send, a crash or a second
relay can at worst cause a re-send of the same ``$insert_id`` (which Mixpanel deduplicates),
never a lost row or an overwritten newer claim.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import queue
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
from relay._delivery.throttling import PROBE_EVENTS, ThrottleGate, throttled_rows_due
from relay._event.properties import datetime_to_timestamp_ms, timestamp_ms_to_datetime
from relay._mixpanel.answers import SendOutcome
from relay._store.profiles import claim_profile_updates
from relay._store.throttle import Throttle, read_pause_rows
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


@dataclasses.dataclass(frozen=True, slots=True)
class _Claimed:
    """A claimed batch on its way to the send: its rows, and what the claim already did."""

    claim: store.Claim
    postponed: int
    too_large: DrainResult
    batch_full: bool
    now: dt.datetime
    claimed_at: float
    log: structlog.BoundLogger
    #: The throttle a probe was sent through (:mod:`relay._delivery.throttling`), else None.
    probe: Throttle | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _Sent:
    """A batch Mixpanel answered, waiting for its ack."""

    claimed: _Claimed
    outcome: SendOutcome
    ack_now: dt.datetime
    throttle_seconds: float
    retry_at: dt.datetime | None


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
        # RELAY_DELIVERED_RETENTION_HOURS=0 keeps no delivered row: the ack deletes it.
        self._keep_delivered = settings.delivered_retention_hours > 0
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
        # keep their attempt and wait, with every relay, for the shared backoff (or its lift).
        retry_at = (
            throttled_rows_due(
                self._gate.throttled(now=ack_now, monotonic=self._monotonic()),
                now=ack_now,
                rng=self._rng,
            )
            if outcome.throttled
            else None
        )
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
        claimed = self._claim_batch(now=now)
        if isinstance(claimed, DrainResult):
            return claimed
        sent = self._send_claimed(claimed, reservation=reservation)
        if isinstance(sent, DrainResult):
            return sent
        return self._finish(sent, self._ack_sent(sent))

    def _claim_batch(self, *, now: dt.datetime) -> _Claimed | DrainResult:
        """Claim the next batch; a :class:`DrainResult` when there is nothing to send.

        That is: the shared throttle pauses claims, nothing is due, every claimed row was
        postponed, or ``stop`` was set meanwhile (the batch then goes back unsent).
        """
        limit = self._settings.batch_max_events
        due_from = self._cursor.start()
        request_bytes = self._settings.batch_max_bytes
        claimed_at = self._monotonic()  # the lease runs from here, at the latest
        with store.transaction(self._engine, write=True, durable=False) as conn:
            known = self._gate.known
            # relay_pause read once for the throttle and the pauses: a round trip less a claim.
            pause_rows = read_pause_rows(conn)
            throttle, new = self._gate.check(
                conn, pause_rows=pause_rows, monotonic=self._monotonic()
            )
            if throttle is None and known is not None and self._limiter is not None:
                self._limiter.resume()  # lifted early, by another relay's probe
            pause = 0.0 if throttle is None else throttle.pause_left(now)
            if new and self._limiter is not None and throttle is not None and throttle.until > now:
                # Another relay's 429 slows this one too. A throttle whose backoff ended (left
                # by a relay that stopped before its next delivery lifted it) says nothing of
                # the project now: read at start-up, it would cut a relay that never sent.
                if pause > 0:
                    self._limiter.halt(pause)
                else:
                    self._limiter.slow_down()
            probe = None
            if pause > 0:
                # Paused by the shared backoff: at most one small probe now and then.
                wait = self._gate.take_probe(self._monotonic())
                if wait > 0:
                    return DrainResult(throttle_seconds=min(pause, wait))
                probe = throttle
            claim = store.claim(
                conn,
                now=now,
                limit=limit if probe is None else PROBE_EVENTS,
                lease_seconds=self._settings.lease_seconds,
                due_from=due_from,
                max_bytes=request_bytes * CLAIM_BUDGET_REQUESTS,
                row_max_bytes=request_bytes,
                destination=self._destination,
                pause_rows=pause_rows,
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
        claimed = _Claimed(
            claim=claim,
            postponed=postponed,
            too_large=too_large,
            batch_full=batch_full,
            now=now,
            claimed_at=claimed_at,
            log=log,
            probe=probe,
        )
        if self._stopping():
            return self._hand_back(claimed)
        return claimed

    def _release_now(self, claim: store.Claim, *, now: dt.datetime) -> int:
        """Release every row of ``claim``, unsent: its attempt returned, due ``now``."""
        with store.transaction(self._engine, write=True, durable=False) as conn:
            return store.release(
                conn,
                token=claim.token,
                ids=[e.id for e in claim.events],
                next_attempt_at=now,
                now=now,
            )

    def _hand_back(self, claimed: _Claimed) -> DrainResult:
        """Release a claimed batch unsent because of ``stop`` (its attempt returned, due now)."""
        claim, now = claimed.claim, claimed.now
        released = self._release_now(claim, now=now)
        claimed.log.info("batch_released_unsent", released=released)
        return claimed.too_large + DrainResult(
            claimed=len(claim.events) + claimed.postponed,
            released=released,
            postponed=claimed.postponed,
        )

    def _send_by(self, claimed: _Claimed) -> float:
        """The latest ``monotonic()`` at which the batch may still be sent.

        A batch claimed ahead waits for a slot (in the pipeline's queue, then the limiter's)
        at most half its lease from the claim's start: then it goes back unsent, its attempt
        returned, while the lease is still its relay's.
        """
        return claimed.claimed_at + self._settings.lease_seconds / 2

    def _send_claimed(
        self,
        claimed: _Claimed,
        *,
        reservation: Reservation | None,
        cancelled: Callable[[], bool] | None = None,
    ) -> _Sent | DrainResult:
        """Wait for the limiter, send, tell the limiter and the throttle how it went.

        ``cancelled`` (default: ``stop``) gives up the wait for a slot: the batch goes back.
        """
        claim, now, log = claimed.claim, claimed.now, claimed.log
        started = self._monotonic()
        left = self._send_by(claimed) - started
        # A probe takes no slot: it goes out while the limiter is halted by the backoff.
        if (
            claimed.probe is None
            and self._limiter is not None
            and (
                left <= 0
                or not self._limiter.acquire(
                    timeout=left, cancelled=cancelled or self._stopping, reservation=reservation
                )
            )
        ):
            # Halted by the shared throttle (or stopping, or out of the lease's time) while the
            # batch waited: hand it back.
            return claimed.too_large + self._hand_back_waiting(
                claim, claimed.postponed, now=now, log=log
            )
        sent_at = self._monotonic()
        outcome = self._send(claim.events, log)
        send_seconds = max(0.0, self._monotonic() - started)
        ack_now = now + dt.timedelta(seconds=send_seconds)
        if self._observer is not None:
            self._observer.requests_sent(outcome.requests)
        if claimed.probe is None:
            throttle_seconds, retry_at = self._after_send(outcome, now=ack_now, sent_at=sent_at)
        else:
            throttle_seconds, retry_at = self._after_probe(claimed.probe, outcome, now=ack_now)
        return _Sent(
            claimed=claimed,
            outcome=outcome,
            ack_now=ack_now,
            throttle_seconds=throttle_seconds,
            retry_at=retry_at,
        )

    def _ack_sent(self, sent: _Sent) -> DrainResult:
        return self._ack(
            sent.claimed.claim, sent.outcome, now=sent.ack_now, throttled_until=sent.retry_at
        )

    def _finish(self, sent: _Sent, acked: DrainResult) -> DrainResult:
        """The batch's whole result from its ack's, logged."""
        claimed = sent.claimed
        result = claimed.too_large + dataclasses.replace(
            acked,
            claimed=acked.claimed + claimed.postponed,
            postponed=claimed.postponed,
            batch_full=claimed.batch_full,
            throttle_seconds=sent.throttle_seconds,
        )
        claimed.log.debug(
            "batch_acked",
            delivered=result.delivered,
            rejected=result.rejected,
            retried=result.retried,
            dead_after_max_attempts=result.dead_after_max_attempts,
            released=result.released,
            lease_lost=result.lease_lost,
        )
        if result.lease_lost:
            claimed.log.warning("lease_lost_before_ack", rows=result.lease_lost)
        return result

    def _ack_many(self, sent: Sequence[_Sent]) -> list[DrainResult]:
        """Ack several sent batches: the wholly delivered ones together, in one transaction.

        Each claim keeps its own fenced statement (its token); only the transaction, its
        round trips and its commit are shared. The others are acked one by one (:meth:`_ack`).
        """
        whole = [s for s in sent if len(s.outcome.delivered) == len(s.claimed.claim.events)]
        results: list[DrainResult] = []
        if whole:
            with store.transaction(self._engine, write=True, durable=False) as conn:
                counts = [
                    store.mark_claim_delivered(
                        conn, claim=s.claimed.claim, now=s.ack_now, keep=self._keep_delivered
                    )
                    for s in whole
                ]
            for s, delivered in zip(whole, counts, strict=True):
                claimed = len(s.claimed.claim.events)
                acked = DrainResult(
                    claimed=claimed,
                    delivered=delivered,
                    lease_lost=claimed - delivered,
                    auth_error=s.outcome.auth_error,
                )
                results.append(self._finish(s, acked))
        for s in sent:
            if len(s.outcome.delivered) != len(s.claimed.claim.events):
                results.append(self._finish(s, self._ack_sent(s)))
        return results

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    def _after_send(
        self, outcome: SendOutcome, *, now: dt.datetime, sent_at: float
    ) -> tuple[float, dt.datetime | None]:
        """Tell the limiter and the shared throttle how the send went (the request left at
        ``sent_at``, on this drainer's monotonic clock).

        Returns the pause every relay must observe, and when a throttled request's rows may be
        retried ("with exponential backoff", Mixpanel's 429 says): :func:`throttled_rows_due`.
        """
        limiter = self._limiter
        stats = outcome.requests
        seconds = max((r.seconds for r in stats), default=0.0)
        if outcome.throttled:
            throttle = self._gate.throttled(now=now, monotonic=self._monotonic())
            due = throttled_rows_due(throttle, now=now, rng=self._rng)
            if limiter is None:
                # Nothing paces this relay: wait out the backoff rather than hammer Mixpanel.
                wait = max(0.0, (throttle.until - now).total_seconds())
                return self._until_probe(throttle, wait, now=now), due
            limiter.throttled(seconds=seconds)
            pause = throttle.pause_left(now)
            if pause > 0:
                limiter.halt(pause)
            return self._until_probe(throttle, pause, now=now), due
        if limiter is not None:
            if not stats:
                limiter.abandoned()
            elif outcome.retry and not outcome.delivered:
                limiter.failed(seconds=seconds)
            else:
                limiter.accepted(events=len(outcome.delivered), seconds=seconds)
        if outcome.delivered:
            self._gate.delivered(now=now, sent_at=sent_at)
        return 0.0, None

    def _until_probe(self, throttle: Throttle, wait: float, *, now: dt.datetime) -> float:
        """``wait``, or less when the backoff pauses claims: until this relay's next probe.

        A batch just met the 429, so the next probe is one probe interval away.
        """
        if throttle.pause_left(now) <= 0:
            return wait
        monotonic = self._monotonic()
        self._gate.probed(monotonic)
        return min(wait, self._gate.probe_wait(monotonic))

    def _after_probe(
        self, throttle: Throttle, outcome: SendOutcome, *, now: dt.datetime
    ) -> tuple[float, dt.datetime | None]:
        """A probe came back: lift the throttle if it got through, else wait for the next one.

        A throttled probe books nothing (the backoff's level stays): its row goes back pending,
        its attempt returned, due as :func:`throttled_rows_due` says (the pause holds it).
        """
        if outcome.delivered:
            self._gate.probe_accepted(throttle, now=now)
            if self._limiter is not None:
                self._limiter.resume()
            return 0.0, None
        wait = self._gate.probe_wait(self._monotonic())
        pause = min(throttle.pause_left(now), wait)
        due = throttled_rows_due(throttle, now=now, rng=self._rng) if outcome.throttled else None
        return pause, due

    def _hand_back_waiting(
        self, claim: store.Claim, postponed: int, *, now: dt.datetime, log: structlog.BoundLogger
    ) -> DrainResult:
        """Release a claimed batch that never got to go (its attempt returned, due now)."""
        released = self._release_now(claim, now=now)
        known = self._gate.known
        pause = 0.0 if known is None else known.pause_left(now)
        if pause > 0:
            pause = min(pause, self._gate.probe_wait(self._monotonic()))
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

        With a ``limiter``, once a first batch came back full the drain is pipelined
        (:class:`_Pipeline`): one thread claims ahead, the limiter's slots send, one thread acks
        what came back, so claims, requests and acks overlap. Without one, with
        ``concurrency`` above 1, that many threads drain side by side, so one batch's HTTP
        round trip overlaps another's claim and ack
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
        if self._limiter is not None:
            return first + _Pipeline(self, self._limiter, clock, budget).run()
        threads = self._concurrency
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
                delivered = store.mark_claim_delivered(
                    conn, claim=claim, now=now, keep=self._keep_delivered
                )
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
        # client then left unsent) go back pending, their attempt returned, due as
        # throttled_rows_due says; the relays slow down meanwhile (ThrottleGate, the limiter).
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
                conn,
                token=claim.token,
                ids=outcome.delivered,
                now=now,
                keep=self._keep_delivered,
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


#: At most this many answered batches are acked in one transaction.
ACK_GROUP = 16
#: Threads claiming side by side (SKIP LOCKED keeps their rows apart): one claim's round trips
#: overlap the other's work in the relay, within the limiter's claim-ahead reservations.
CLAIMERS = 2


class _Pipeline:
    """One pipelined pass of :meth:`Drainer.drain_until_idle`: claim, send and ack overlap.

    * The **claim** stage (:data:`CLAIMERS` threads, the calling one among them) takes a
      reservation from the limiter before each claim, so at most
      :data:`relay._delivery.limiter.CLAIM_AHEAD` claimed batches wait for a slot: the rows
      held ahead follow the limit. It stops at a short claim, at the
      budget, or when a batch's result says to stop (below).
    * The **send** stage (``limiter.ceiling`` threads) waits for a slot and the pacing, sends,
      and passes the answer on; the slot is free again before the ack.
    * The **ack** stage (one thread) acks every answered batch, the wholly delivered ones
      together in one transaction (:meth:`Drainer._ack_many`), so acks never hold up a send
      (unless they fall ``limiter.ceiling`` batches behind: then the senders wait).
    * Profile updates, when there is a token, drain beside them on a thread of their own.

    A batch whose result says to stop (an auth error, a throttle pause, a transient failure,
    rows handed back, ``stop``) stops the claims, and every claimed batch not yet sent goes
    back unsent, its attempt returned, due at once. A claimed batch never waits for a slot
    beyond :meth:`Drainer._send_by` (half its lease; then it goes back too), so claiming
    ahead never holds rows past their lease. A database error in any stage stops the pass;
    rows claimed and not acked come back when their lease expires (at-least-once: a re-send
    carries the same ``$insert_id``). The first such error is raised once every stage has stopped.
    """

    def __init__(
        self,
        drainer: Drainer,
        limiter: AdaptiveLimiter,
        clock: Callable[[], dt.datetime],
        budget: _Budget,
    ) -> None:
        self._drainer = drainer
        self._limiter = limiter
        self._clock = clock
        self._budget = budget
        self._lock = threading.Lock()
        self._total = DrainResult()
        self._errors: list[BaseException] = []
        self._abort = threading.Event()
        self._more = False
        self._to_send: queue.SimpleQueue[tuple[_Claimed, Reservation] | None] = queue.SimpleQueue()
        # Bounded: when acks fall behind, the senders wait instead of holding ever more
        # answered batches (their rows in memory, their leases running out).
        self._to_ack: queue.Queue[_Sent | None] = queue.Queue(maxsize=max(2, limiter.ceiling))

    def run(self) -> DrainResult:
        """Drain until a stage says to stop; the results of every batch, summed."""
        drainer = self._drainer
        senders = [
            threading.Thread(target=self._send_stage, name=f"relay-send-{n}", daemon=True)
            for n in range(self._limiter.ceiling)
        ]
        acker = threading.Thread(target=self._ack_stage, name="relay-ack", daemon=True)
        profiles = threading.Thread(target=self._profile_stage, name="relay-profiles", daemon=True)
        claimers = [
            threading.Thread(target=self._claim_guarded, name=f"relay-claim-{n}", daemon=True)
            for n in range(1, CLAIMERS)
        ]
        for thread in (*senders, acker, profiles, *claimers):
            thread.start()
        try:
            self._claim_guarded()
        finally:
            for thread in claimers:
                thread.join()
            for _ in senders:
                self._to_send.put(None)
            for thread in senders:
                thread.join()
            self._to_ack.put(None)
            acker.join()
            profiles.join()
        if self._errors:
            raise self._errors[0]
        with self._lock:
            more = self._more and not self._abort.is_set() and not drainer._stopping()
            return dataclasses.replace(self._total, batch_full=more)

    # --- the stages ---------------------------------------------------------------------

    def _claim_guarded(self) -> None:
        try:
            self._claim_stage()
        except BaseException as exc:  # noqa: BLE001 - raised by run(), once every stage stopped
            self._fail(exc)

    def _claim_stage(self) -> None:
        drainer = self._drainer
        settings = drainer._settings
        while not self._stopped():
            reservation = self._limiter.reserve(
                timeout=settings.lease_seconds, cancelled=self._stopped
            )
            if reservation is None:
                continue
            if self._stopped():
                reservation.close()
                return
            if not self._budget.take():
                reservation.close()
                self._more = True
                return
            try:
                claimed = drainer._claim_batch(now=self._clock())
            except BaseException:
                reservation.close()
                raise
            self._more = claimed.batch_full
            if isinstance(claimed, DrainResult):
                reservation.close()
                self._done(claimed)
                if not drainer._more_due(claimed):
                    return
                continue
            self._to_send.put((claimed, reservation))
            if not claimed.batch_full:
                return

    def _send_stage(self) -> None:
        drainer = self._drainer
        while (item := self._to_send.get()) is not None:
            claimed, reservation = item
            try:
                if self._stopped():
                    # Claimed ahead, but the pass is stopping: hand the rows back unsent.
                    self._done(drainer._hand_back(claimed))
                    continue
                sent = drainer._send_claimed(
                    claimed, reservation=reservation, cancelled=self._stopped
                )
                if isinstance(sent, DrainResult):
                    self._done(sent)  # went back unsent: stops the claims first
                else:
                    self._to_ack.put(sent)
            except BaseException as exc:  # noqa: BLE001 - the rows' lease brings them back
                self._fail(exc)
            finally:
                # Only now may the claim stage take the next reservation: after a hand-back
                # it must see the stop before it claims again.
                reservation.close()

    def _ack_stage(self) -> None:
        drainer = self._drainer
        last = False
        while not last:
            first = self._to_ack.get()
            if first is None:
                return
            group = [first]
            while len(group) < ACK_GROUP:
                try:
                    item = self._to_ack.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    last = True
                    break
                group.append(item)
            try:
                results = drainer._ack_many(group)
            except BaseException as exc:  # noqa: BLE001 - the rows' lease brings them back
                # Unacked, the rows keep their lease and are claimed and sent again when it
                # expires, with the same $insert_id: Mixpanel drops the repeat, nothing is lost.
                self._fail(exc)
                continue
            for result in results:
                self._done(result)

    def _profile_stage(self) -> None:
        drainer = self._drainer
        try:
            while not self._stopped():
                result = drainer._drain_profiles(now=self._clock())
                if not result.claimed:
                    return
                self._done(result)
                if not drainer._more_due(result):
                    return
        except BaseException as exc:  # noqa: BLE001 - raised by run()
            self._fail(exc)

    # --- book-keeping -------------------------------------------------------------------

    def _stopped(self) -> bool:
        return self._abort.is_set() or self._drainer._stopping()

    def _done(self, result: DrainResult) -> None:
        """One batch's result: count it, tell the observer, stop the pass if it says so."""
        with self._lock:
            self._total += result
        observer = self._drainer._observer
        if observer is not None:
            observer.batch_done(result)
        if (
            result.auth_failing
            or result.released
            or result.throttle_seconds > 0
            or result.failed_transiently
        ):
            self._abort.set()

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)
        self._abort.set()
