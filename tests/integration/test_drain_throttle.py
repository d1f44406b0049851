"""Mixpanel's 429 is the relay's state, not the rows': no attempt used, shared slowdown."""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from helpers.outbox import add_rows, row_values
from helpers.standin import standin_settings
from sqlalchemy.engine import Engine

from relay import _store as store
from relay._delivery.drain import Drainer
from relay._delivery.limiter import AdaptiveLimiter
from relay._delivery.throttling import ThrottleGate
from relay._mixpanel.client import MixpanelImportClient
from relay._store.lanes import claim_exclusion
from relay._store.pauses import list_pauses, set_pause
from relay._store.throttle import lift_throttle, read_throttle, record_throttle
from relay._tables import OutboxState, outbox
from relay.testing.mixpanel_standin import MixpanelStandin

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
EVENT_TIME_MS = int((time.time() - 86_400) * 1000)


def _add(engine: Engine, count: int) -> None:
    add_rows(engine, count, at=NOW, time_ms=EVENT_TIME_MS)


def _rows(engine: Engine) -> list[sa.Row[Any]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(outbox.c.state, outbox.c.attempts, outbox.c.next_attempt_at)
            ).all()
        )


@pytest.fixture
def make_drainer(engine: Engine, standin: MixpanelStandin) -> Iterator[Callable[..., Drainer]]:
    """Drainers on the test database and the stand-in, acks stamped at the tick's ``now``."""
    clients: list[MixpanelImportClient] = []

    def make(*, limiter: AdaptiveLimiter | None = None, **overrides: Any) -> Drainer:
        settings = standin_settings(standin, engine, **overrides)
        client = MixpanelImportClient(settings)
        clients.append(client)
        return Drainer(
            engine, client, settings, rng=random.Random(1), monotonic=lambda: 0.0, limiter=limiter
        )

    yield make
    for client in clients:
        client.close()


def test_a_429_uses_no_attempt_and_books_the_shared_throttle(
    engine: Engine, standin: MixpanelStandin, make_drainer: Callable[..., Drainer]
) -> None:
    """A throttled batch goes back pending, attempt returned, due when the shared backoff ends."""
    _add(engine, 3)
    standin.fail_next(429)

    result = make_drainer().drain_once(now=NOW)

    assert (result.claimed, result.throttled, result.retried, result.delivered) == (3, 3, 0, 0)
    assert not result.failed_transiently
    assert [(r.state, r.attempts) for r in _rows(engine)] == [(OutboxState.PENDING, 0)] * 3
    with engine.connect() as conn:
        throttle = read_throttle(conn)
    assert throttle is not None
    assert throttle.level == 1
    assert 3.0 <= (throttle.until - NOW).total_seconds() <= 7.0  # 2 s plus 1-5 s of jitter
    assert result.throttle_seconds == pytest.approx((throttle.until - NOW).total_seconds())
    assert {r.next_attempt_at for r in _rows(engine)} == {throttle.until}


def test_a_long_throttle_dead_letters_nothing_and_delivery_resumes_after(
    engine: Engine, standin: MixpanelStandin, make_drainer: Callable[..., Drainer]
) -> None:
    """Throttled far past max_attempts, no row dies or uses an attempt; then all are delivered."""
    _add(engine, 5)
    drainer = make_drainer(max_attempts=2)
    standin.set_outage(429, None)
    now = NOW
    backoffs: list[float] = []
    waits: list[float] = []
    for _ in range(30):
        result = drainer.drain_once(now=now)
        assert result.retried == result.dead_after_max_attempts == result.rejected == 0
        waits.append(result.throttle_seconds)
        with engine.connect() as conn:
            booked = read_throttle(conn)
        assert booked is not None
        backoffs.append((booked.until - now).total_seconds())
        now += dt.timedelta(seconds=max(result.throttle_seconds, 0.5))
    assert [(r.state, r.attempts) for r in _rows(engine)] == [(OutboxState.PENDING, 0)] * 5
    assert max(backoffs) > 30  # the backoff doubled from 2 s towards 60 s
    assert all(b <= 65 for b in backoffs)
    # Between probes (one event each, at most every 3-7 s) the relay waits, never longer.
    assert all(0 < w <= 7 for w in waits)
    with engine.connect() as conn:
        level = read_throttle(conn)
    assert level is not None
    assert level.level >= 4

    standin.set_outage(None, None)
    after = drainer.drain_once(now=level.until)

    assert after.delivered == 5
    assert standin.stats().unique == 5
    with engine.connect() as conn:
        assert read_throttle(conn) is None  # the first delivery after the backoff lifts it


