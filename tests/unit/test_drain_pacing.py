"""``DrainPacer`` and ``MetricsFeed``: the daemon's reading of drain passes, with fake clocks.

The pacer decides the delay before the next pass (adaptive polling, the pause after a 401, the
relay-wide backoff while Mixpanel fails) and reports auth health; the feed turns the drainer's
events into counters and tick success. A real ``RelayMetrics`` (in memory) shows what an
operator would read.
"""

from __future__ import annotations

import random

import pytest

from relay._config import RelaySettings
from relay._daemon.metrics import RelayMetrics
from relay._daemon.pacing import DrainPacer, MetricsFeed
from relay._delivery.results import DrainResult
from relay._mixpanel.answers import RequestStat


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class _FixedJitter(random.Random):
    """A Random whose uniform() always returns the low end: delays become exact."""

    def uniform(self, a: float, b: float) -> float:
        return a


@pytest.fixture
def settings() -> RelaySettings:
    return RelaySettings(
        database_url="sqlite://",
        poll_min_seconds=0.05,
        poll_max_seconds=2.0,
        auth_failure_pause_seconds=60.0,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def metrics(clock: FakeClock) -> RelayMetrics:
    return RelayMetrics(monotonic=clock, wall_clock=lambda: 1_800_000_000.0)


@pytest.fixture
def pacer(settings: RelaySettings, metrics: RelayMetrics, clock: FakeClock) -> DrainPacer:
    return DrainPacer(settings, metrics, monotonic=clock, rng=_FixedJitter(0))


DELIVERED = DrainResult(claimed=10, delivered=10)
FAILING = DrainResult(claimed=10, retried=10)
AUTH = DrainResult(claimed=10, released=10, auth_error="HTTP 401: bad credentials")


def test_idle_passes_double_the_delay_up_to_poll_max(pacer: DrainPacer) -> None:
    """With nothing claimed the next pass waits 0.05 s, then twice as long each time, to 2 s."""
    delays = [pacer.after_drain(DrainResult()) for _ in range(8)]
    assert delays == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    assert pacer.pause_left() == 0.0


def test_work_found_resets_the_idle_delay(pacer: DrainPacer) -> None:
    """A pass that claimed rows runs the next one after poll_min, and idling starts over."""
    for _ in range(5):
        pacer.after_drain(DrainResult())
    assert pacer.after_drain(DELIVERED) == 0.05
    assert pacer.after_drain(DrainResult()) == 0.05
    assert pacer.after_drain(DrainResult()) == 0.1


def test_an_auth_error_pauses_every_pass_and_fails_health(
    pacer: DrainPacer, metrics: RelayMetrics, clock: FakeClock
) -> None:
    """A 401 pauses draining for auth_failure_pause_seconds and reports it until rows move."""
    assert pacer.after_drain(AUTH) == 60.0
    assert pacer.pause_left() == 60.0
    clock.now += 59.0
    assert pacer.pause_left() == pytest.approx(1.0)
    healthy, body = metrics.health()
    assert not healthy
    assert body["auth_error"] == "HTTP 401: bad credentials"
    assert (
        metrics.registry.get_sample_value("relay_auth_failing", {"destination": "default"}) == 1.0
    )
    clock.now += 1.0
    assert pacer.pause_left() == 0.0
    # An idle pass says nothing about the credentials: the error stays.
    pacer.after_drain(DrainResult())
    assert metrics.health()[1]["auth_error"] == "HTTP 401: bad credentials"
    pacer.after_drain(DELIVERED)
    assert metrics.health()[1]["auth_error"] is None
    assert (
        metrics.registry.get_sample_value("relay_auth_failing", {"destination": "default"}) == 0.0
    )


def test_mixpanel_failing_backs_off_relay_wide_with_growing_pauses(
    pacer: DrainPacer, clock: FakeClock
) -> None:
    """Passes where every request failed transiently pause 3, 5, 9 s (2 s doubling, +1 s)."""
    pauses = []
    for _ in range(3):
        pauses.append(pacer.after_drain(FAILING))
        assert pacer.pause_left() == pauses[-1]
        clock.now += pauses[-1]
    assert pauses == [3.0, 5.0, 9.0]
    # A pass that delivered something ends the backoff: the next failure starts at 3 s again.
    assert pacer.after_drain(DELIVERED) == 0.05
    assert pacer.after_drain(FAILING) == 3.0


def test_a_partial_failure_is_not_mixpanel_failing(pacer: DrainPacer) -> None:
    """Some rows delivered and some retried: the relay keeps its pace, no relay-wide pause."""
    assert pacer.after_drain(DrainResult(claimed=10, delivered=5, retried=5)) == 0.05
    assert pacer.pause_left() == 0.0


def test_a_failed_pass_is_reported_by_type_and_waits_poll_max(
    pacer: DrainPacer, metrics: RelayMetrics
) -> None:
    """A pass that raised fails /healthz with the error's type only, never its text."""
    assert pacer.failed(RuntimeError("password=hunter2")) == 2.0
    healthy, body = metrics.health()
    assert not healthy
    assert body["last_error"] == "RuntimeError"
    assert "hunter2" not in str(body)
    assert metrics.registry.get_sample_value("relay_drain_errors_total") == 1.0


def test_the_feed_counts_rows_and_marks_successful_batches(
    metrics: RelayMetrics, clock: FakeClock
) -> None:
    """Each batch's rows reach the counters; a batch without auth error is a successful tick."""
    feed = MetricsFeed(metrics)
    feed.requests_sent([RequestStat(status=200, seconds=0.01, events=3, body_bytes=100)])
    feed.batch_done(DrainResult(claimed=4, delivered=3, rejected=1))
    sample = metrics.registry.get_sample_value
    default = {"destination": "default"}
    assert sample("relay_delivered_total", default) == 3
    assert sample("relay_dead_total", {"reason": "rejected", **default}) == 1
    assert sample("relay_send_seconds_count", {"status": "200", **default}) == 1
    assert sample("relay_last_success_timestamp_seconds") == 1_800_000_000.0
    assert metrics.health()[0] is True


def test_the_feed_does_not_count_an_auth_refusal_as_success(metrics: RelayMetrics) -> None:
    """A batch that met a 401 leaves the last success where it was (here: never)."""
    MetricsFeed(metrics).batch_done(AUTH)
    assert metrics.health()[1]["last_success_age_seconds"] is None
    assert (
        metrics.registry.get_sample_value("relay_released_total", {"destination": "default"}) == 10
    )


def test_a_shared_throttle_pauses_the_next_pass_for_its_backoff(
    pacer: DrainPacer, clock: FakeClock
) -> None:
    """A pass that met Mixpanel's throttle waits out the booked backoff, not the failing one."""
    throttled = DrainResult(claimed=10, throttled=10, throttle_seconds=12.5)
    assert pacer.after_drain(throttled) == 12.5
    assert pacer.pause_left() == 12.5
    clock.now += 12.5
    # A throttle is no failure: the next failing pass starts Mixpanel's backoff from 3 s.
    assert pacer.after_drain(FAILING) == 3.0
