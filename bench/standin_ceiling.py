"""How many events per second the Mixpanel stand-in itself can take.

The stand-in runs in its own process (``python -m relay.testing.mixpanel_standin``), so the
figure is its own ceiling on one core (one Python process, one GIL), not shared with the client.
The client posts pre-encoded, pre-gzipped 2000-event batches with httpx from 1 and 2 threads,
each on its own keep-alive connection; nothing is encoded while the clock runs.

Reports, per thread count, the median over several runs of events/s by wall clock and of
events per CPU-second of the stand-in process (its single-core cost, independent of how busy
the machine is).

    .venv/bin/python bench/standin_ceiling.py [--runs 5] [--batches 30] [--no-retain]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
import zlib

import httpx
import orjson
import psutil
from _standin import STANDIN_PROJECT_ID, STANDIN_SECRET, STANDIN_USERNAME

from relay._mixpanel.encoding import encode_event
from relay._tables import OutboxEvent

BATCH_EVENTS = 2000
GZIP_LEVEL = 1


def _batches(count: int) -> list[bytes]:
    """``count`` gzip bodies of 2000 realistic, distinct events each."""
    now_ms = int(time.time() * 1000)
    bodies = []
    for b in range(count):
        encoded = []
        for n in range(BATCH_EVENTS):
            properties = {
                "employee_id": f"5d1c7a3e-0000-4000-8000-{n:012d}",
                "organization_id": "8a0e8d1c-1111-4222-8333-944455556666",
                "organization_name": "Example Org",
                "role": "admin",
                "impersonation": False,
                "is_cron_job": False,
                "survey_id": f"survey-{n % 50}",
                "channel": "email",
                "recipients": n % 17,
            }
            event = OutboxEvent(
                id=b * BATCH_EVENTS + n,
                insert_id=f"bench-{b:05d}-{n:06d}",
                event="svc.surveys.survey_delivered",
                distinct_id=f"5d1c7a3e-0000-4000-8000-{n:012d}",
                time_ms=now_ms - n,
                properties_json=orjson.dumps(properties).decode(),
                attempts=0,
            )
            encoded.append(encode_event(event))
        body = b"[" + b",".join(encoded) + b"]"
        bodies.append(zlib.compress(body, GZIP_LEVEL, 31))
    return bodies


def _post_all(url: str, bodies: list[bytes], failures: list[int]) -> None:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    with httpx.Client(auth=(STANDIN_USERNAME, STANDIN_SECRET), timeout=30.0) as client:
        for body in bodies:
            response = client.post(url, content=body, headers=headers)
            if response.status_code != 200:
                failures.append(response.status_code)


def _run(
    base_url: str, server: psutil.Process, bodies: list[bytes], threads: int
) -> tuple[float, float]:
    """(events per wall-clock second, events per stand-in CPU-second) for one run."""
    httpx.post(f"{base_url}/_standin/reset", timeout=10.0).raise_for_status()
    url = f"{base_url}/import?strict=1&project_id={STANDIN_PROJECT_ID}"
    failures: list[int] = []
    share = len(bodies) // threads
    workers = [
        threading.Thread(
            target=_post_all, args=(url, bodies[i * share : (i + 1) * share], failures)
        )
        for i in range(threads)
    ]
    cpu_before = sum(server.cpu_times()[:2])
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    cpu = sum(server.cpu_times()[:2]) - cpu_before
    if failures:
        raise SystemExit(f"stand-in refused batches: {failures[:5]}")
    events = share * threads * BATCH_EVENTS
    stats = httpx.get(f"{base_url}/_standin/stats", timeout=10.0).json()
    if stats["accepted"] != events:
        raise SystemExit(f"stand-in accepted {stats['accepted']} of {events} events")
    return events / elapsed, events / cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batches", type=int, default=30, help="2000-event batches per run")
    parser.add_argument("--no-retain", action="store_true", help="stand-in keeps counters only")
    args = parser.parse_args()

    command = [sys.executable, "-m", "relay.testing.mixpanel_standin", "--port", "0"]
    if args.no_retain:
        command.append("--no-retain")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        server = psutil.Process(process.pid)
        bodies = _batches(args.batches)
        print(
            f"stand-in {base_url} (retain events: {not args.no_retain}); "
            f"{args.batches} x {BATCH_EVENTS}-event gzip batches "
            f"({sum(map(len, bodies)) // len(bodies)} bytes compressed each), {args.runs} runs"
        )
        _run(base_url, server, bodies[:2], 1)  # warm-up: connections, allocator, caches
        for threads in (1, 2):
            wall, per_cpu = zip(
                *(_run(base_url, server, bodies, threads) for _ in range(args.runs)), strict=True
            )
            print(
                f"{threads} client thread(s): median {statistics.median(wall):>9,.0f} events/s "
                f"(min {min(wall):,.0f}, max {max(wall):,.0f}); "
                f"stand-in {statistics.median(per_cpu):,.0f} events per CPU-second"
            )
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