def test_a_relay_sharing_the_database_waits_out_another_relays_throttle(
    engine: Engine, make_drainer: Callable[..., Drainer], standin: MixpanelStandin
) -> None:
    """A throttle booked by one relay stops another relay's claims (but one probe) until its end."""
    _add(engine, 3)
    with store.transaction(engine) as conn:
        record_throttle(conn, now=NOW, delay=lambda _level: 1.0, actor="relay-a")
    with store.transaction(engine) as conn:
        booked = record_throttle(
            conn, now=NOW + dt.timedelta(seconds=2), delay=lambda _level: 10.0, actor="relay-a"
        )
    assert booked.level == 2
    standin.fail_next(429)  # Mixpanel still throttles: the probe is refused

    other = make_drainer()
    probed = other.drain_once(now=NOW + dt.timedelta(seconds=5))

    # One probe of one event, throttled: its row keeps its attempt, the backoff its level.
    assert (probed.claimed, probed.throttled, probed.retried) == (1, 1, 0)
    assert 0 < probed.throttle_seconds <= 7.0
    with engine.connect() as conn:
        assert read_throttle(conn) == booked

    held = other.drain_once(now=NOW + dt.timedelta(seconds=5))
    resumed = other.drain_once(now=booked.until)

    # No second probe before the probe interval: nothing claimed until the backoff ends.
    assert held.claimed == 0
    assert 0 < held.throttle_seconds <= 7.0
    assert resumed.delivered == 3
    assert standin.stats().by_status == {429: 1, 200: 1}  # the probe, then the batch
    assert {(r.state, r.attempts) for r in _rows(engine)} == {(OutboxState.DELIVERED, 1)}


def test_an_accepted_probe_lifts_the_throttle_for_every_relay_before_the_backoff_ends(
    engine: Engine, make_drainer: Callable[..., Drainer], standin: MixpanelStandin
) -> None:
    """Once Mixpanel accepts again, a probe lifts the shared backoff; every relay resumes."""
    _add(engine, 5)
    with store.transaction(engine) as conn:
        record_throttle(conn, now=NOW, delay=lambda _level: 1.0, actor="relay-a")
    with store.transaction(engine) as conn:
        booked = record_throttle(
            conn, now=NOW + dt.timedelta(seconds=2), delay=lambda _level: 60.0, actor="relay-a"
        )
    assert booked.level == 2
    # A relay that has seen the backoff: its limiter is halted for the backoff's 60 s.
    halted = AdaptiveLimiter(4)
    bystander = make_drainer(limiter=halted, batch_max_events=2)
    standin.fail_next(429)
    refused = bystander.drain_once(now=NOW + dt.timedelta(seconds=3))
    assert (refused.claimed, refused.throttled) == (1, 1)
    assert halted.state().limit == 1.0
    with engine.connect() as conn:
        assert read_throttle(conn) == booked  # a refused probe books nothing

    prober = make_drainer(batch_max_events=2)  # another relay's probe, now accepted
    probe = prober.drain_once(now=NOW + dt.timedelta(seconds=10))

    assert (probe.claimed, probe.delivered, probe.throttle_seconds) == (1, 1, 0.0)
    with engine.connect() as conn:
        assert read_throttle(conn) is None  # 52 s before the backoff's end
    # The halted relay sees the lift at its next claim and sends at once, in slow start.
    resumed = bystander.drain_once(now=NOW + dt.timedelta(seconds=11))
    assert (resumed.delivered, resumed.throttle_seconds) == (2, 0.0)
    rows = _rows(engine)
    assert [r.state for r in rows].count(OutboxState.DELIVERED) == 3
    assert OutboxState.DEAD not in {r.state for r in rows}
    assert max(r.attempts for r in rows) == 1


