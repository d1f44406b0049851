"""The chaos rig: real relay processes, business events, outbox probes and bounded waits.

Relays are started with the ``relay`` console script installed next to the test's Python
(``relay run``), configured only through ``RELAY_*`` variables, and logged to a file each, so
a failing test can quote what a relay said. Every wait polls a condition against a deadline.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from hr_catalog import MixPanelEvent
from ledger import Committed, Ledger
from sqlalchemy.engine import Engine

from relay._event.properties import datetime_to_timestamp_ms
from relay._tables import OutboxState, outbox
from relay._tracking import prepare_event
from relay.testing.mixpanel_standin import MixpanelStandin

RELAY_EXECUTABLE = Path(sys.executable).with_name("relay")
#: How often ``wait_until`` looks again.
POLL_SECONDS = 0.05
#: Lease used by scenarios that crash relays: short, so that recovery happens within a test.
#: Short, so that a killed relay's rows come back within seconds; long enough for a request
#: deadline under it (relay refuses a deadline at or over the lease) that a stand-in holding
#: its answer 3 s (test_crash's in-flight kills) on a loaded machine does not cut.
SHORT_LEASE_SECONDS = 5.0
SHORT_REQUEST_DEADLINE_SECONDS = 4.5
#: A relay that was asked to stop must have exited within this long.
STOP_SECONDS = 30.0

_T = TypeVar("_T")


def wait_until(
    predicate: Callable[[], _T],
    *,
    timeout: float,
    what: str,
    context: Callable[[], str] | None = None,
) -> _T:
    """Poll ``predicate`` until it returns something truthy and return that; fail at ``timeout``.

    ``context`` (such as ``RelayLauncher.diagnosis``) is added to the failure message.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            details = f"\n{context()}" if context is not None else ""
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}{details}")
        time.sleep(POLL_SECONDS)


def utc_now() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


# --- business events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrackCall:
    """The arguments of one ``track()`` call for a real catalog event."""

    event: str
    distinct_id: str
    properties: dict[str, Any]
    occurred_at: dt.datetime

    @property
    def time_ms(self) -> int:
        """The event's ``time`` as relay stores it."""
        return datetime_to_timestamp_ms(self.occurred_at)


class SurveyEvents:
    """``svc.surveys.survey_delivered`` events, each with a unique run id: its business identity."""

    def __init__(self) -> None:
        self._seq = itertools.count()  # next() on a count is atomic: safe across threads
        self._organization = str(uuid.uuid4())

    def next(self, *, occurred_at: dt.datetime | None = None) -> TrackCall:
        """A new, valid event that happened at ``occurred_at`` (default: now)."""
        seq = next(self._seq)
        employee = str(uuid.uuid4())
        return TrackCall(
            event=MixPanelEvent.SURVEY_DELIVERED,
            distinct_id=employee,
            properties={
                "employee_id": employee,
                "organization_id": self._organization,
                "organization_name": "Acme Fault Rig",
                "role": "employee",
                "impersonation": False,
                "survey_id": str(uuid.uuid4()),
                "survey_run_id": f"run-{seq}",
                "survey_type": "pulse",
                "channel": "slack",
                "question_count": seq % 40,
                "is_reminder": seq % 3 == 0,
            },
            occurred_at=occurred_at or utc_now(),
        )


def commit_backlog(
    engine: Engine, ledger: Ledger, events: SurveyEvents, count: int, *, chunk: int = 5000
) -> None:
    """Commit ``count`` events the way ``track()`` stores them, in bulk, and record them.

    Each event is validated by ``prepare_event`` (what ``track()`` runs) and inserted with the
    row ``track()`` writes, many rows per statement, with the NOTIFY ``track()`` sends; the
    ledger records a transaction's events only after its commit returned. ``track()`` itself,
    one savepoint per event, is exercised by the atomicity and bad-input scenarios; here it
    would make seeding 100,000 events take minutes.
    """
    for start in range(0, count, chunk):
        now = utc_now()
        rows: list[dict[str, Any]] = []
        committed: dict[str, Committed] = {}
        for _ in range(min(chunk, count - start)):
            call = events.next(occurred_at=now)
            prepared = prepare_event(
                event=call.event,
                distinct_id=call.distinct_id,
                properties=call.properties,
                occurred_at=call.occurred_at,
                now=now,
            )
            rows.append(
                {
                    "insert_id": prepared.insert_id,
                    "event": prepared.event,
                    "distinct_id": prepared.distinct_id,
                    "time_ms": prepared.time_ms,
                    "properties": prepared.properties,
                    "state": OutboxState.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            committed[prepared.insert_id] = Committed(
                prepared.event, prepared.distinct_id, prepared.time_ms
            )
        with engine.begin() as conn:
            conn.execute(sa.insert(outbox), rows)
        ledger.record_all_committed(committed)


# --- outbox probes -----------------------------------------------------------------------------


def state_counts(engine: Engine) -> dict[str, int]:
    """Rows per state, e.g. ``{"delivered": 10000}``."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.state, sa.func.count()).group_by(outbox.c.state))
        return {str(state): int(n) for state, n in rows}


def pending_count(engine: Engine) -> int:
    """Rows still pending (due or leased)."""
    return state_counts(engine).get(OutboxState.PENDING.value, 0)


def attempts_histogram(engine: Engine) -> dict[int, int]:
    """Rows per attempt count."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.attempts, sa.func.count()).group_by(outbox.c.attempts)
        )
        return dict(sorted(Counter({int(a): int(n) for a, n in rows}).items()))


def claimed_since(engine: Engine, since: dt.datetime) -> int:
    """Rows claimed (or acked) at or after ``since``: evidence that a relay is draining."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(outbox)
                .where(outbox.c.attempts > 0, outbox.c.updated_at >= since)
            ).scalar_one()
        )


def leased_since(engine: Engine, since: dt.datetime) -> list[str]:
    """``$insert_id``\\ s of pending rows leased by a claim made at or after ``since``."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(outbox.c.insert_id).where(
                    outbox.c.state == OutboxState.PENDING.value,
                    outbox.c.lease_token.is_not(None),
                    outbox.c.updated_at >= since,
                )
            ).scalars()
        )


