"""Shared pieces of the relay benchmarks: scratch databases, the stand-in, loaders, processes.

The benchmarks measure real processes: the Mixpanel stand-in runs in a process of its own
(``python -m relay.testing.mixpanel_standin``), every relay runs ``relay drain`` (or the
daemon) in a process of its own, and the ``mixpanel`` package's ``BufferedConsumer`` baseline
runs in a process of its own too. Worker processes are started from this file
(``python bench/_common.py <role>``): each imports what it needs, prints ``ready``, and only
starts its clock when the parent writes a line to its stdin, so interpreter start-up and
imports are never timed.

Rows are bulk-loaded with ``INSERT ... SELECT generate_series`` (a recursive CTE on SQLite),
shaped like what ``track()`` stores for ``svc.surveys.survey_delivered``: 13 properties,
420 bytes of JSON. The baseline builds the very same events in Python.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import platform
import resource
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import orjson
import psutil
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

_T = TypeVar("_T")
BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PYTHON = sys.executable
DEFAULT_ADMIN_URL = os.environ.get(
    "RELAY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
STANDIN_PROJECT_ID = "standin-project"
STANDIN_USERNAME = "standin-user"
STANDIN_SECRET = "standin-secret"  # noqa: S105 - the stand-in's fake credential
EVENT_NAME = "svc.surveys.survey_delivered"
#: ``time`` of row g is ``base_ms - g``: all within the last hour, as /import requires.
_TIME_SPREAD_MS = 1


# --- numbers and the machine ------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    """The median of ``values``."""
    return float(statistics.median(values))


def machine() -> str:
    """One line naming the machine: cores, CPU model, memory, Python and load."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = psutil.virtual_memory().total / 2**30
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({model}), {memory:.0f} GiB, Python "
        f"{platform.python_version()}, load average {load}"
    )


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain-text table, right-aligned numbers."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))


# --- scratch databases ------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_postgres(admin_url: str = DEFAULT_ADMIN_URL) -> Iterator[str]:
    """A fresh PostgreSQL database migrated to head with ``relay migrate``'s code; dropped after."""
    from relay import _migrations  # noqa: PLC0415
    from relay._database import create_engine  # noqa: PLC0415

    name = f"relay_bench_{secrets.token_hex(4)}"
    server = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        try:
            url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
            engine = create_engine(url)
            try:
                _migrations.upgrade(engine)
            finally:
                engine.dispose()
            yield url
        finally:
            _drop_database(server, name)
    finally:
        server.dispose()


def _drop_database(server: Engine, name: str) -> None:
    """DROP DATABASE, waiting out a PostgreSQL restart by another test run."""
    for attempt in range(30):
        try:
            with server.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            return
        except sa.exc.OperationalError:
            if attempt == 29:
                raise
            time.sleep(2.0)


@contextlib.contextmanager
def scratch_sqlite(directory: Path | None = None) -> Iterator[str]:
    """A fresh SQLite file migrated to head; deleted after."""
    import tempfile  # noqa: PLC0415

    from relay import _migrations  # noqa: PLC0415
    from relay._database import create_engine  # noqa: PLC0415

    with tempfile.TemporaryDirectory(dir=directory, prefix="relay_bench_") as tmp:
        url = f"sqlite:///{tmp}/relay.db"
        engine = create_engine(url)
        try:
            _migrations.upgrade(engine)
        finally:
            engine.dispose()
        yield url


def server_version(engine: Engine) -> str:
    """The database server's version string."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            return "PostgreSQL " + str(conn.exec_driver_sql("SHOW server_version").scalar_one())
        if engine.dialect.name == "sqlite":
            return "SQLite " + str(conn.exec_driver_sql("select sqlite_version()").scalar_one())
        return str(conn.exec_driver_sql("select version()").scalar_one())


# --- bulk loading -----------------------------------------------------------------------------

_PG_PROPERTIES = """jsonb_build_object(
    'employee_id', '5d1c7a3e-0000-4000-8000-' || lpad((g % 5000)::text, 12, '0'),
    'organization_id', '8a0e8d1c-1111-4222-8333-' || lpad((g % 40)::text, 12, '0'),
    'organization_name', 'Example Org', 'role', 'admin', 'impersonation', false,
    'is_cron_job', false, 'cron_execution_timestamp', null,
    'survey_id', '0c6f4a8e-2222-4333-8444-' || lpad((g % 300)::text, 12, '0'),
    'survey_run_id', '1d7a5b9f-3333-4444-8555-' || lpad((g % 900)::text, 12, '0'),
    'survey_type', 'pulse', 'channel', 'email', 'question_count', g % 40,
    'is_reminder', g % 7 = 0)"""

# Built from this module's constants only, never from input.
_PG_LOAD = f"""
INSERT INTO relay_outbox (insert_id, event, distinct_id, time_ms, properties, state, attempts,
    next_attempt_at, lease_token, last_error, created_at, updated_at, finished_at)
