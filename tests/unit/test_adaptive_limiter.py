"""The adaptive limit on /import requests in flight: slow start, AIMD, pacing, halts."""

from __future__ import annotations

import pytest

from relay._config import RelaySettings
from relay._delivery.limiter import (
    BACKOFF_RATIO,
    MIN_LIMIT,
    PLATEAU_RATIO,
    PLATEAU_SECONDS,
    SLOW_START_INCREASE,
    AdaptiveLimiter,
    limiter_for,
)


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def _round_trip(limiter: AdaptiveLimiter, clock: FakeClock, *, events: int = 2000) -> None:
    assert limiter.acquire(timeout=0)
    clock.now += 0.3
    limiter.accepted(events=events, seconds=0.3)


def test_slow_start_grows_the_limit_by_half_a_request_per_answer_up_to_the_ceiling() -> None:
    """Before any 429 each accepted answer adds half a request in flight, never past the ceiling."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(2, monotonic=clock)
    assert SLOW_START_INCREASE == 0.5
    for expected in (1.5, 2.0, 2.0):
        _round_trip(limiter, clock)
        assert limiter.state().limit == expected


def test_the_first_answer_sets_the_round_trip_estimate() -> None:
    """The first answer's time is the round trip at once, not a step from the initial guess."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(8, monotonic=clock)
    assert limiter.state().latency_seconds == pytest.approx(0.1)
    _round_trip(limiter, clock)
    assert limiter.state().latency_seconds == pytest.approx(0.3)
    assert limiter.acquire(timeout=0)
    clock.now += 0.8
    limiter.accepted(events=2000, seconds=0.8)
    assert limiter.state().latency_seconds == pytest.approx(0.3 + 0.2 * 0.5)  # then averaged


def test_a_429_for_a_request_sent_before_the_last_cut_cuts_nothing_more() -> None:
    """A burst's late 429s (sent before the cut, answered after a round trip) cost no second cut;
    a 429 for a request sent after the cut does."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(16, initial_limit=4, monotonic=clock)
    assert limiter.acquire(timeout=0)
    limiter.failed(seconds=0.3)  # out of slow start: 4 x 0.7 = 2.8, round trip 0.3 s
    clock.now += 1
    assert limiter.acquire(timeout=0)
    clock.now += 0.15  # past the pacing interval, 0.3 s / 2.8
    assert limiter.acquire(timeout=0)  # sent before the cut below
    clock.now += 0.15
    limiter.throttled(seconds=0.3)
    cut = limiter.state().limit
    assert cut == pytest.approx(2.8 * BACKOFF_RATIO)
    clock.now += 2.0  # answered long after a round trip, but sent before the cut
    limiter.throttled(seconds=2.15)
    assert limiter.state().limit == cut
    assert limiter.acquire(timeout=0)  # sent after the cut
    clock.now += 0.3
    limiter.throttled(seconds=0.3)
    assert limiter.state().limit == pytest.approx(cut * BACKOFF_RATIO)
    assert limiter.state().throttled == 3


def test_in_flight_requests_stop_at_the_limit() -> None:
    """With the limit reached, another acquire gives up at its timeout instead of sending."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(8, monotonic=clock)
    assert limiter.acquire(timeout=0)
    assert not limiter.acquire(timeout=0)
    assert limiter.state().in_flight == 1


def test_a_429_falls_to_just_under_the_accepted_rate_once_per_round_trip() -> None:
    """A 429 sets the limit to 95% of what Mixpanel accepted; the same burst's 429s cut no more."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(16, initial_limit=2, monotonic=clock)
    for _ in range(10):  # two requests of 2000 every 0.3 s: 13,333 events/s
        assert limiter.acquire(timeout=0)
        clock.now += 0.15
        assert limiter.acquire(timeout=0)
        clock.now += 0.15
        limiter.accepted(events=2000, seconds=0.3)
        limiter.accepted(events=2000, seconds=0.3)
    before = limiter.state()
    assert limiter.acquire(timeout=0)
    limiter.throttled(seconds=0.3)
    after_first = limiter.state()
    clock.now += 0.1
    assert limiter.acquire(timeout=0)
    limiter.throttled(seconds=0.3)
    after_second = limiter.state()
    assert before.accepted_per_second == pytest.approx(13_333, rel=0.25)
    # accepted rate x latency / events per request (about 2 requests in flight), times 0.95.
    measured = before.accepted_per_second * before.latency_seconds / 2000
    assert after_first.limit == pytest.approx(0.95 * measured, rel=0.05)
    assert after_first.limit < before.limit / 2
    assert after_second.limit == after_first.limit
    assert (after_second.throttled, after_second.slow_start) == (2, False)


def test_after_slow_start_the_limit_grows_slowly() -> None:
    """Past the first 429 each accepted answer adds a small share, not a whole request."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(16, initial_limit=4, monotonic=clock)
    assert limiter.acquire(timeout=0)
    limiter.failed(seconds=0.3)
    before = limiter.state().limit
    clock.now += 1
    _round_trip(limiter, clock)
    assert before < limiter.state().limit < before + 0.1


