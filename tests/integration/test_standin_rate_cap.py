"""The stand-in's latency and per-project rate cap, over real HTTP on loopback."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner

from relay.cli import main as relay_cli
from relay.testing.mixpanel_standin import MixpanelStandin

NOW_S = 1_700_000_000.0
NOW_MS = int(NOW_S * 1000)
#: Mixpanel's RateLimitExceeded example (the ingestion spec, l.1775-1791).
DOCUMENTED_429 = {
    "code": 429,
    "error": "Project exceeded rate limits. Please retry the request with exponential backoff.",
    "status": "Too Many Requests",
}


def _records(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "event": "svc.test.thing_done",
            "properties": {"time": NOW_MS, "distinct_id": "u", "$insert_id": f"ins-{n:05d}"},
        }
        for n in range(start, start + count)
    ]


def _post(http: httpx.Client, standin: MixpanelStandin, records: list[Any]) -> httpx.Response:
    return http.post(
        f"{standin.url}/import",
        params={"strict": "1", "project_id": standin.project_id},
        content=orjson.dumps(records),
        headers={"Content-Type": "application/json"},
        auth=(standin.username, standin.secret),
    )


def test_requests_over_the_cap_get_mixpanels_documented_429_and_store_nothing() -> None:
    """Beyond the project's events per window the answer is the documented 429, nothing kept."""
    with (
        MixpanelStandin(now=lambda: NOW_S, rate_limit=1, rate_window_seconds=40) as standin,
        httpx.Client(timeout=5.0) as http,
    ):
        assert _post(http, standin, _records(0, 30)).status_code == 200
        refused = _post(http, standin, _records(30, 20))
        assert refused.status_code == 429
        assert refused.json() == DOCUMENTED_429
        assert standin.stats().unique == 30
        assert standin.stats().by_status == {200: 1, 429: 1}


def test_reset_opens_a_fresh_window() -> None:
    """After reset the cap counts from nothing again."""
    with (
        MixpanelStandin(now=lambda: NOW_S, rate_limit=1, rate_window_seconds=300) as standin,
        httpx.Client(timeout=5.0) as http,
    ):
        assert _post(http, standin, _records(0, 300)).status_code == 200
        assert _post(http, standin, _records(300, 1)).status_code == 429
        standin.reset()
        assert _post(http, standin, _records(300, 1)).status_code == 200


def test_latency_holds_the_answer() -> None:
    """With latency, a client more impatient than it gets no answer (the records are stored)."""
    with (
        MixpanelStandin(now=lambda: NOW_S, latency_ms=30_000) as standin,
        httpx.Client(timeout=0.2) as impatient,
    ):
        with pytest.raises(httpx.ReadTimeout):
            _post(impatient, standin, _records(0, 1))
        assert standin.stats().unique == 1


@pytest.mark.parametrize("refusal", ["outage", "fault"])
def test_latency_holds_refusals_too(refusal: str) -> None:
    """A 429 of an outage or an injected 503 crosses the network as an acceptance does: an
    instant refusal would teach a client a round trip of a millisecond."""
    with (
        MixpanelStandin(now=lambda: NOW_S, latency_ms=30_000) as standin,
        httpx.Client(timeout=0.5) as impatient,
    ):
        if refusal == "outage":
            standin.set_outage(429, None)
        else:
            standin.fail_next(503)
        with pytest.raises(httpx.ReadTimeout):
            _post(impatient, standin, _records(0, 1))
        assert standin.stats().unique == 0


def test_held_requests_are_served_side_by_side() -> None:
    """Requests held by the latency do not queue behind each other: all are read at once."""
    clients = 8
    with MixpanelStandin(now=lambda: NOW_S, latency_ms=60_000) as standin:

        def post(n: int) -> type[BaseException] | int:
            with httpx.Client(timeout=3.0) as http:
                try:
                    return _post(http, standin, _records(n, 1)).status_code
                except httpx.ReadTimeout as exc:
                    return type(exc)

        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            outcomes = list(pool.map(post, range(clients)))
        # Every request gave up waiting, yet every one had been read and judged meanwhile.
        assert outcomes == [httpx.ReadTimeout] * clients
        assert standin.stats().unique == clients


def test_relay_standin_refuses_a_negative_latency() -> None:
    """`relay standin --latency-ms -1` is a usage error (exit 2), nothing served."""
    result = CliRunner().invoke(relay_cli, ["standin", "--latency-ms", "-1"])
    assert result.exit_code == 2
    assert "--latency-ms" in result.output


def test_the_python_api_refuses_a_negative_latency() -> None:
    """A negative latency is refused at construction."""
    with pytest.raises(ValueError, match="latency_ms"):
        MixpanelStandin(latency_ms=-1)
