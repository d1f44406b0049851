"""Latency from commit to "accepted by Mixpanel", at a steady offered rate, on PostgreSQL.

Producer threads in this process commit one business transaction per event (``track()``
inside a ``Session``; nothing but its INSERT) on a fixed schedule that adds up
to ``--rate`` events/s (open loop: a late thread catches up, it never lowers the offered
rate). The relay daemon (``relay run``'s code: APScheduler, the watcher's wake-up, drain) runs in a
process of its own, the stand-in in another; when the run ends the stand-in reports when
each ``$insert_id`` arrived. Both sides read ``time.monotonic()`` (CLOCK_MONOTONIC, one clock
for every process on the machine), so latency = arrival at the stand-in - return of commit.

Baseline, same producers, same rate, same stand-in, no outbox: after each commit the thread
hands the event to one shared ``mixpanel.BufferedConsumer`` (50 events per request, sent by
the thread whose event fills the buffer), the way events are sent today.

By default the producers write each event with relay's own table (the outbox row, what
``track()`` writes) rather than through ``track()`` itself, whose validation costs too much
Python CPU to offer 1,000 events/s from one process on 2 cores; ``--producer track`` uses
``track()``. Issue 20's target (p99 <= 100 ms at 1,000 events/s from 32 connections, one event
per transaction):

    .venv/bin/python bench/latency.py --producers 32 --events-per-transaction 1 [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import _survey_event  # noqa: F401 - registers the benchmarked event
from _db import DEFAULT_ADMIN_URL, retry_if_restarted, scratch_postgres
from _loaders import survey_properties
from _procs import Worker, WorkerError, start_worker
from _standin import STANDIN_PROJECT_ID, STANDIN_SECRET, STANDIN_USERNAME
from _stats import median, print_header, print_table
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from relay._config import WAKE_PROBE_SECONDS
from relay._database import create_engine
from relay._tracking import track

TARGET_P99_MS = 100.0
EVENT = "svc.surveys.survey_delivered"
PRODUCERS = 8


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


class Producers:
    """``producers`` threads offering ``rate`` events/s in total for ``seconds``."""

    def __init__(
        self,
        rate: float,
        seconds: float,
        send: Callable[[int], list[tuple[str, float]]],
        producers: int = PRODUCERS,
        per_transaction: int = 1,
    ) -> None:
        self.committed: dict[str, float] = {}
        self.late = 0
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._rate = rate
        self._seconds = seconds
        self._send = send
        self._producers = producers
        self._per_transaction = per_transaction

    def run(self) -> None:
        start = time.monotonic() + 0.2
        threads = [
            threading.Thread(target=self._produce, args=(k, start)) for k in range(self._producers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.errors:
            # Typically PostgreSQL restarted by another test run: the run measures nothing.
            raise WorkerError(f"a producer failed: {self.errors[0]!r}") from self.errors[0]

    def _produce(self, k: int, start: float) -> None:
        producers = self._producers
        tx_rate = self._rate / self._per_transaction
        interval = producers / tx_rate
        total = int(tx_rate * self._seconds / producers)
        for i in range(total):
            due = start + (i * producers + k) / tx_rate
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            elif wait < -interval:
                with self._lock:
                    self.late += 1
            try:
                sent = self._send(i * producers + k)
            except Exception as exc:  # noqa: BLE001 - reported by run(), which fails the run
                with self._lock:
                    self.errors.append(exc)
                return
            with self._lock:
                self.committed.update(sent)


def tracked_sender(
    engine: Engine, per_transaction: int
) -> Callable[[int], list[tuple[str, float]]]:
    """``track()`` in business transactions, through a ``Session``, as an app does."""

    def send(n: int) -> list[tuple[str, float]]:
        keys = []
        with Session(engine) as session, session.begin():
            for j in range(per_transaction):
                insert_id = track(
                    session,
                    event=EVENT,
                    distinct_id=f"5d1c7a3e-0000-4000-8000-{(n + j) % 5000:012d}",
                    properties=survey_properties(n + j),
                    strict=True,
                )
                assert insert_id is not None
                keys.append(insert_id)
        committed_at = time.monotonic()
        return [(key, committed_at) for key in keys]

    return send


def inserted_sender(
    engine: Engine, per_transaction: int
) -> Callable[[int], list[tuple[str, float]]]:
    """What ``track()`` writes, minus its validation: the outbox rows (one multi-row
    INSERT), through relay's own table.

    ``track()`` costs some 1.5 ms of Python CPU per event here, so one process on this
    2-core machine cannot offer 1,000 of them per second and leave the relay any CPU; the
    relay's side of the path (commit, the watcher's probe, claim, send, ack) is the same.
    """
    import sqlalchemy as sa  # noqa: PLC0415

    from relay._tables import outbox  # noqa: PLC0415
    from relay._tracking import prepare_event  # noqa: PLC0415

    # Validated ahead, outside the timed loop: a few thousand kinds of event are enough.
    prepared_events = [
        prepare_event(
            event=EVENT,
            distinct_id=f"5d1c7a3e-0000-4000-8000-{n % 5000:012d}",
            properties=survey_properties(n),
        )
        for n in range(2000)
    ]

    def send(n: int) -> list[tuple[str, float]]:
        now = dt.datetime.now(dt.UTC)
        rows = []
        for j in range(per_transaction):
            prepared = prepared_events[(n + j) % len(prepared_events)]
            rows.append(
                {
                    "insert_id": str(uuid.uuid4()),
                    "event": prepared.event,
                    "distinct_id": prepared.distinct_id,
                    "time_ms": prepared.time_ms,
                    "properties": prepared.properties,
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        with engine.begin() as conn:
            # One multi-row INSERT per transaction: the load generator's own CPU stays small
            # next to the relay's on this 2-core machine.
            conn.execute(sa.insert(outbox), rows)
        committed_at = time.monotonic()
        return [(row["insert_id"], committed_at) for row in rows]

    return send


def buffered_sender(
    engine: Engine, url: str, per_transaction: int
) -> Callable[[int], list[tuple[str, float]]]:
    """Commit a transaction, then hand the event to one shared ``mixpanel.BufferedConsumer``
    (50 per request, flushed by the thread that fills it), as the seed's job does today."""
    import sqlalchemy as sa  # noqa: PLC0415
    from mixpanel import BufferedConsumer, Mixpanel, ServiceAccountCredentials  # noqa: PLC0415

    credentials = ServiceAccountCredentials(
        username=STANDIN_USERNAME, secret=STANDIN_SECRET, project_id=STANDIN_PROJECT_ID
    )
    consumer = BufferedConsumer(
        max_size=50, import_url=f"{url}/import", retry_limit=0, credentials=credentials
    )
    mixpanel = Mixpanel("standin-token", consumer=consumer)
    lock = threading.Lock()

    def send(n: int) -> list[tuple[str, float]]:
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT 1"))
        committed_at = time.monotonic()
        keys = [str(uuid.uuid4()) for _ in range(per_transaction)]
        with lock:
            for j, insert_id in enumerate(keys):
                mixpanel.import_data(
                    api_key=None,
                    distinct_id=f"5d1c7a3e-0000-4000-8000-{(n + j) % 5000:012d}",
                    event_name=EVENT,
                    timestamp=int(time.time() * 1000),
                    properties={**survey_properties(n + j), "$insert_id": insert_id},
                )
        return [(key, committed_at) for key in keys]

    send.flush = consumer.flush  # type: ignore[attr-defined]
    return send


