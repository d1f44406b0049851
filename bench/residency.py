"""Data residency: two destinations, each behind its own capped, slow Mixpanel, one ``relay run``.

Two stand-ins run in processes of their own (``python -m relay.testing.mixpanel_standin``), a
US project (destination ``default``) and an EU one (destination ``eu``), each with its own
project id and service account, answering every ``/import`` after ``--latency-ms`` and capping
its project at ``--cap`` events/s over a rolling ``--window`` (seconds), 429 beyond. A
PostgreSQL outbox holds ``--events`` pending events per destination (bulk-loaded, then the
second half given ``destination = 'eu'``); ``relay run`` starts with default settings plus
the EU destination (``RELAY_DESTINATIONS_FILE`` and ``RELAY_DESTINATION_EU_SERVICE_ACCOUNT_SECRET``)
and the bench watches both stand-ins' counters.

Scenarios (``--scenarios``, interleaved run by run):

* ``single`` (the baseline): one destination, ``--events`` events, the US stand-in only;
* ``two``: both destinations, ``--events`` each, drained side by side by one relay;
* ``two-eu-down``: both, the EU stand-in answering 503 throughout: only the US events can
  go, and they must go as fast as in ``single``.

Reported per destination: the rate from its first accepted event to its last and its share of
the cap, the share of its requests answered 429, duplicates (must be 0) and events accepted
(must be all), and the US rate against ``single``'s median in the same invocation.

    .venv/bin/python bench/residency.py --events 60000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from typing import Any

import httpx
import sqlalchemy as sa
from _db import scratch_postgres, settle, truncate
from _loaders import load_rows, new_tag
from _procs import PYTHON, REPO
from _stats import median, print_header, print_table

_RELAY = os.path.join(os.path.dirname(PYTHON), "relay")
_POLL_SECONDS = 0.1
_PROJECTS = {
    "default": {"project_id": "1001", "username": "us-sa", "secret": "us-secret"},
    "eu": {"project_id": "2002", "username": "eu-sa", "secret": "eu-secret"},
}
#: Where the stand-in serves the application API (the check before a first delivery calls it).
_APP_API_PATH = "/api/app"


class _Standin:
    """One project's stand-in in its own process, with latency and a rate cap."""

    def __init__(self, name: str, *, latency_ms: float, cap: float, window: float) -> None:
        self.name = name
        project = _PROJECTS[name]
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
            "--project-id",
            project["project_id"],
            "--username",
            project["username"],
            "--secret",
            project["secret"],
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

    def reset(self) -> None:
        self.http.post(f"{self.url}/_standin/reset").raise_for_status()

    def outage(self, status: int, seconds: float) -> None:
        fault = {"op": "set_outage", "status": status, "seconds": seconds}
        self.http.post(f"{self.url}/_standin/faults", json=fault).raise_for_status()

    def close(self) -> None:
        self.http.close()
        self.process.terminate()
        self.process.wait(timeout=10)


def _env(
    db_url: str, standins: dict[str, _Standin], names: list[str], directory: str
) -> dict[str, str]:
    us = _PROJECTS["default"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env.update(
        RELAY_DATABASE_URL=db_url,
        RELAY_MIXPANEL_API_URL=standins["default"].url,
        RELAY_MIXPANEL_APP_API_URL=standins["default"].url + _APP_API_PATH,
        RELAY_MIXPANEL_PROJECT_ID=us["project_id"],
        RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME=us["username"],
        RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET=us["secret"],
        RELAY_METRICS_PORT="0",
        RELAY_LOG_LEVEL="ERROR",
    )
    if "eu" in names:
        eu = _PROJECTS["eu"]
        path = os.path.join(directory, "destinations.toml")
        with open(path, "w") as file:
            file.write(
                "[destinations.eu]\n"
                'region = "eu"\n'
                f'api_url = "{standins["eu"].url}"\n'
                f'app_api_url = "{standins["eu"].url}{_APP_API_PATH}"\n'
                f'project_id = "{eu["project_id"]}"\n'
                f'service_account_username = "{eu["username"]}"\n'
            )
        env["RELAY_DESTINATIONS_FILE"] = path
        env["RELAY_DESTINATION_EU_SERVICE_ACCOUNT_SECRET"] = eu["secret"]
    return env


def _load(engine: sa.Engine, *, events: int, names: list[str]) -> None:
    """``events`` pending rows per destination of ``names``: ids 1..N default, then eu."""
    truncate(engine)
    tag = new_tag()
    load_rows(engine, count=events, tag=tag)
    if "eu" in names:
        load_rows(engine, count=events, tag=tag, first=events + 1)
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE relay_outbox SET destination = 'eu' WHERE id > :n"),
                {"n": events},
            )
    settle(engine)


