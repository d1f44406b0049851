"""``relay run`` against Mixpanel's real limit: latency per request and a per-project rate cap.

A PostgreSQL outbox holds ``--events`` pending events; the Mixpanel stand-in runs in a process
of its own (``python -m relay.testing.mixpanel_standin``) answering every ``/import`` after
``--latency-ms`` and capping the project at ``--cap`` events/s over a rolling ``--window``
(seconds; Mixpanel's is a minute, a shorter one makes the cap bite at this scale), 429 beyond.
``relay run`` then starts with default settings and the bench watches the stand-in's counters
until every event was accepted. Reported per run: the rate from the first accepted event to the
last (and its share of the cap), the share of requests throttled, duplicates (must be 0),
events accepted (must be all), dead rows and the highest attempt count in the outbox (must be
0 and 1: a 429 never uses an attempt), and the relay's peak RSS.

Scenarios (``--scenarios``): ``adaptive`` (defaults: ``RELAY_MAX_IN_FLIGHT=16``), ``fixed`` (the
baseline, ``RELAY_MAX_IN_FLIGHT=0``: the old fixed ``RELAY_DRAIN_CONCURRENCY=2`` threads),
``recovery`` (defaults, the stand-in answering every request 429 for ``--throttle-seconds``
first: reports the seconds from the throttle lifting to the first accepted request, and to the
accepted rate over a trailing 3 s reaching 90% of the cap, and of the ``adaptive`` runs' median
rate in the same invocation: on a loaded machine the relay's CPU, not the cap, may bound it).
Each run also reports the relay's and the stand-in's CPU seconds per 1,000 events. ``--plot``
samples the relay's ``/metrics`` (its adaptive limit and requests in flight) every poll and
prints, per run, a text plot of the limit and the accepted rate over time.

    .venv/bin/python bench/rate_cap.py --events 120000 --runs 3
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import subprocess
import time
from typing import Any

import httpx
import psutil
import sqlalchemy as sa
from _db import scratch_postgres, settle, truncate
from _loaders import load_rows, new_tag
from _procs import PYTHON, REPO, RssSampler
from _stats import median, print_header, print_table

from relay.testing.mixpanel_standin import MixpanelStandin

_CREDENTIALS = MixpanelStandin(retain_events=False)  # never started: its defaults only
_RELAY = os.path.join(os.path.dirname(PYTHON), "relay")
_POLL_SECONDS = 0.1
_TRAILING_SECONDS = 3.0


class _Standin:
    """The stand-in in its own process, with latency and a rate cap."""

    def __init__(self, *, latency_ms: float, cap: float, window: float) -> None:
        command = [
            PYTHON,
            "-m",
            "relay.testing.mixpanel_standin",
            "--port",
            "0",
            "--no-retain",
            "--latency-ms",
            str(latency_ms),
            "--rate-limit",
            str(cap),
            "--rate-window",
            str(window),
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        self.http = httpx.Client(timeout=10)

    def stats(self) -> dict[str, Any]:
        response = self.http.get(f"{self.url}/_standin/stats")
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    def reset(self) -> None:
        self.http.post(f"{self.url}/_standin/reset").raise_for_status()

    def outage_429(self, seconds: float) -> None:
        fault = {"op": "set_outage", "status": 429, "seconds": seconds}
        self.http.post(f"{self.url}/_standin/faults", json=fault).raise_for_status()

    def close(self) -> None:
        self.http.close()
        self.process.terminate()
        self.process.wait(timeout=10)


def _run_once(
    db_url: str,
    standin: _Standin,
    *,
    events: int,
    cap: float,
    env_extra: dict[str, str],
    throttle_seconds: float,
    timeout: float,
    plot: bool = False,
) -> dict[str, Any]:
    engine = sa.create_engine(db_url)
    metrics_port = _free_port() if plot else 0
    try:
        truncate(engine)
        load_rows(engine, count=events, tag=new_tag())
        settle(engine)
        standin.reset()
        if throttle_seconds:
            standin.outage_429(throttle_seconds)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
        env.update(
            RELAY_DATABASE_URL=db_url,
            RELAY_MIXPANEL_API_URL=standin.url,
            RELAY_MIXPANEL_PROJECT_ID=_CREDENTIALS.project_id,
            RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME=_CREDENTIALS.username,
            RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET=_CREDENTIALS.secret,
            RELAY_METRICS_PORT=str(metrics_port),
            RELAY_LOG_LEVEL="ERROR",
            **env_extra,
        )
        standin_cpu = standin.cpu_seconds()
        started = time.monotonic()
        lifted = started + throttle_seconds
        relay = subprocess.Popen([_RELAY, "run"], env=env, cwd=REPO, stdout=subprocess.DEVNULL)
        sampler = RssSampler(relay.pid)
        samples: list[tuple[float, int]] = []
        limits: list[tuple[float, float, float, float, float]] = []
        first_at: float | None = None
        try:
            while True:
                stats = standin.stats()
                now = time.monotonic()
                samples.append((now, int(stats["accepted"])))
                if metrics_port:
                    limits.append((now, *_limiter_metrics(metrics_port)))
                if first_at is None and stats["accepted"]:
                    first_at = now
                if stats["unique"] >= events:
                    break
                if now - started > timeout:
                    raise SystemExit(f"timed out with {stats['unique']} of {events} accepted")
                time.sleep(_POLL_SECONDS)
            done_at = time.monotonic()
            usage = psutil.Process(relay.pid).cpu_times()
            relay_cpu = float(usage.user + usage.system)
        finally:
            relay.terminate()
            relay.wait(timeout=30)
            sampler.stop()
        with engine.connect() as conn:
            dead = conn.exec_driver_sql(
                "SELECT count(*) FROM relay_outbox WHERE state = 'dead'"
            ).scalar_one()
            attempts = conn.exec_driver_sql("SELECT max(attempts) FROM relay_outbox").scalar_one()
    finally:
        engine.dispose()
    assert first_at is not None
    requests = int(stats["requests"])
    throttled = int(stats["by_status"].get("429", 0))
    rate = events / max(done_at - first_at, 1e-9)
    result = {
        "rate": rate,
        "cap_share": rate / cap,
        "throttled_share": throttled / max(requests, 1),
        "requests": requests,
        "duplicates": int(stats["duplicates"]),
        "unique": int(stats["unique"]),
        "dead": int(dead),
        "max_attempts": int(attempts or 0),
        "rss_mb": sampler.peak / 2**20,
        "elapsed": done_at - started,
    }
    result["relay_cpu_ms_per_1k"] = relay_cpu / events * 1e6
    result["standin_cpu_ms_per_1k"] = (standin.cpu_seconds() - standin_cpu) / events * 1e6
    if plot:
        _print_plot(samples, limits, started=started, cap=cap)
    if throttle_seconds:
        result["resumed"] = next((t - lifted for t, a in samples if a > 0), float("nan"))
        result["recovery"] = _recovery_seconds(samples, lifted=lifted, rate=cap)
        result["samples"] = samples
        result["lifted_at"] = lifted
        # The rate after the throttle lifted, to the last event.
        after = [s for s in samples if s[0] >= lifted]
        if len(after) >= 2:
            result["rate"] = (after[-1][1] - after[0][1]) / max(after[-1][0] - after[0][0], 1e-9)
            result["cap_share"] = result["rate"] / cap
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _limiter_metrics(port: int) -> tuple[float, float, float, float]:
    """The relay's adaptive limit, requests in flight, and the seconds and count of its requests
    so far (``relay_send_seconds``, every status): NaN while /metrics is not up."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=0.5).text
    except httpx.HTTPError:
        return (math.nan,) * 4
    values = {"relay_concurrency_limit": math.nan, "relay_requests_in_flight": math.nan}
    sums = {"relay_send_seconds_sum": 0.0, "relay_send_seconds_count": 0.0}
    for line in text.splitlines():
        # ``relay_concurrency_limit{destination="default"} 2.5``: one destination here.
        series, _, value = line.rpartition(" ")
        name = series.partition("{")[0]
        if name in values:
            values[name] = float(value)
        elif name in sums:
            sums[name] += float(value)
    return (
        values["relay_concurrency_limit"],
        values["relay_requests_in_flight"],
        sums["relay_send_seconds_sum"],
        sums["relay_send_seconds_count"],
    )