SELECT
    substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4) || '-'
        || substr(h, 17, 4) || '-' || substr(h, 21, 12),
    '{EVENT_NAME}',
    '5d1c7a3e-0000-4000-8000-' || lpad((g % 5000)::text, 12, '0'),
    CAST(:base_ms AS bigint) - g,
    {_PG_PROPERTIES},
    CAST(:state AS text),
    CASE WHEN CAST(:state AS text) = 'pending' THEN 0 ELSE 1 END,
    :now - (CAST(:newest AS bigint) - g) * interval '1 microsecond',
    NULL, NULL,
    :now - (CAST(:newest AS bigint) - g) * interval '1 microsecond',
    :now,
    CASE WHEN CAST(:state AS text) = 'pending' THEN NULL
        ELSE :now - (g % 86400) * interval '1 second' END
FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g,
    LATERAL (SELECT CASE WHEN :ordered
        THEN lpad(to_hex(CAST(:base_ms AS bigint)), 12, '0') || lpad(to_hex(g), 20, '0')
        ELSE md5(:tag || g::text) END AS h) AS hashed
"""  # noqa: S608

_SQLITE_LOAD = f"""
WITH RECURSIVE seq(g) AS (SELECT :first UNION ALL SELECT g + 1 FROM seq WHERE g < :last)
INSERT INTO relay_outbox (insert_id, event, distinct_id, time_ms, properties, state, attempts,
    next_attempt_at, lease_token, last_error, created_at, updated_at, finished_at)
SELECT
    :tag || '-0000-4000-8000-' || printf('%012d', g),  -- SQLite has no md5(): sequential
    '{EVENT_NAME}',
    '5d1c7a3e-0000-4000-8000-' || printf('%012d', g % 5000),
    :base_ms - g,
    json_object(
        'employee_id', '5d1c7a3e-0000-4000-8000-' || printf('%012d', g % 5000),
        'organization_id', '8a0e8d1c-1111-4222-8333-' || printf('%012d', g % 40),
        'organization_name', 'Example Org', 'role', 'admin', 'impersonation', json('false'),
        'is_cron_job', json('false'), 'cron_execution_timestamp', NULL,
        'survey_id', '0c6f4a8e-2222-4333-8444-' || printf('%012d', g % 300),
        'survey_run_id', '1d7a5b9f-3333-4444-8555-' || printf('%012d', g % 900),
        'survey_type', 'pulse', 'channel', 'email', 'question_count', g % 40,
        'is_reminder', json(CASE WHEN g % 7 = 0 THEN 'true' ELSE 'false' END)),
    :state,
    CASE WHEN :state = 'pending' THEN 0 ELSE 1 END,
    :now, NULL, NULL, :now, :now,
    CASE WHEN :state = 'pending' THEN NULL ELSE :now END
FROM seq
"""  # noqa: S608


def survey_properties(n: int, *, organization_name: str = "Example Org") -> dict[str, Any]:
    """The ``svc.surveys.survey_delivered`` properties of event ``n`` (what a catalog helper
    passes): ids cycle over a few thousand employees, hundreds of surveys."""
    return {
        "employee_id": f"5d1c7a3e-0000-4000-8000-{n % 5000:012d}",
        "organization_id": "8a0e8d1c-1111-4222-8333-944455556666",
        "organization_name": organization_name,
        "role": "admin",
        "impersonation": False,
        "survey_id": f"0c6f4a8e-2222-4333-8444-{n % 300:012d}",
        "survey_run_id": f"1d7a5b9f-3333-4444-8555-{n % 900:012d}",
        "survey_type": "pulse",
        "channel": "email",
        "question_count": n % 40,
        "is_reminder": n % 7 == 0,
    }


def event_properties(g: int) -> dict[str, Any]:
    """Row ``g``'s properties, exactly as the bulk loaders store them."""
    return {
        "employee_id": f"5d1c7a3e-0000-4000-8000-{g % 5000:012d}",
        "organization_id": f"8a0e8d1c-1111-4222-8333-{g % 40:012d}",
        "organization_name": "Example Org",
        "role": "admin",
        "impersonation": False,
        "is_cron_job": False,
        "cron_execution_timestamp": None,
        "survey_id": f"0c6f4a8e-2222-4333-8444-{g % 300:012d}",
        "survey_run_id": f"1d7a5b9f-3333-4444-8555-{g % 900:012d}",
        "survey_type": "pulse",
        "channel": "email",
        "question_count": g % 40,
        "is_reminder": g % 7 == 0,
    }