def start_standin(log_dir: Path) -> tuple[Worker, str]:
    worker = start_worker("standin-log", env={}, log_dir=log_dir)
    assert worker.process.stdout is not None
    url = worker.process.stdout.readline().strip()
    return worker, url


def stop_standin(worker: Worker) -> dict[str, float]:
    worker.process.send_signal(signal.SIGTERM)
    arrivals: dict[str, float] = worker.wait(timeout=60)["arrivals"]
    return arrivals


def latencies(committed: dict[str, float], arrivals: dict[str, float]) -> tuple[list[float], int]:
    """Milliseconds from commit to arrival per event, and how many never arrived."""
    missing = [key for key in committed if key not in arrivals]
    return [(arrivals[k] - t) * 1000 for k, t in committed.items() if k in arrivals], len(missing)


def run_relay(url: str, args: argparse.Namespace, log_dir: Path) -> dict[str, float]:
    standin, standin_url = start_standin(log_dir)
    env = {
        "RELAY_DATABASE_URL": url,
        "RELAY_MIXPANEL_API_URL": standin_url,
        "RELAY_MIXPANEL_PROJECT_ID": STANDIN_PROJECT_ID,
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME": STANDIN_USERNAME,
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET": STANDIN_SECRET,
        "RELAY_METRICS_PORT": "0",
        "RELAY_LOG_LEVEL": "INFO",
        "RELAY_WAKE_PROBE_SECONDS": str(args.wake_probe_seconds),
    }
    daemon = start_worker("relay-daemon", env=env, log_dir=log_dir)
    engine = create_engine(url, pool_size=args.producers + 1)
    try:
        daemon.go()
        time.sleep(2.0)  # the daemon connects and starts watching
        k = args.events_per_transaction
        sender = (
            tracked_sender(engine, k) if args.producer == "track" else inserted_sender(engine, k)
        )
        producers = Producers(args.rate, args.seconds, sender, args.producers, k)
        started = time.monotonic()
        producers.run()
        offered = len(producers.committed) / (time.monotonic() - started)
        time.sleep(2.0)  # the last events drain
    finally:
        engine.dispose()
        daemon.process.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        arrivals = stop_standin(standin)
    return summarise(producers, arrivals, offered)