def _print_plot(
    samples: list[tuple[float, int]],
    limits: list[tuple[float, float, float, float, float]],
    *,
    started: float,
    cap: float,
    step: float = 0.5,
) -> None:
    """Per ``step`` seconds: the limit (``#``, one per 0.25 request), requests in flight, the
    mean round trip of the requests answered in the step, and the accepted rate."""
    print(
        f"{'t s':>6} {'limit':>6} {'in fl.':>6} {'rtt ms':>6} {'acc./s':>7}"
        "  limit: # = 0.25 request"
    )
    t = started
    end = samples[-1][0]
    while t < end:
        window = [x for x in limits if t <= x[0] < t + step]
        inside = [a for at, a in samples if t <= at < t + step]
        before = [a for at, a in samples if at < t]
        if window and inside:
            limit = max(x[1] for x in window)
            in_flight = max(x[2] for x in window)
            rate = (inside[-1] - (before[-1] if before else 0)) / step
            earlier = [x for x in limits if x[0] < t] or window[:1]
            answered = window[-1][4] - earlier[-1][4]
            rtt = (window[-1][3] - earlier[-1][3]) / answered * 1000 if answered > 0 else math.nan
            bar = "" if math.isnan(limit) else "#" * round(limit * 4)  # NaN: /metrics not up
            print(f"{t - started:6.1f} {limit:6.2f} {in_flight:6.0f} {rtt:6.0f} {rate:7.0f}  {bar}")
        t += step
    print(f"(cap {cap:g} events/s)")