def insert_id(tag: str, g: int) -> str:
    """Row ``g``'s ``$insert_id`` on PostgreSQL: UUID-shaped and scattered like ``uuid4()``'s,
    so the unique index is written at random places as it is in production."""
    h = hashlib.md5(f"{tag}{g}".encode()).hexdigest()  # noqa: S324 - not for security
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def new_tag() -> str:
    """Eight hex digits that make one load's ``$insert_id``s unique."""
    return secrets.token_hex(4)


def load_rows(
    engine: Engine,
    *,
    count: int,
    state: str = "pending",
    tag: str,
    first: int = 1,
    base_ms: int | None = None,
    chunk: int = 500_000,
    ordered_ids: bool = True,
) -> None:
    """Bulk-load ``count`` rows in ``state`` numbered from ``first``, in chunks of ``chunk``.

    ``$insert_id``\\ s rise with time like the UUIDv7s ``track()`` makes (PostgreSQL), so that
    new entries land at the end of the unique index, or with ``ordered_ids=False`` are
    scattered like ``uuid4()``'s (what ``track()`` made before).
    """
    now = dt.datetime.now(dt.UTC)
    base_ms = base_ms if base_ms is not None else int(now.timestamp() * 1000)
    sql = sa.text(_PG_LOAD if engine.dialect.name == "postgresql" else _SQLITE_LOAD)
    bind_now: Any = now if engine.dialect.name == "postgresql" else now.replace(tzinfo=None)
    start = first
    last_row = first + count - 1
    while start <= last_row:
        stop = min(start + chunk - 1, last_row)
        with engine.begin() as conn:
            conn.execute(
                sql,
                {
                    "tag": tag,
                    "base_ms": base_ms,
                    "state": state,
                    "now": bind_now,
                    "first": start,
                    "last": stop,
                    "newest": last_row,
                    "ordered": ordered_ids,
                },
            )
        start = stop + 1


def settle(engine: Engine) -> None:
    """VACUUM ANALYZE and, on PostgreSQL, CHECKPOINT: every run starts from the same state."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("VACUUM ANALYZE relay_outbox")
            conn.exec_driver_sql("CHECKPOINT")
        else:
            conn.exec_driver_sql("ANALYZE")
    if engine.dialect.name == "sqlite":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").all()


def truncate(engine: Engine) -> None:
    """Empty the outbox."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("TRUNCATE relay_outbox RESTART IDENTITY")
        else:
            conn.exec_driver_sql("DELETE FROM relay_outbox")


