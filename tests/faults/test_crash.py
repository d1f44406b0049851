"""Crash: relays SIGKILLed at random moments while they drain; nothing is lost, nothing doubled.

Each cycle commits a backlog while no relay runs, starts ``relay run``, and kills it with
SIGKILL in one of three ways, in turn:

* ``random``: a random moment (0-0.5 s) after the relay's first claim;
* ``in_flight``: while its first request is held unanswered by the stand-in (the records are
  stored when the hold ends, as Mixpanel stores a request whose client went away);
* ``send_ack``: after the stand-in answered 200 but before the ack committed: the test holds
  the claimed rows' locks, so the relay's fenced ack waits; the kill lands while it waits.

Meanwhile a producer thread keeps committing events through ``track()``. After the last kill a
relay drains everything; the ledger must balance and every row must be delivered.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from ledger import Ledger, LedgerReport, resends_within
from rig import (
    SHORT_LEASE_SECONDS,
    RelayLauncher,
    RelayProcess,
    SurveyEvents,
    attempts_histogram,
    claimed_since,
    commit_backlog,
    leased_since,
    lock_waiters,
    pending_count,
    state_counts,
    utc_now,
    wait_until,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from relay import _store as store
from relay._tables import OutboxState, outbox
from relay._tracking import track
from relay.testing.mixpanel_standin import MixpanelStandin

MODES = ("random", "in_flight", "send_ack")
#: How long the stand-in holds a request that a kill should land in.
IN_FLIGHT_HOLD_SECONDS = 3.0
SEND_ACK_HOLD_SECONDS = 1.5
#: Bound for one relay start up to its first claim, on a busy 2-core machine.
START_SECONDS = 60.0
#: The producer commits this many events per business transaction, then pauses.
TRICKLE_PER_TRANSACTION = 5
TRICKLE_PAUSE_SECONDS = 0.05


@dataclass
class Kill:
    """One SIGKILL and what it interrupted."""

    mode: str
    at: float  # time.monotonic() of the kill
    log_before: int  # stand-in requests answered just before the kill
    leased_at_kill: int = 0  # rows the dead relay still held a lease on
    accepted_unacked: int = 0  # rows Mixpanel accepted whose ack the kill prevented
    in_flight: bool = False  # a request was unanswered when the relay died


class Trickle:
    """A producer thread: small business transactions through ``track()``, recorded on commit."""

    def __init__(self, engine: Engine, ledger: Ledger, events: SurveyEvents) -> None:
        self._engine = engine
        self._ledger = ledger
        self._events = events
        self._stop = threading.Event()
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="trickle", daemon=True)

    def __enter__(self) -> Trickle:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def check(self) -> None:
        """Re-raise a failure of the producer thread."""
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                committed = []
                with Session(self._engine) as session, session.begin():
                    for _ in range(TRICKLE_PER_TRANSACTION):
                        call = self._events.next()
                        insert_id = track(
                            session,
                            event=call.event,
                            distinct_id=call.distinct_id,
                            properties=call.properties,
                            occurred_at=call.occurred_at,
                            strict=True,
                        )
                        assert insert_id is not None
                        committed.append((insert_id, call))
                for insert_id, call in committed:  # the commit returned: these exist
                    self._ledger.record_committed(
                        insert_id,
                        event=call.event,
                        distinct_id=call.distinct_id,
                        time_ms=call.time_ms,
                    )
                self._stop.wait(TRICKLE_PAUSE_SECONDS)  # pacing, not waiting for anything
        except Exception as exc:  # noqa: BLE001 - handed to the test thread by check()
            self._error = exc


def _kill_at_random(
    engine: Engine,
    standin: MixpanelStandin,
    relay: RelayProcess,
    rng: random.Random,
    requests_before: int,
) -> None:
    # A claim shows in the outbox, or (when the acks delete the rows and a whole claim went
    # out between two looks) as a request in the stand-in's log.
    wait_until(
        lambda: (
            claimed_since(engine, relay.started_at) or len(standin.request_log()) > requests_before
        ),
        timeout=START_SECONDS,
        what="a claim",
    )
    time.sleep(rng.uniform(0.0, 0.5))  # the random kill moment itself


def _kill_in_flight(engine: Engine, relay: RelayProcess, rng: random.Random) -> None:
    # The hold was queued before the start: the relay's first request is the one held, and
    # it blocks in that send (the drain only fans out after a first batch came back).
    wait_until(
        lambda: leased_since(engine, relay.started_at),
        timeout=START_SECONDS,
        what="the relay's first claim",
    )
    time.sleep(rng.uniform(0.2, IN_FLIGHT_HOLD_SECONDS / 2))  # a random moment in the send


def _kill_between_send_and_ack(
    engine: Engine, standin: MixpanelStandin, relay: RelayProcess, kill: Kill
) -> None:
    """Hold the claimed rows' locks until Mixpanel accepted them and the ack waits; kill."""
    with engine.connect() as conn:
        tx = conn.begin()
        locked: list[str] = []

        def lock_claimed() -> list[str]:
            nonlocal locked
            locked = list(
                conn.execute(
                    sa.select(outbox.c.insert_id)
                    .where(
                        outbox.c.state == OutboxState.PENDING.value,
                        outbox.c.lease_token.is_not(None),
                        outbox.c.updated_at >= relay.started_at,
                    )
                    .with_for_update()
                ).scalars()
            )
            return locked

        wait_until(lock_claimed, timeout=START_SECONDS, what="the relay's first claim")
        wanted = set(locked)
        wait_until(
            lambda: any(
                r.status == 200 and wanted.intersection(r.insert_ids) for r in standin.request_log()
            ),
            timeout=START_SECONDS,
            what="the stand-in to accept the held batch",
        )
        wait_until(lambda: lock_waiters(engine), timeout=START_SECONDS, what="the ack to wait")
        # Read in the locking transaction, at the kill: the rows still hold the relay's lease
        # token (a live-lease count taken later can find the 3 s lease already expired on a
        # busy machine).
        kill.leased_at_kill = conn.execute(
            sa.select(sa.func.count())
            .select_from(outbox)
            .where(outbox.c.insert_id.in_(wanted), outbox.c.lease_token.is_not(None))
        ).scalar_one()
        kill.log_before = len(standin.request_log())
        kill.at = time.monotonic()
        relay.kill()
        tx.rollback()
    wait_until(lambda: not lock_waiters(engine), timeout=30, what="the dead ack to go away")
    with engine.connect() as conn:
        states = conn.execute(
            sa.select(outbox.c.state).where(outbox.c.insert_id.in_(wanted))
        ).scalars()
        kill.accepted_unacked = sum(state == OutboxState.PENDING.value for state in states)