def test_the_rows_of_a_429_under_a_long_backoff_go_with_the_probes_lift_not_at_its_end(
    engine: Engine, make_drainer: Callable[..., Drainer], standin: MixpanelStandin
) -> None:
    """At a level whose backoff is a minute, a refused batch's rows are due after Mixpanel's
    first step (3-7 s): the backoff holds every relay's claims meanwhile, and once a probe
    lifts it they go with the rest, not at the minute's end."""
    _add(engine, 3)
    at = NOW
    with store.transaction(engine) as conn:
        for _ in range(5):  # levels 1 to 5, each over after a second with nothing accepted
            record_throttle(conn, now=at, delay=lambda _level: 1.0, actor="relay-a")
            at += dt.timedelta(seconds=2)
    standin.fail_next(429)
    drainer = make_drainer()

    refused = drainer.drain_once(now=at)

    assert (refused.claimed, refused.throttled) == (3, 3)
    with engine.connect() as conn:
        booked = read_throttle(conn)
    assert booked is not None
    assert booked.level == 6
    assert (booked.until - at).total_seconds() > 60
    assert all(3 <= (r.next_attempt_at - at).total_seconds() <= 7 for r in _rows(engine))
    # Due, yet held by the pause: nothing but a probe is claimed before the backoff's end.
    held = make_drainer(batch_max_events=5).drain_once(now=at + dt.timedelta(seconds=8))
    assert (held.claimed, held.delivered) == (1, 1)  # the probe, accepted: the lift
    with engine.connect() as conn:
        assert read_throttle(conn) is None
    resumed = drainer.drain_once(now=at + dt.timedelta(seconds=9))

    assert resumed.delivered == 2
    assert {(r.state, r.attempts) for r in _rows(engine)} == {(OutboxState.DELIVERED, 1)}


def test_a_throttle_level_one_slows_a_paced_relay_without_stopping_it(
    engine: Engine, standin: MixpanelStandin, make_drainer: Callable[..., Drainer]
) -> None:
    """With a limiter, a first 429 asks no pause: the next batch goes out, paced."""
    _add(engine, 2)
    standin.fail_next(429)
    drainer = make_drainer(limiter=AdaptiveLimiter(4), batch_max_events=1)

    first = drainer.drain_once(now=NOW)
    second = drainer.drain_once(now=NOW)

    assert (first.throttled, first.throttle_seconds) == (1, 0.0)
    assert second.delivered == 1


def test_another_relays_current_throttle_slows_a_starting_relay_but_an_ended_one_does_not(
    engine: Engine, make_drainer: Callable[..., Drainer]
) -> None:
    """A level-1 throttle still in its backoff ends a new relay's slow start; one whose backoff
    ended (its relay stopped before a delivery lifted it) leaves the new relay in slow start."""
    _add(engine, 2)
    with store.transaction(engine) as conn:
        record_throttle(conn, now=NOW - dt.timedelta(minutes=5), delay=lambda _l: 5.0, actor="old")
    fresh = AdaptiveLimiter(8)
    make_drainer(limiter=fresh, batch_max_events=1).drain_once(now=NOW)
    assert fresh.state().slow_start

    with engine.begin() as conn:
        conn.execute(sa.delete(outbox))
    _add(engine, 2)
    with store.transaction(engine) as conn:
        lift_throttle(conn, now=NOW)
        record_throttle(conn, now=NOW, delay=lambda _l: 5.0, actor="another relay")
    slowed = AdaptiveLimiter(8)
    make_drainer(limiter=slowed, batch_max_events=1).drain_once(now=NOW)
    assert not slowed.state().slow_start