def _watch(
    standins: dict[str, _Standin],
    names: list[str],
    awaited: list[str],
    *,
    events: int,
    deadline: float,
) -> tuple[dict[str, float], dict[str, float], dict[str, dict[str, Any]]]:
    """Poll the stand-ins until every ``awaited`` destination has all its events accepted:
    when each destination's first and last event arrived, and its final counters."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    stats: dict[str, dict[str, Any]] = {}
    while True:
        now = time.monotonic()
        for name in names:
            stats[name] = standins[name].stats()
            accepted = int(stats[name]["unique"])
            if accepted and name not in first:
                first[name] = now
            if accepted >= events and name not in last:
                last[name] = now
        if all(name in last for name in awaited):
            return first, last, stats
        if now > deadline:
            raise SystemExit(f"timed out: {stats}")
        time.sleep(_POLL_SECONDS)


def _run_once(
    db_url: str,
    standins: dict[str, _Standin],
    scenario: str,
    *,
    directory: str,
    events: int,
    cap: float,
    timeout: float,
) -> dict[str, dict[str, Any]]:
    """One run of ``scenario``: per destination measured, its rate and counters."""
    names = ["default"] if scenario == "single" else ["default", "eu"]
    # The destinations whose events must all arrive before the run ends.
    awaited = ["default"] if scenario != "two" else names
    engine = sa.create_engine(db_url)
    try:
        _load(engine, events=events, names=names)
        for standin in standins.values():
            standin.reset()
        if scenario == "two-eu-down":
            standins["eu"].outage(503, timeout)
        started = time.monotonic()
        relay = subprocess.Popen(
            [_RELAY, "run"],
            env=_env(db_url, standins, names, directory),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )
        try:
            first, last, stats = _watch(
                standins, names, awaited, events=events, deadline=started + timeout
            )
        finally:
            relay.terminate()
            relay.wait(timeout=60)
            if scenario == "two-eu-down":
                standins["eu"].outage(503, 0.0)
        with engine.connect() as conn:
            dead = conn.exec_driver_sql(
                "SELECT count(*) FROM relay_outbox WHERE state = 'dead'"
            ).scalar_one()
    finally:
        engine.dispose()
    measured: dict[str, dict[str, Any]] = {}
    for name in awaited:
        s = stats[name]
        requests = int(s["requests"])
        rate = events / max(last[name] - first[name], 1e-9)
        measured[name] = {
            "rate": rate,
            "cap_share": rate / cap,
            "throttled_share": int(s["by_status"].get("429", 0)) / max(requests, 1),
            "duplicates": int(s["duplicates"]),
            "unique": int(s["unique"]),
            "dead": int(dead),
        }
    if scenario == "two-eu-down":
        eu = stats["eu"]
        measured["eu (down)"] = {
            "unique": int(eu["unique"]),
            "requests": int(eu["requests"]),
            "by_status": eu["by_status"],
        }
    return measured


def main() -> int:
    """Run the scenarios ``--runs`` times each, interleaved; print medians and ranges."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=60_000, help="per destination")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=300.0)
    parser.add_argument("--cap", type=float, default=5_000.0)
    parser.add_argument("--window", type=float, default=1.0)
    parser.add_argument("--scenarios", default="single,two,two-eu-down")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    print_header()
    print(
        f"events {args.events} per destination, stand-ins: latency {args.latency_ms:g} ms, "
        f"cap {args.cap:g} events/s each over {args.window:g} s"
    )
    standins = {
        name: _Standin(name, latency_ms=args.latency_ms, cap=args.cap, window=args.window)
        for name in _PROJECTS
    }
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    try:
        with scratch_postgres() as db_url, tempfile.TemporaryDirectory() as directory:
            for _ in range(args.runs):
                for scenario in scenarios:
                    measured = _run_once(
                        db_url,
                        standins,
                        scenario,
                        directory=directory,
                        events=args.events,
                        cap=args.cap,
                        timeout=args.timeout,
                    )
                    for name, values in measured.items():
                        results.setdefault((scenario, name), []).append(values)
                    print(scenario, json.dumps(measured, default=str), flush=True)
    finally:
        for standin in standins.values():
            standin.close()
    baseline = [r["rate"] for r in results.get(("single", "default"), [])]
    rows = []
    for (scenario, name), runs in results.items():
        if "rate" not in runs[0]:
            eu = runs[0]
            rows.append([scenario, name, "-", "-", "-", "-", f"accepted {eu['unique']}", "-"])
            continue

        def col(key: str, runs: list[dict[str, Any]] = runs) -> str:
            values = [r[key] for r in runs]
            return f"{median(values):.3g} ({min(values):.3g}-{max(values):.3g})"

        versus = f"{median([r['rate'] for r in runs]) / median(baseline):.2f}" if baseline else "-"
        rows.append(
            [
                scenario,
                name,
                col("rate"),
                col("cap_share"),
                col("throttled_share"),
                versus,
                ",".join(str(r["unique"]) for r in runs),
                ",".join(f"{r['duplicates']}/{r['dead']}" for r in runs),
            ]
        )
    print_table(
        [
            "scenario",
            "destination",
            "events/s",
            "share of cap",
            "429 share",
            "rate / single",
            "accepted",
            "dups/dead",
        ],
        rows,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