def _leased_now(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(outbox)
                .where(
                    outbox.c.state == OutboxState.PENDING.value,
                    store.lease_is_live(utc_now()),
                )
            ).scalar_one()
        )


def _crash_cycle(
    engine: Engine,
    standin: MixpanelStandin,
    relays: RelayLauncher,
    ledger: Ledger,
    factory: SurveyEvents,
    rng: random.Random,
    number: int,
    chunk: int,
    settings: dict[str, str],
) -> Kill:
    """Commit a backlog, start a relay, SIGKILL it the cycle's way; return what was killed."""
    mode = MODES[number % len(MODES)]
    commit_backlog(engine, ledger, factory, chunk)
    if mode == "in_flight":
        standin.delay_next(IN_FLIGHT_HOLD_SECONDS)
    elif mode == "send_ack":
        standin.delay_next(SEND_ACK_HOLD_SECONDS)
    requests_before = len(standin.request_log())
    relay = relays.start(**settings)
    kill = Kill(mode=mode, at=0.0, log_before=0)
    if mode == "send_ack":
        _kill_between_send_and_ack(engine, standin, relay, kill)
    else:
        if mode == "random":
            _kill_at_random(engine, standin, relay, rng, requests_before)
        else:
            _kill_in_flight(engine, relay, rng)
        kill.log_before = len(standin.request_log())
        kill.at = time.monotonic()
        relay.kill()
        kill.leased_at_kill = _leased_now(engine)
    return kill