def test_sends_are_paced_over_the_round_trip() -> None:
    """With a limit of 2, a second send waits half a round trip after the first."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(2, initial_limit=2, monotonic=clock)
    _round_trip(limiter, clock)  # the latency estimate moves towards 0.3 s
    assert limiter.acquire(timeout=0)
    assert not limiter.acquire(timeout=0)  # too soon
    clock.now += limiter.state().latency_seconds / limiter.state().limit
    assert limiter.acquire(timeout=0)


def test_a_halt_refuses_sends_until_it_ends_and_resets_the_limit() -> None:
    """During the shared backoff no request starts; afterwards one probe, then slow start."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(8, initial_limit=6, monotonic=clock)
    limiter.halt(5.0)
    assert not limiter.acquire(timeout=0)
    clock.now += 5.0
    assert limiter.acquire(timeout=0)
    assert limiter.state().limit == MIN_LIMIT
    assert limiter.state().slow_start  # the climb back is fast


def test_a_cancelled_wait_gives_up() -> None:
    """A relay that is stopping does not send."""
    limiter = AdaptiveLimiter(8, monotonic=FakeClock())
    assert not limiter.acquire(timeout=10, cancelled=lambda: True)


def test_the_setting_zero_turns_the_limiter_off() -> None:
    """RELAY_MAX_IN_FLIGHT=0 means the old fixed concurrency; otherwise it is the ceiling."""
    assert limiter_for(RelaySettings(database_url="sqlite://", max_in_flight=0)) is None
    limiter = limiter_for(RelaySettings(database_url="sqlite://", max_in_flight=12))
    assert limiter is not None
    assert limiter.ceiling == 12


def test_a_careless_ceiling_is_refused() -> None:
    """A ceiling below one request is a programming error, refused at once."""
    with pytest.raises(ValueError, match="ceiling"):
        AdaptiveLimiter(0)


def test_after_slow_start_a_429_backs_off_then_climbs_fast_to_just_under_its_maximum() -> None:
    """A later 429 cuts the limit by 10%; it climbs 1% an answer back near that point, then 0.1%."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(16, initial_limit=4, monotonic=clock)
    assert limiter.acquire(timeout=0)
    limiter.failed(seconds=0.3)  # out of slow start without a measure: 4 x 0.7 = 2.8
    clock.now += 1
    assert limiter.acquire(timeout=0)
    limiter.throttled(seconds=0.3)
    assert limiter.state().limit == pytest.approx(2.8 * 0.9)
    climbed = []
    for _ in range(12):
        clock.now += 1
        _round_trip(limiter, clock)
        climbed.append(limiter.state().limit)
    fast, slow = climbed[0] / (2.8 * 0.9), climbed[-1] / climbed[-2]
    assert fast == pytest.approx(1.01)
    assert slow == pytest.approx(1.001)
    assert climbed[-1] < 2.8


def test_near_its_last_maximum_the_limit_holds_until_the_plateau_ends_then_probes_beyond() -> None:
    """Under a cap that does not move, the climb after a 429 stops at 98 % of the limit that
    met it and stays there for half a minute after the cut (not ten seconds to the next 429);
    then it probes past the old maximum, since the cap may have been raised."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(16, initial_limit=4, monotonic=clock)
    assert limiter.acquire(timeout=0)
    limiter.failed(seconds=0.3)  # out of slow start: 4 x 0.7 = 2.8
    clock.now += 1
    assert limiter.acquire(timeout=0)
    limiter.throttled(seconds=0.3)  # the 429 at 2.8: cut to 2.52
    cut_at = clock.now
    clock.now += 0.3  # the pacing's gap after the 429's send
    held = []
    while clock.now + 0.3 < cut_at + PLATEAU_SECONDS:  # 98 answers, 0.3 s apart
        _round_trip(limiter, clock)
        held.append(limiter.state().limit)
    assert max(held) == pytest.approx(PLATEAU_RATIO * 2.8)
    assert held[-30:] == [PLATEAU_RATIO * 2.8] * 30
    clock.now += 1  # past the plateau: cut_at + 30.7 s
    for _ in range(60):
        _round_trip(limiter, clock)
    assert limiter.state().limit > 2.8  # past the last maximum: probing


