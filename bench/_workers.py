"""Entry points of the benchmark worker processes: ``python bench/_workers.py <role> [args]``.

Each role imports what it needs, prints ``ready``, waits for a line on stdin ("go"), and only
then starts its clock; it ends by printing one JSON line of figures (see :class:`_procs.Worker`).

- ``relay-drain [--profile PATH]``: ``relay drain --json`` in this process.
- ``baseline URL COUNT TAG BASE_MS``: the same events sent with ``mixpanel.BufferedConsumer``.
- ``relay-daemon``: the relay daemon (``relay run``'s code) until SIGTERM.
- ``standin-log``: a stand-in that prints when each accepted ``$insert_id`` arrived.
"""

from __future__ import annotations

import resource
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
from _loaders import EVENT_NAME, event_properties, insert_id
from _standin import STANDIN_PROJECT_ID, STANDIN_SECRET, STANDIN_TOKEN, STANDIN_USERNAME

_CPU_AT_GO = [0.0]


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _ready_then_wait_for_go() -> None:
    print("ready", flush=True)
    if not sys.stdin.readline():
        raise SystemExit(1)
    _CPU_AT_GO[0] = _cpu_seconds()


def _peak_rss_bytes() -> int:
    """This process's peak RSS since its exec: ``VmHWM`` of ``/proc/self/status``.

    Not ``ru_maxrss``: Linux carries the parent's high-water mark into it across fork and exec,
    so a worker started by a bench that had grown large reported the bench's peak, not its own
    (a 500 MB parent: ru_maxrss 526,080 KiB for a child whose VmHWM was 13,552). Elsewhere
    (no ``/proc``) ``ru_maxrss`` is all there is.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _usage() -> dict[str, float]:
    """CPU seconds since "go" (start-up excluded) and the process's peak RSS so far."""
    return {"cpu_seconds": _cpu_seconds() - _CPU_AT_GO[0], "maxrss_bytes": _peak_rss_bytes()}


def _worker_relay_drain(argv: Sequence[str]) -> int:
    """Run ``relay drain --json`` in this process once told to go; print timing and usage.

    With ``--profile PATH``, pyinstrument profiles this process's main thread and writes its
    text report to PATH. The drain itself runs on threads of its own, which pyinstrument does
    not see (they show as one wait): for them, record with py-spy (``drain_throughput.py
    --py-spy``).
    """
    import click  # noqa: PLC0415

    # The CLI imports these inside `relay drain`: load them before "go", off the clock.
    import relay._config  # noqa: PLC0415
    import relay._delivery.drain  # noqa: PLC0415
    import relay._logging  # noqa: PLC0415
    import relay._migrations  # noqa: PLC0415
    import relay._mixpanel.client  # noqa: PLC0415
    import relay.cli  # noqa: PLC0415

    profile_path = argv[argv.index("--profile") + 1] if "--profile" in argv else None
    _ready_then_wait_for_go()
    profiler = None
    if profile_path:
        from pyinstrument import Profiler  # noqa: PLC0415

        profiler = Profiler(interval=0.0005)
        profiler.start()
    started = time.perf_counter()
    try:
        relay.cli.main(["drain", "--json"], standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return 1
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.stop()
        Path(profile_path or "").write_text(profiler.output_text(unicode=False, show_all=False))
    print(orjson.dumps({"seconds": seconds, **_usage()}).decode(), flush=True)
    return 0


def _worker_baseline(argv: Sequence[str]) -> int:
    """Send the same events with ``mixpanel.BufferedConsumer`` (50 per request), no database.

    argv: ``URL COUNT TAG BASE_MS``. ``retry_limit=0``: nothing is retried, so a refused or
    failed request would raise and fail the run instead of being counted silently.
    """
    from mixpanel import BufferedConsumer, Mixpanel, ServiceAccountCredentials  # noqa: PLC0415

    url, count, tag, base_ms = argv[0], int(argv[1]), argv[2], int(argv[3])
    credentials = ServiceAccountCredentials(
        username=STANDIN_USERNAME, secret=STANDIN_SECRET, project_id=STANDIN_PROJECT_ID
    )
    consumer = BufferedConsumer(
        max_size=50, import_url=f"{url}/import", retry_limit=0, credentials=credentials
    )
    mixpanel = Mixpanel(STANDIN_TOKEN, consumer=consumer)
    events = []
    for g in range(1, count + 1):
        properties = event_properties(g)
        properties["$insert_id"] = insert_id(tag, g)
        events.append((f"5d1c7a3e-0000-4000-8000-{g % 5000:012d}", base_ms - g, properties))
    _ready_then_wait_for_go()
    started = time.perf_counter()
    for distinct_id, time_ms, properties in events:
        mixpanel.import_data(
            api_key=None,
            distinct_id=distinct_id,
            event_name=EVENT_NAME,
            timestamp=time_ms,
            properties=properties,
        )
    consumer.flush()
    seconds = time.perf_counter() - started
    print(orjson.dumps({"seconds": seconds, **_usage()}).decode(), flush=True)
    return 0


def _worker_relay_daemon(argv: Sequence[str]) -> int:
    """Run the relay daemon (``relay run``'s code) once told to go, until SIGTERM."""
    from relay._config import RelaySettings  # noqa: PLC0415
    from relay._daemon.daemon import run_daemon  # noqa: PLC0415
    from relay._logging import configure_logging  # noqa: PLC0415

    settings = RelaySettings()
    configure_logging(settings)
    _ready_then_wait_for_go()
    code = run_daemon(settings)
    print(orjson.dumps({"exit": code, **_usage()}).decode(), flush=True)
    return code


def _worker_standin_log(argv: Sequence[str]) -> int:
    """A stand-in that, on SIGTERM, prints when each accepted ``$insert_id`` arrived.

    ``time.monotonic()`` is CLOCK_MONOTONIC, one clock for every process on the machine, so
    the parent can compare these arrival times with its own commit times.
    """
    from _baseline_standin import BaselineStandin  # noqa: PLC0415

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with BaselineStandin(retain_events=True) as standin:
        print("ready", flush=True)
        print(standin.url, flush=True)
        done.wait()
        arrivals = {
            iid: record.at
            for record in standin.request_log()
            if record.status == 200
            for iid in record.insert_ids
        }
    print(orjson.dumps({"arrivals": arrivals}).decode(), flush=True)
    return 0


_ROLES = {
    "relay-drain": _worker_relay_drain,
    "baseline": _worker_baseline,
    "relay-daemon": _worker_relay_daemon,
    "standin-log": _worker_standin_log,
}


if __name__ == "__main__":
    sys.exit(_ROLES[sys.argv[1]](sys.argv[2:]))