def run_crash_scenario(
    engine: Engine,
    standin: MixpanelStandin,
    relays: RelayLauncher,
    *,
    kills: int,
    events: int,
    drain_seconds: float,
    settings: dict[str, str] | None = None,
) -> LedgerReport:
    """Kill ``kills`` relays while ``events`` (and a trickle more) drain; return the ledger.

    ``settings`` go to every relay (``RelayLauncher.start``). With
    ``delivered_retention_hours="0"`` the acks delete the accepted rows: the outbox must then
    end empty, and the ledger alone proves that every event arrived once.
    """
    settings = settings or {}
    keeps_delivered = settings.get("delivered_retention_hours") != "0"
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    ledger = Ledger(f"crash: {kills} kills, {events:,}+ events, seed {seed}")
    factory = SurveyEvents()
    chunk = -(-events // (kills + 1))
    done: list[Kill] = []
    started = time.monotonic()
    with Trickle(engine, ledger, factory) as trickle:
        for number in range(kills):
            try:
                kill = _crash_cycle(
                    engine, standin, relays, ledger, factory, rng, number, chunk, settings
                )
            except AssertionError as exc:
                raise AssertionError(f"cycle {number + 1}: {exc}\n{relays.diagnosis()}") from exc
            done.append(kill)
            trickle.check()
        commit_backlog(engine, ledger, factory, chunk)
    trickle.check()

    final = relays.start(**settings)
    wait_until(
        lambda: pending_count(engine) == 0 or not final.alive,
        timeout=drain_seconds,
        what="the last relay to drain the outbox",
        context=relays.diagnosis,
    )
    exit_code = final.stop()
    elapsed = time.monotonic() - started

    log = standin.request_log()
    for kill in done:
        kill.in_flight = any(r.at < kill.at for r in log[kill.log_before :])
    by_mode = {mode: [k for k in done if k.mode == mode] for mode in MODES}
    report = ledger.reconcile(
        standin.accepted_events(),
        notes={
            "kills (SIGKILL)": {mode: len(ks) for mode, ks in by_mode.items()},
            "kills with a request in flight": sum(k.in_flight for k in done),
            "kills leaving leased rows": sum(k.leased_at_kill > 0 for k in done),
            "rows leased by dead relays": sum(k.leased_at_kill for k in done),
            "accepted but unacked at kill": sum(k.accepted_unacked for k in done),
            "requests / by status": f"{len(log)} / {standin.stats().by_status}",
            "attempts per row": attempts_histogram(engine),
            "outbox states": state_counts(engine),
            "duration": f"{elapsed:.1f} s",
        },
    )
    print(f"\n{report}")
    context = f"\n{report}\n" + "\n".join(relays.logs())
    assert exit_code == 0, context
    report.assert_clean()
    delivered = {OutboxState.DELIVERED.value: len(ledger)} if keeps_delivered else {}
    assert state_counts(engine) == delivered, context
    assert standin.stats().rejected == 0, context
    assert all(k.in_flight for k in by_mode["in_flight"]), context
    assert all(k.accepted_unacked > 0 for k in by_mode["send_ack"]), context
    # Killed between send and ack, a relay leaves its claim's rows under a live lease.
    assert all(k.leased_at_kill > 0 for k in by_mode["send_ack"]), context
    # A restarted relay may re-send a dead relay's rows only once their lease has expired
    # (less the moments between a claim and its request reaching the stand-in).
    assert resends_within(log, SHORT_LEASE_SECONDS - 1.0) == [], context
    return report


@pytest.mark.heavy
def test_sigkilled_relays_lose_nothing_and_double_nothing(
    pg_engine: Engine, standin: MixpanelStandin, relays: RelayLauncher
) -> None:
    """Six SIGKILLs (random, mid-request, between send and ack) over ~10k events: ledger clean."""
    run_crash_scenario(pg_engine, standin, relays, kills=6, events=10_000, drain_seconds=120)


@pytest.mark.heavy
def test_sigkilled_relays_whose_acks_delete_the_rows_lose_nothing_and_double_nothing(
    pg_engine: Engine, standin: MixpanelStandin, relays: RelayLauncher
) -> None:
    """With ``RELAY_DELIVERED_RETENTION_HOURS=0`` the ack deletes the accepted rows: a kill
    between the send and that delete leaves them pending and leased, and the next relay sends
    them again after the lease (Mixpanel drops the copies by ``$insert_id``). Three SIGKILLs,
    one of each kind: the ledger is clean and no row is left."""
    run_crash_scenario(
        pg_engine,
        standin,
        relays,
        kills=3,
        events=5_000,
        drain_seconds=120,
        settings={"delivered_retention_hours": "0"},
    )


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_thirty_sigkills_over_100k_events_lose_nothing_and_double_nothing(
    pg_engine: Engine, standin: MixpanelStandin, relays: RelayLauncher
) -> None:
    """Thirty SIGKILLs of every kind while 100,000 events drain: ledger clean, all delivered."""
    run_crash_scenario(pg_engine, standin, relays, kills=30, events=100_000, drain_seconds=600)
