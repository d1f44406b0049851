"""``RelayMetrics.health``: what ``/healthz`` answers, with fake monotonic and wall clocks."""

from __future__ import annotations

from relay._daemon.metrics import RelayMetrics

DEFAULT = {"destination": "default"}


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def _metrics(stale_after: float = 120.0) -> tuple[RelayMetrics, FakeClock]:
    clock = FakeClock(10.0)
    return RelayMetrics(
        stale_after_seconds=stale_after, monotonic=clock, wall_clock=lambda: 1.5e9
    ), clock


def test_a_relay_that_never_drained_is_not_healthy() -> None:
    """Before the first successful tick /healthz fails, with no age to report."""
    metrics, _ = _metrics()
    healthy, body = metrics.health()
    assert not healthy
    assert body["status"] == "failing"
    assert body["last_success_age_seconds"] is None


def test_a_recent_success_is_healthy_until_it_is_stale() -> None:
    """Healthy while the last success is at most stale_after seconds old, failing after."""
    metrics, clock = _metrics(stale_after=120.0)
    metrics.tick_succeeded()
    clock.now += 120.0
    healthy, body = metrics.health()
    assert healthy
    assert body == {
        "status": "ok",
        "last_success_age_seconds": 120.0,
        "last_error": None,
        "auth_error": None,
        "paused": False,
        "paused_events": [],
        "destinations": {
            "default": {
                "status": "ok",
                "last_success_age_seconds": 120.0,
                "last_error": None,
                "auth_error": None,
                "paused": False,
            }
        },
    }
    clock.now += 0.001
    assert metrics.health()[0] is False
    assert metrics.registry.get_sample_value("relay_last_success_timestamp_seconds") == 1.5e9


def test_a_failure_after_a_success_fails_health_until_the_next_success() -> None:
    """A tick that raised fails /healthz at once, however recent the last success."""
    metrics, clock = _metrics()
    metrics.tick_succeeded()
    metrics.tick_failed(ConnectionError("db down"))
    healthy, body = metrics.health()
    assert not healthy
    assert body["last_error"] == "ConnectionError"
    clock.now += 1.0
    metrics.tick_succeeded()
    assert metrics.health() == (
        True,
        {
            "status": "ok",
            "last_success_age_seconds": 0.0,
            "last_error": None,
            "auth_error": None,
            "paused": False,
            "paused_events": [],
            "destinations": {
                "default": {
                    "status": "ok",
                    "last_success_age_seconds": 0.0,
                    "last_error": None,
                    "auth_error": None,
                    "paused": False,
                }
            },
        },
    )


def test_an_auth_error_fails_health_even_with_recent_successes() -> None:
    """Mixpanel refusing the credentials fails /healthz until it accepts them again."""
    metrics, _ = _metrics()
    metrics.tick_succeeded()
    metrics.set_auth_error("HTTP 401")
    assert metrics.health()[0] is False
    metrics.set_auth_error(None)
    assert metrics.health()[0] is True


def test_a_pause_is_reported_but_keeps_the_relay_healthy() -> None:
    """A paused relay runs as told: /healthz stays 200 and says what is paused."""
    metrics, _ = _metrics()
    metrics.tick_succeeded()
    metrics.set_pauses(everything=False, events=["svc.b.c", "svc.a.b"])
    healthy, body = metrics.health()
    assert healthy
    assert (body["paused"], body["paused_events"]) == (False, ["svc.a.b", "svc.b.c"])
    assert metrics.registry.get_sample_value("relay_paused_events") == 2
    metrics.set_pauses(everything=True, events=[])
    assert metrics.health()[1]["paused"] is True
    assert metrics.registry.get_sample_value("relay_paused") == 1
    metrics.set_pauses(everything=False, events=[])
    assert metrics.registry.get_sample_value("relay_paused") == 0


def test_429s_and_throttled_rows_are_counted_apart_from_failures() -> None:
    """A 429 counts as a throttled request; the rows it handed back as throttled rows."""
    from relay._delivery.results import DrainResult  # noqa: PLC0415
    from relay._mixpanel.answers import RequestStat  # noqa: PLC0415

    metrics, _ = _metrics()
    metrics.observe_requests([RequestStat(429, 0.3, 2000, 1), RequestStat(200, 0.3, 2000, 1)])
    metrics.observe_drain(DrainResult(claimed=4000, delivered=2000, throttled=2000))
    registry = metrics.registry
    assert registry.get_sample_value("relay_throttled_requests_total", DEFAULT) == 1
    assert registry.get_sample_value("relay_throttled_total", DEFAULT) == 2000
    assert registry.get_sample_value("relay_retried_total", DEFAULT) == 0


def test_the_limiter_and_the_throttle_are_read_at_each_scrape() -> None:
    """The gauges show the drainer's live in-flight count, limit, accepted rate and level."""
    from relay._delivery.limiter import AdaptiveLimiter  # noqa: PLC0415

    metrics, _ = _metrics()
    limiter = AdaptiveLimiter(8, initial_limit=3)
    metrics.watch_delivery(
        in_flight=lambda: float(limiter.state().in_flight),
        limit=lambda: limiter.state().limit,
        accepted_rate=lambda: limiter.state().accepted_per_second,
        throttle_level=lambda: 2.0,
    )
    assert limiter.acquire(timeout=0)
    registry = metrics.registry
    assert registry.get_sample_value("relay_requests_in_flight", DEFAULT) == 1
    assert registry.get_sample_value("relay_concurrency_limit", DEFAULT) == 3
    assert registry.get_sample_value("relay_accepted_events_per_second", DEFAULT) == 0
    assert registry.get_sample_value("relay_throttle_level", DEFAULT) == 2


def test_a_destination_failing_fails_health_and_is_named_in_the_detail() -> None:
    """EU refusing the credentials fails /healthz; US stays ok in the detail; labels apart."""
    clock = FakeClock(10.0)
    metrics = RelayMetrics(
        monotonic=clock, wall_clock=lambda: 1.5e9, destinations=("default", "eu")
    )
    metrics.tick_succeeded()
    assert metrics.health()[0] is False  # EU has not succeeded yet
    metrics.tick_succeeded(destination="eu")
    assert metrics.health()[0] is True
    metrics.set_auth_error("HTTP 401: bad credentials", destination="eu")
    healthy, body = metrics.health()
    assert not healthy
    assert body["auth_error"] == "HTTP 401: bad credentials"
    assert body["destinations"]["eu"]["status"] == "failing"
    assert body["destinations"]["default"]["status"] == "ok"
    sample = metrics.registry.get_sample_value
    assert sample("relay_auth_failing", {"destination": "eu"}) == 1
    assert sample("relay_auth_failing", DEFAULT) == 0
    from relay._delivery.results import DrainResult  # noqa: PLC0415

    metrics.observe_drain(DrainResult(claimed=5, delivered=5), destination="eu")
    assert sample("relay_delivered_total", {"destination": "eu"}) == 5
    assert sample("relay_delivered_total", DEFAULT) == 0


def test_a_destination_pause_is_reported_in_that_destinations_detail() -> None:
    """`relay pause --destination eu` shows as EU's paused; the relay stays healthy."""
    metrics = RelayMetrics(destinations=("default", "eu"))
    metrics.tick_succeeded()
    metrics.tick_succeeded(destination="eu")
    metrics.set_pauses(everything=False, events=[], destinations=["eu"])
    healthy, body = metrics.health()
    assert healthy
    assert body["destinations"]["eu"]["paused"] is True
    assert body["destinations"]["default"]["paused"] is False
    assert body["paused"] is False