def lock_waiters(engine: Engine) -> int:
    """Other sessions of this database waiting for a row lock right now."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND wait_event IN ('transactionid', 'tuple') "
                    "AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        )


def watchers(engine: Engine) -> int:
    """Sessions of this database whose last statement was the watcher's probe: one per relay."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND query ILIKE '%max(relay_outbox.id)%'"
                )
            ).scalar_one()
        )


# --- relay processes ---------------------------------------------------------------------------


class RelayProcess:
    """One ``relay run`` process; its stderr (JSON log lines) goes to a file."""

    def __init__(self, name: str, env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        #: Wall-clock time just before the process started: its claims are stamped later.
        self.started_at = utc_now()
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(RELAY_EXECUTABLE), "run"],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    @property
    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is released, leases stay until they expire."""
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=STOP_SECONDS)
        self._log.close()

    def stop(self) -> int:
        """SIGTERM and the exit code (0 after a clean stop)."""
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=STOP_SECONDS)
        self._log.close()
        return code

    def log_tail(self, lines: int = 10, width: int = 400) -> str:
        """The last lines the relay logged, each cut to ``width`` characters."""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(line[:width] for line in text[-lines:])


@dataclass
class RelayLauncher:
    """Starts relays on one database against one stand-in and kills any still running at the end."""

    database_url: str
    standin: MixpanelStandin
    log_dir: Path
    started: list[RelayProcess] = field(default_factory=list)

    def env(self, **overrides: str) -> dict[str, str]:
        """A relay's environment: inherited minus ``RELAY_*``, the rig's settings, ``overrides``."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
        return {
            **base,
            "RELAY_DATABASE_URL": self.database_url,
            **self.standin.settings_env(),
            "RELAY_METRICS_PORT": "0",
            "RELAY_LOG_LEVEL": "WARNING",
            "RELAY_LOG_FORMAT": "json",
            "RELAY_LEASE_SECONDS": str(SHORT_LEASE_SECONDS),
            # Under the lease, as relay requires (a request outliving it could be sent twice).
            "RELAY_REQUEST_DEADLINE_SECONDS": str(SHORT_REQUEST_DEADLINE_SECONDS),
            "RELAY_POLL_MAX_SECONDS": "0.5",
            **{f"RELAY_{name.upper()}": value for name, value in overrides.items()},
        }

    def start(self, **overrides: str) -> RelayProcess:
        """Start ``relay run``; ``overrides`` name settings by field (``lease_seconds="60"``)."""
        name = f"relay-{len(self.started) + 1}"
        relay = RelayProcess(name, self.env(**overrides), self.log_dir / f"{name}.log")
        self.started.append(relay)
        return relay

    def kill_all(self) -> None:
        """SIGKILL every relay still running."""
        for relay in self.started:
            relay.kill()

    def logs(self) -> Iterator[str]:
        """``name: last lines`` of every relay started, for failure messages."""
        for relay in self.started:
            status = "running" if relay.alive else f"exit {relay.proc.returncode}"
            yield f"--- {relay.name} ({status}) ---\n{relay.log_tail()}"

    def diagnosis(self) -> str:
        """The stand-in's counters and what the last relays logged, for failure messages."""
        recent = list(self.logs())[-4:]
        return "\n".join([f"stand-in: {self.standin.stats()}", *recent])