def count_by_state(engine: Engine) -> dict[str, int]:
    """Rows per state."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT state, count(*) FROM relay_outbox GROUP BY state")
        return {str(state): int(n) for state, n in rows}


# --- the stand-in -----------------------------------------------------------------------------


class Standin:
    """The Mixpanel stand-in in a process of its own, with counters only (``--no-retain``)."""

    def __init__(self, *, retain: bool = False) -> None:
        command = [PYTHON, "-m", "relay.testing.mixpanel_standin", "--port", "0"]
        if not retain:
            command.append("--no-retain")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.close()
            raise SystemExit("the stand-in did not start")
        self.psutil = psutil.Process(self.process.pid)

    def env(self) -> dict[str, str]:
        """``RELAY_*`` variables pointing a relay at this stand-in."""
        return {
            "RELAY_MIXPANEL_API_URL": self.url,
            "RELAY_MIXPANEL_PROJECT_ID": STANDIN_PROJECT_ID,
            "RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME": STANDIN_USERNAME,
            "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET": STANDIN_SECRET,
        }

    def reset(self) -> None:
        """Forget everything accepted so far."""
        import httpx  # noqa: PLC0415

        httpx.post(f"{self.url}/_standin/reset", timeout=10).raise_for_status()

    def stats(self) -> dict[str, Any]:
        """The stand-in's counters (``accepted``, ``unique``, ``duplicates``, ``requests``...)."""
        import httpx  # noqa: PLC0415

        response = httpx.get(f"{self.url}/_standin/stats", timeout=10)
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats

    def cpu_seconds(self) -> float:
        """User plus system CPU time the stand-in process used so far."""
        times = self.psutil.cpu_times()
        return float(times.user + times.system)

    def close(self) -> None:
        """Stop the stand-in process."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> Standin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- worker processes -------------------------------------------------------------------------


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


_RESTART_MARKERS = (
    "AdminShutdown",
    "terminating connection",
    "the database system is",
    "Connection refused",
    "server closed the connection",
    "consuming input failed",
)


def database_restarted(exc: BaseException) -> bool:
    """Whether ``exc`` looks like PostgreSQL going away (another test run restarts it)."""
    text = f"{type(exc).__name__}: {exc}"
    return any(marker in text for marker in _RESTART_MARKERS)


def wait_for_postgres(admin_url: str = DEFAULT_ADMIN_URL, timeout: float = 120.0) -> None:
    """Block until PostgreSQL accepts connections again."""
    deadline = time.monotonic() + timeout
    while True:
        engine = sa.create_engine(admin_url)
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return
        except sa.exc.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)
        finally:
            engine.dispose()


def retry_if_restarted(run: Callable[[], _T], *, attempts: int = 3) -> _T:
    """``run()``, again (up to ``attempts`` times) when PostgreSQL was restarted under it.

    This machine is shared with a fault suite that restarts PostgreSQL on purpose; a run it
    interrupts measures nothing and is repeated, and the repetition is reported.
    """
    for attempt in range(1, attempts + 1):
        try:
            return run()
        except (sa.exc.OperationalError, WorkerError) as exc:
            if attempt == attempts or not database_restarted(exc):
                raise
            print(f"  PostgreSQL restarted under the run ({type(exc).__name__}); repeating it")
            time.sleep(2.0)
            wait_for_postgres()
    raise AssertionError("unreachable")


@dataclass
class Worker:
    """A benchmark worker process (``python bench/_common.py <role>``), started and ready."""

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
    """Start ``python bench/_common.py <role> [args]`` and wait until it prints ``ready``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    full_env.update(env)
    log_dir.mkdir(parents=True, exist_ok=True)
    stderr_path = log_dir / f"{role}-{secrets.token_hex(3)}.log"
    stderr_file = stderr_path.open("w")
    process = subprocess.Popen(
        [PYTHON, str(BENCH_DIR / "_common.py"), role, *args],
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
    """``py-spy record`` of ``pid`` (all threads, idle stacks too) as collapsed stacks."""
    spy = Path(PYTHON).with_name("py-spy")
    command = [str(spy), "record", "--pid", str(pid), "--rate", "250", "--threads"]
    if os.environ.get("PY_SPY_IDLE", "1") == "1":
        command.append("--idle")
    command += ["--format", "raw", "--output", str(output), "--nonblocking"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def relay_env(database_url: str, standin: Standin, **settings: Any) -> dict[str, str]:
    """Environment for a relay process: database, stand-in, plus ``RELAY_<NAME>`` settings."""
    env = {"RELAY_DATABASE_URL": database_url, **standin.env()}
    env["RELAY_LOG_LEVEL"] = "INFO"
    for name, value in settings.items():
        env[f"RELAY_{name.upper()}"] = str(value)
    return env


_CPU_AT_GO = [0.0]


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _ready_then_wait_for_go() -> None:
    print("ready", flush=True)
    if not sys.stdin.readline():
        raise SystemExit(1)
    _CPU_AT_GO[0] = _cpu_seconds()


def _usage() -> dict[str, float]:
    """CPU seconds since "go" (start-up excluded) and the process's peak RSS so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_seconds": _cpu_seconds() - _CPU_AT_GO[0], "maxrss_bytes": usage.ru_maxrss * 1024}


def _worker_relay_drain(argv: Sequence[str]) -> int:
    """Run ``relay drain --json`` in this process once told to go; print timing and usage.

    With ``--profile PATH``, py-spy is not needed: pyinstrument profiles the drain and writes
    its text report to PATH.
    """
    import click  # noqa: PLC0415

    import relay._delivery.drain  # noqa: PLC0415
    import relay._delivery.mixpanel_client  # noqa: PLC0415
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
    mixpanel = Mixpanel("standin-token", consumer=consumer)
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
    from relay.testing.mixpanel_standin import MixpanelStandin  # noqa: PLC0415

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with MixpanelStandin(retain_events=True) as standin:
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