def test_leaving_slow_start_the_limit_holds_under_the_measured_rate_then_probes() -> None:
    """Slow start's first 429 sets the limit to 95 % of the accepted rate: it climbs to 98 % of
    that rate and holds there until half a minute after the 429, then probes beyond it."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(16, monotonic=clock)
    for _ in range(5):
        _round_trip(limiter, clock)
    assert limiter.acquire(timeout=0)
    limiter.throttled(seconds=0.3)
    cut_at = clock.now
    measured = limiter.state().limit / 0.95
    clock.now += 0.3  # the pacing's gap after the 429's send
    while clock.now + 0.3 < cut_at + PLATEAU_SECONDS:
        _round_trip(limiter, clock)
    assert limiter.state().limit == pytest.approx(PLATEAU_RATIO * measured)
    clock.now += 1
    for _ in range(40):
        _round_trip(limiter, clock)
    assert limiter.state().limit > measured


def test_at_most_two_batches_wait_claimed_until_one_gets_a_slot() -> None:
    """Claims ahead are bounded: a third reservation waits until a reserved batch is sent."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(8, initial_limit=8, monotonic=clock)
    first = limiter.reserve(timeout=0)
    second = limiter.reserve(timeout=0)
    assert first is not None
    assert second is not None
    assert limiter.reserve(timeout=0) is None
    assert limiter.acquire(timeout=0, reservation=first)
    third = limiter.reserve(timeout=0)
    assert third is not None
    assert limiter.state().waiting == 2
    second.close()  # handed back unsent: its place is free again
    assert limiter.reserve(timeout=0) is not None


def test_a_probe_that_got_through_ends_a_halt_at_once_in_slow_start() -> None:
    """resume(): the backoff was lifted early, so sends start now, from one request, doubling."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(8, initial_limit=6, monotonic=clock)
    limiter.halt(60.0)
    assert not limiter.acquire(timeout=0)
    limiter.resume()
    assert limiter.acquire(timeout=0)
    state = limiter.state()
    assert (state.limit, state.slow_start) == (MIN_LIMIT, True)


def test_leaving_slow_start_the_climb_from_the_measured_rate_is_the_careful_one() -> None:
    """After the first 429 the limit climbs 0.1 % an answer from the rate Mixpanel accepted (the
    cap, measured), not 1 % an answer towards slow start's overshoot and into the next 429s."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(16, monotonic=clock)
    for _ in range(5):  # slow start: 1, 1.5, ... 3.5 requests in flight
        _round_trip(limiter, clock)
    overshoot = limiter.state().limit
    assert limiter.acquire(timeout=0)
    limiter.throttled(seconds=0.3)
    after = limiter.state().limit
    assert after < overshoot / 2  # the measured rate: one request per round trip
    climbed = [after]
    for _ in range(8):
        clock.now += 1
        _round_trip(limiter, clock)
        climbed.append(limiter.state().limit)
    assert climbed[-1] / climbed[-2] == pytest.approx(1.001)


def test_after_a_halt_the_accepted_rate_spans_only_the_sends_since_it_ended() -> None:
    """Leaving slow start after a throttle, the accepted rate (what the first 429 sets the limit
    from) spans the sends since the halt ended, not a window reaching back into its silence."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(16, monotonic=clock)
    _round_trip(limiter, clock)  # the round trip is 0.3 s
    limiter.halt(60.0)
    clock.now += 61.0
    for _ in range(3):  # 0.9 s of sending after the halt: 6,000 events
        _round_trip(limiter, clock)
    # 6,000 events over the 0.9 s since the first send after the halt; not over the whole 1 s
    # window, whose first 0.1 s lay in the halt (6,000 events/s).
    assert limiter.state().accepted_per_second == pytest.approx(6000 / 0.9)


def test_after_a_halt_the_first_full_answer_sets_the_round_trip_afresh() -> None:
    """During a throttle the only answers may be quick ones (a 429, a probe of one event):
    once the halt ends, the first batch's round trip replaces them rather than being averaged
    in, or slow start would convert the accepted rate into too few requests in flight."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(16, monotonic=clock)
    _round_trip(limiter, clock)  # 0.3 s
    for _ in range(5):  # quick 429s: the average would fall towards a millisecond
        clock.now += 1
        assert limiter.acquire(timeout=0)
        limiter.throttled(seconds=0.001)
        limiter.halt(2.0)
        clock.now += 2.0
    limiter.resume()
    clock.now += 1
    _round_trip(limiter, clock)
    assert limiter.state().latency_seconds == pytest.approx(0.3)