def _recovery_seconds(samples: list[tuple[float, int]], *, lifted: float, rate: float) -> float:
    """Seconds from ``lifted`` until the accepted rate over a trailing 3 s hit 90% of ``rate``."""
    for i, (at, accepted) in enumerate(samples):
        if at < lifted:
            continue
        earlier = [(t, a) for t, a in samples[:i] if t <= at - _TRAILING_SECONDS]
        if not earlier:
            continue
        t0, a0 = earlier[-1]
        if (accepted - a0) / (at - t0) >= 0.9 * rate:
            return at - lifted
    return float("nan")


def main() -> int:
    """Run the scenarios ``--runs`` times each, interleaved; print medians and ranges."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=120_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=300.0)
    parser.add_argument("--cap", type=float, default=10_000.0)
    parser.add_argument("--window", type=float, default=1.0)
    parser.add_argument("--throttle-seconds", type=float, default=60.0)
    parser.add_argument("--scenarios", default="adaptive,fixed,recovery")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--plot", action="store_true", help="text plot of the limit per run")
    args = parser.parse_args()
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    setups: dict[str, tuple[dict[str, str], float]] = {
        "adaptive": ({}, 0.0),
        "fixed": ({"RELAY_MAX_IN_FLIGHT": "0"}, 0.0),
        "recovery": ({}, args.throttle_seconds),
    }
    print_header()
    print(
        f"events {args.events}, stand-in latency {args.latency_ms:g} ms, cap {args.cap:g} "
        f"events/s over {args.window:g} s, throttle {args.throttle_seconds:g} s (recovery)"
    )
    results: dict[str, list[dict[str, Any]]] = {s: [] for s in scenarios}
    standin = _Standin(latency_ms=args.latency_ms, cap=args.cap, window=args.window)
    try:
        with scratch_postgres() as db_url:
            for _ in range(args.runs):
                for scenario in scenarios:
                    env_extra, throttle = setups[scenario]
                    result = _run_once(
                        db_url,
                        standin,
                        events=args.events,
                        cap=args.cap,
                        env_extra=env_extra,
                        throttle_seconds=throttle,
                        timeout=args.timeout,
                        plot=args.plot,
                    )
                    results[scenario].append(result)
                    hidden = ("samples", "lifted_at")
                    shown = {k: round(v, 3) for k, v in result.items() if k not in hidden}
                    print(scenario, shown, flush=True)
    finally:
        standin.close()
    adaptive = [r["rate"] for r in results.get("adaptive", [])]
    for run in results.get("recovery", []):
        samples = run.pop("samples")
        lifted = run.pop("lifted_at")
        if adaptive:
            run["recovery_vs_adaptive"] = _recovery_seconds(
                samples, lifted=lifted, rate=median(adaptive)
            )
    rows = []
    for scenario, runs in results.items():

        def col(key: str, runs: list[dict[str, Any]] = runs) -> str:
            values = [r[key] for r in runs if key in r]
            if not values:
                return "-"
            return f"{median(values):.3g} ({min(values):.3g}-{max(values):.3g})"

        rows.append(
            [
                scenario,
                col("rate"),
                col("cap_share"),
                col("throttled_share"),
                col("resumed"),
                col("recovery"),
                col("recovery_vs_adaptive"),
                ",".join(str(r["duplicates"]) for r in runs),
                ",".join(str(r["dead"]) for r in runs),
                ",".join(str(r["max_attempts"]) for r in runs),
                col("rss_mb"),
                col("relay_cpu_ms_per_1k"),
                col("standin_cpu_ms_per_1k"),
            ]
        )
    print_table(
        [
            "scenario",
            "events/s",
            "share of cap",
            "429 share",
            "resumed s",
            "to 90% cap s",
            "to 90% adaptive s",
            "dups",
            "dead",
            "max attempts",
            "relay RSS MB",
            "relay CPU ms/1k",
            "stand-in CPU ms/1k",
        ],
        rows,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