def test_a_503_still_uses_an_attempt(
    engine: Engine, standin: MixpanelStandin, make_drainer: Callable[..., Drainer]
) -> None:
    """5xx keeps its per-row meaning: an attempt used, a retry scheduled, no throttle booked."""
    _add(engine, 1)
    standin.fail_next(503)

    result = make_drainer().drain_once(now=NOW)

    assert (result.retried, result.throttled) == (1, 0)
    assert [r.attempts for r in _rows(engine)] == [1]
    with engine.connect() as conn:
        assert read_throttle(conn) is None


def test_the_throttle_is_no_operators_pause(engine: Engine) -> None:
    """The throttle's row is neither listed as a pause nor excludes any event from claims."""
    with store.transaction(engine) as conn:
        record_throttle(conn, now=NOW, delay=lambda _level: 5.0, actor="relay-a")
        set_pause(conn, event="svc.test.paused", reason="r", actor="op", now=NOW)
    with engine.connect() as conn:
        assert [p.event for p in list_pauses(conn)] == ["svc.test.paused"]
        exclusion = claim_exclusion(conn)
    assert (exclusion.everything, exclusion.events) == (False, ("svc.test.paused",))


def test_throttle_levels_rise_only_after_a_backoff_and_lift_only_after_it(engine: Engine) -> None:
    """A 429 within the backoff changes nothing; one after it raises the level; lifting waits."""
    delays: list[int] = []

    def delay(level: int) -> float:
        delays.append(level)
        return 2.0 * level

    def book(at: dt.datetime) -> int:
        with store.transaction(engine) as conn:
            return record_throttle(conn, now=at, delay=delay, actor="relay-a").level

    assert book(NOW) == 1
    assert book(NOW + dt.timedelta(seconds=1)) == 1
    assert book(NOW + dt.timedelta(seconds=2)) == 2
    assert delays == [1, 2]
    with store.transaction(engine) as conn:
        assert not lift_throttle(conn, now=NOW + dt.timedelta(seconds=5))
        assert lift_throttle(conn, now=NOW + dt.timedelta(seconds=6))
        assert read_throttle(conn) is None


def test_a_paced_pipelined_drain_under_a_rate_cap_delivers_every_event_once(
    engine: Engine, make_drainer: Callable[..., Drainer]
) -> None:
    """Against latency and a tight cap, the adaptive drain delivers all, once, one attempt each."""
    _add(engine, 3000)
    with MixpanelStandin(latency_ms=50, rate_limit=4000, rate_window_seconds=0.5) as capped:
        drainer = make_drainer(
            limiter=AdaptiveLimiter(6),
            batch_max_events=200,
            mixpanel_api_url=capped.url,
        )
        now = NOW
        # Bounded in real time, not in passes: the limiter's halt after a 429 lasts real
        # seconds (it paces real requests), during which a pass hands its claim back unsent.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            result = drainer.drain_until_idle(clock=lambda at=now: at)
            now += dt.timedelta(seconds=max(result.throttle_seconds, 1.0))
            if {r.state for r in _rows(engine)} == {OutboxState.DELIVERED}:
                break
        stats = capped.stats()
    rows = _rows(engine)
    assert {(r.state, r.attempts) for r in rows} == {(OutboxState.DELIVERED, 1)}
    assert (stats.unique, stats.duplicates) == (3000, 0)