def run_direct(url: str, args: argparse.Namespace, log_dir: Path) -> dict[str, float]:
    standin, standin_url = start_standin(log_dir)
    engine = create_engine(url, pool_size=args.producers + 1)
    try:
        k = args.events_per_transaction
        sender = buffered_sender(engine, standin_url, k)
        producers = Producers(args.rate, args.seconds, sender, args.producers, k)
        started = time.monotonic()
        producers.run()
        offered = len(producers.committed) / (time.monotonic() - started)
        sender.flush()  # type: ignore[attr-defined]
    finally:
        engine.dispose()
        arrivals = stop_standin(standin)
    return summarise(producers, arrivals, offered)


def summarise(producers: Producers, arrivals: dict[str, float], offered: float) -> dict[str, float]:
    values, missing = latencies(producers.committed, arrivals)
    if missing:
        raise SystemExit(f"{missing} committed events never reached the stand-in")
    return {
        "offered": offered,
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values),
        "late": producers.late,
        "events": len(values),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="events offered per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--producers", type=int, default=PRODUCERS, help="producer threads")
    parser.add_argument(
        "--events-per-transaction",
        type=int,
        default=5,
        help="events committed together (the offered rate stays --rate events/s)",
    )
    parser.add_argument(
        "--producer",
        choices=("insert", "track"),
        default="insert",
        help="write each event with a plain outbox INSERT (default) or with track()",
    )
    parser.add_argument(
        "--wake-probe-seconds",
        type=float,
        default=WAKE_PROBE_SECONDS,
        help="the relay's RELAY_WAKE_PROBE_SECONDS",
    )
    parser.add_argument("--quick", action="store_true", help="8 s runs, 1 run")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.runs = 8.0, 1

    print_header()
    print(
        f"{args.rate:,.0f} events/s offered by {args.producers} threads, "
        f"{args.events_per_transaction} per transaction ({args.producer}), "
        f"{args.seconds:.0f} s per run, {args.runs} runs"
    )
    results: dict[str, list[dict[str, float]]] = {"relay": [], "direct": []}
    with contextlib.ExitStack() as stack:
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="relay_bench_")))
        url = stack.enter_context(scratch_postgres(args.admin_url))
        for run in range(1, args.runs + 1):
            for name, runner in (("direct", run_direct), ("relay", run_relay)):
                figures = retry_if_restarted(
                    functools.partial(runner, url, args, log_dir), server_url=args.admin_url
                )
                results[name].append(figures)
                print(
                    f"run {run} {name:<6} offered {figures['offered']:7,.0f}/s  "
                    f"p50 {figures['p50']:6.1f} ms  p90 {figures['p90']:6.1f} ms  "
                    f"p99 {figures['p99']:6.1f} ms  max {figures['max']:7.1f} ms  "
                    f"late sends {figures['late']:.0f}",
                    flush=True,
                )
    rows = []
    for name, label in (
        ("direct", "baseline: BufferedConsumer at commit"),
        ("relay", "relay daemon (outbox, watcher)"),
    ):
        r = results[name]
        rows.append(
            [
                label,
                f"{median([x['offered'] for x in r]):,.0f}",
                f"{median([x['p50'] for x in r]):.1f}",
                f"{median([x['p90'] for x in r]):.1f}",
                f"{median([x['p99'] for x in r]):.1f}",
                f"{median([x['max'] for x in r]):.1f}",
            ]
        )
    print()
    print_table(
        [f"median of {args.runs}", "offered/s", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows
    )
    p99 = median([x["p99"] for x in results["relay"]])
    base = median([x["p99"] for x in results["direct"]])
    print(
        f"\ntarget p99 <= {TARGET_P99_MS:.0f} ms: {p99:.1f} ms "
        f"({'met' if p99 <= TARGET_P99_MS else 'missed'}); p99 relay / baseline "
        f"{p99 / base:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
