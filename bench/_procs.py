"""Processes of a benchmark: workers started from ``bench/_workers.py``, and their costs.

Every relay, the baseline and the logging stand-in run in a process of their own
(``python bench/_workers.py <role>``): each imports what it needs, prints ``ready``, and only
starts its clock when the parent writes a line to its stdin, so interpreter start-up and
imports are never timed. :class:`RssSampler`, :class:`PostgresCpu` and :func:`start_py_spy`
watch what processes use meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import psutil

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PYTHON = sys.executable


class RssSampler:
    """Samples a process's resident set size every ``interval`` seconds on a thread."""

    def __init__(self, pid: int, *, interval: float = 0.1) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            try:
                rss = self._process.memory_info().rss
            except psutil.Error:
                return
            self.samples.append((time.monotonic() - started, rss))
            self._stop.wait(self._interval)

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> int:
        """The largest sample, in bytes."""
        return max((rss for _, rss in self.samples), default=0)


class WorkerError(RuntimeError):
    """A worker process exited with an error or ran out of time."""


@dataclass
class Worker:
    """A benchmark worker process (``python bench/_workers.py <role>``), started and ready."""

    role: str
    process: subprocess.Popen[str]
    stderr_path: Path
    stderr_file: IO[str]
    sampler: RssSampler | None = None
    result: dict[str, Any] = field(default_factory=dict)

    def go(self) -> None:
        """Start the worker's clock."""
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def wait(self, timeout: float) -> dict[str, Any]:
        """Wait for the worker to finish; returns its result line."""
        assert self.process.stdout is not None
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise WorkerError(f"{self.role} worker took longer than {timeout:.0f} s") from None
        finally:
            if self.sampler is not None:
                self.sampler.stop()
            self.stderr_file.close()
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if self.process.returncode != 0 or not lines:
            tail = self.stderr_path.read_text()[-3000:]
            raise WorkerError(f"{self.role} worker failed ({self.process.returncode}):\n{tail}")
        self.result = orjson.loads(lines[-1])
        return self.result

    def kill(self) -> None:
        """Kill the worker (on the way out after an error)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start_worker(
    role: str,
    *,
    env: dict[str, str],
    args: Sequence[str] = (),
    sample_rss: bool = False,
    log_dir: Path,
) -> Worker:
    """Start ``python bench/_workers.py <role> [args]`` and wait until it prints ``ready``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    full_env.update(env)
    log_dir.mkdir(parents=True, exist_ok=True)
    stderr_path = log_dir / f"{role}-{secrets.token_hex(3)}.log"
    stderr_file = stderr_path.open("w")
    process = subprocess.Popen(
        [PYTHON, str(BENCH_DIR / "_workers.py"), role, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr_file,
        text=True,
        env=full_env,
        cwd=REPO,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if line != "ready":
        process.kill()
        process.wait()
        stderr_file.close()
        raise SystemExit(f"{role} worker did not start: {stderr_path.read_text()[-3000:]}")
    worker = Worker(role, process, stderr_path, stderr_file)
    if sample_rss:
        worker.sampler = RssSampler(process.pid)
    return worker


class PostgresCpu:
    """CPU seconds used by every ``postgres`` process (backends, WAL writer, checkpointer,
    autovacuum) between :meth:`start` and :meth:`stop`.

    Backends end with the relay that owned them, so they are sampled every 0.2 s on a thread
    and each one's last sample counts: an underestimate by at most a sample's worth each.
    """

    def __init__(self, database: str | None = None) -> None:
        self._database = database
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._kind: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for process in psutil.process_iter(["name"]):
            if process.info["name"] != "postgres":
                continue
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                used = times.user + times.system
                if process.pid not in self._kind:
                    self._kind[process.pid] = _postgres_kind(process, self._database)
                self._first.setdefault(process.pid, used)
                self._last[process.pid] = used

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def start(self) -> PostgresCpu:
        """Take the first sample and keep sampling."""
        self._sample()
        # A backend first seen later started during the run: all of its time counts.
        self._known = set(self._first)
        self._thread.start()
        return self

    def stop(self) -> float:
        """Stop sampling; the CPU seconds used since :meth:`start`."""
        self._stop.set()
        self._thread.join()
        self._sample()
        return sum(v for k, v in self.by_kind().items() if k != "elsewhere")

    def by_kind(self) -> dict[str, float]:
        """CPU seconds per kind of process: ``backend``, ``autovacuum``, ``walwriter``..."""
        kinds: dict[str, float] = {}
        for pid, last in self._last.items():
            used = last - (self._first[pid] if pid in self._known else 0.0)
            kinds[self._kind[pid]] = kinds.get(self._kind[pid], 0.0) + used
        return kinds


def _postgres_kind(process: psutil.Process, database: str | None) -> str:
    """``backend``, ``autovacuum``, ``walwriter``...; ``elsewhere`` for a backend or
    autovacuum worker of another database than ``database`` (another test run's)."""
    title = " ".join(process.cmdline())
    of_a_database = "(" in title or "autovacuum worker" in title
    if database is not None and of_a_database and f" {database} " not in f"{title} ":
        return "elsewhere"
    if "(" in title or "[local]" in title:
        return "backend"
    for kind in ("autovacuum", "walwriter", "checkpointer", "background writer", "logical"):
        if kind in title:
            return kind
    return "other"


def start_py_spy(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """``py-spy record`` of ``pid`` (all threads) as collapsed stacks: idle stacks too unless
    ``PY_SPY_IDLE=0``; with ``PY_SPY_GIL=1`` only the thread holding the GIL (on-CPU Python)."""
    spy = Path(PYTHON).with_name("py-spy")
    command = [str(spy), "record", "--pid", str(pid), "--rate", "250", "--threads"]
    if os.environ.get("PY_SPY_IDLE", "1") == "1":
        command.append("--idle")
    if os.environ.get("PY_SPY_GIL") == "1":  # only the thread holding the GIL: on-CPU Python
        command.append("--gil")
    command += ["--format", "raw", "--output", str(output), "--nonblocking"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