def test_an_accepted_probe_lifts_only_its_own_destinations_throttle(
    engine: Engine, make_drainer: Callable[..., Drainer]
) -> None:
    """Mixpanel's limit is per project: a probe to one destination leaves another's backoff."""
    add_rows(engine, 2, at=NOW, time_ms=EVENT_TIME_MS, destination="eu")
    for destination in ("default", "eu"):
        with store.transaction(engine) as conn:
            record_throttle(
                conn, now=NOW, delay=lambda _l: 1.0, actor="relay-a", destination=destination
            )
        with store.transaction(engine) as conn:
            record_throttle(
                conn,
                now=NOW + dt.timedelta(seconds=2),
                delay=lambda _l: 60.0,
                actor="relay-a",
                destination=destination,
            )
    us = make_drainer()  # only for its client and settings (the stand-in serves any project)
    eu = Drainer(
        engine,
        us._client,
        us._settings,
        destination="eu",
        rng=random.Random(1),
        monotonic=lambda: 0.0,
    )

    probe = eu.drain_once(now=NOW + dt.timedelta(seconds=3))

    assert (probe.claimed, probe.delivered) == (1, 1)
    with engine.connect() as conn:
        assert read_throttle(conn, destination="eu") is None
        still = read_throttle(conn)
    assert still is not None
    assert still.level == 2


def test_a_claim_reads_relay_pause_once_and_still_honours_both_a_pause_and_the_throttle(
    engine: Engine, standin: MixpanelStandin, make_drainer: Callable[..., Drainer]
) -> None:
    """One read of relay_pause serves the claim's throttle check and its pauses: the paused
    event stays pending while the others go out, and a throttle booked by another relay is seen."""
    _add(engine, 2)
    with store.transaction(engine) as conn:
        paused = row_values(at=NOW, time_ms=EVENT_TIME_MS, event="svc.test.paused_thing")
        store.insert_event(conn, values=paused)
        set_pause(conn, event="svc.test.paused_thing", reason="bad rows", actor="ops", now=NOW)
        record_throttle(conn, now=NOW, delay=lambda level: 5.0, actor="another relay")
    drainer = make_drainer()
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "relay_pause" in statement:
            reads.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        result = drainer.drain_once(now=NOW)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert len(reads) == 1, reads
    assert drainer.throttle_gate.known is not None  # level 1: slow down, still claiming
    assert (result.claimed, result.delivered) == (2, 2)
    with engine.connect() as conn:
        states = dict(conn.execute(sa.select(outbox.c.event, outbox.c.state)).all())
    assert states["svc.test.paused_thing"] == OutboxState.PENDING


def test_an_answer_to_a_request_sent_after_a_first_429_lifts_it_before_its_backoff_ends(
    engine: Engine,
) -> None:
    """Level 1 only slows relays down: a request sent after the relay learned of it and accepted
    lifts it at once, so the next 429 of the limiter's climb is a first one again (not the level
    that pauses every relay); an answer to a request sent before it lifts nothing, nor does any
    answer lift a pausing level before its end."""
    gate = ThrottleGate(engine, rng=random.Random(1))
    booked = gate.throttled(now=NOW, monotonic=10.0)
    assert booked.level == 1
    assert booked.until > NOW + dt.timedelta(seconds=2)

    gate.delivered(now=NOW + dt.timedelta(seconds=1), sent_at=9.5)  # left before the 429
    with engine.connect() as conn:
        assert read_throttle(conn) == booked
    gate.delivered(now=NOW + dt.timedelta(seconds=1), sent_at=10.5)  # left after it
    with engine.connect() as conn:
        assert read_throttle(conn) is None

    again = gate.throttled(now=NOW + dt.timedelta(seconds=2), monotonic=11.0)
    assert again.level == 1  # a first 429 again, not level 2

    later = again.until + dt.timedelta(seconds=1)
    pausing = gate.throttled(now=later, monotonic=20.0)  # outlasted the backoff: level 2
    assert pausing.level == 2
    gate.delivered(now=later + dt.timedelta(seconds=1), sent_at=21.0)
    with engine.connect() as conn:
        assert read_throttle(conn) == pausing
