"""Outage: Mixpanel answers 503, then times out, then 429s; the backlog drains after recovery.

One batch is pending when the outage starts, so each of its rows is tried once per attempt of
the documented schedule (2 s doubling to 60 s, plus 1-5 s of jitter) and the relay-wide pause
moves in step with it. A 429 uses no attempt: its schedule is the throttle the relays share,
whose level counts the 429s in a row (the same 2 s doubling to 60 s). Each phase lasts at
least its set duration and until an attempt met it. The gaps between a row's consecutive
sends, read from the stand-in's arrival times, must be at least the schedule's minimum and at
most its maximum plus the read timeout and poll slack.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from dataclasses import dataclass
from typing import cast

import pytest
import sqlalchemy as sa
from ledger import Ledger, LedgerReport, sends_by_insert_id
from rig import (
    RelayLauncher,
    SurveyEvents,
    attempts_histogram,
    commit_backlog,
    pending_count,
    state_counts,
    utc_now,
    wait_until,
)
from sqlalchemy.engine import Engine

from relay._config import MAX_ATTEMPTS
from relay._delivery.backoff import (
    RETRY_BASE_SECONDS,
    RETRY_CAP_SECONDS,
    RETRY_JITTER_MAX_SECONDS,
    RETRY_JITTER_MIN_SECONDS,
)
from relay._tables import OutboxState, outbox
from relay.testing.mixpanel_standin import TIMEOUT, MixpanelStandin, Outage

#: The stand-in's outage mode that holds requests unanswered (typed for ``Phase``).
HOLD: Outage = cast("Outage", TIMEOUT)
EVENTS = 1_500  # one batch: every row is tried at the same moments
READ_TIMEOUT_SECONDS = 1.0
POLL_MAX_SECONDS = 0.5
#: Scheduling noise on a busy machine: claim, encode and connect before a request arrives.
SLACK_SECONDS = 1.5


@dataclass(frozen=True)
class Phase:
    """Answer every request with ``status`` for at least ``seconds`` and one attempt."""

    status: Outage
    seconds: float


def schedule_bounds(attempt: int) -> tuple[float, float]:
    """Shortest and longest gap after failed attempt ``attempt`` that the schedule allows.

    At least the delay with the least jitter; at most the delay with the most jitter, plus the
    read timeout the failed attempt may have waited, the poll interval, and slack.
    """
    base = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2.0 ** (attempt - 1))
    longest = base + RETRY_JITTER_MAX_SECONDS + READ_TIMEOUT_SECONDS + POLL_MAX_SECONDS
    return base + RETRY_JITTER_MIN_SECONDS - 0.05, longest + SLACK_SECONDS


def _met(
    engine: Engine, standin: MixpanelStandin, phase: Phase, since: float, since_wall: dt.datetime
) -> bool:
    """Whether an attempt made since the phase began met its outage."""
    if phase.status == TIMEOUT:
        # The relay acks a timed-out attempt as a retry whose error names the timeout.
        with engine.connect() as conn:
            return bool(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(outbox)
                    .where(
                        outbox.c.last_error.like("timeout%"),
                        outbox.c.updated_at >= since_wall,
                    )
                ).scalar_one()
            )
    return any(r.status == phase.status and r.at >= since for r in standin.request_log())


def run_outage_scenario(
    engine: Engine, standin: MixpanelStandin, relays: RelayLauncher, *, phases: list[Phase]
) -> LedgerReport:
    """Drain one batch through ``phases`` of outage and a recovery; return the ledger."""
    ledger = Ledger(
        "outage: " + ", ".join(f"{p.status} >= {p.seconds:.0f} s" for p in phases) + ", then 200"
    )
    commit_backlog(engine, ledger, SurveyEvents(), EVENTS)
    started = time.monotonic()
    standin.set_outage(phases[0].status, None)
    relay = relays.start(
        read_timeout_seconds=str(READ_TIMEOUT_SECONDS), poll_max_seconds=str(POLL_MAX_SECONDS)
    )
    phase_log = []
    began: list[tuple[float, str]] = []  # (monotonic start, what the stand-in does)
    for phase in phases:
        since, since_wall = time.monotonic(), utc_now()
        standin.set_outage(phase.status, None)
        began.append((since if began else started, str(phase.status)))

        def over(
            phase: Phase = phase, since: float = since, since_wall: dt.datetime = since_wall
        ) -> bool:
            return time.monotonic() - since >= phase.seconds and _met(
                engine, standin, phase, since, since_wall
            )

        wait_until(
            over,
            timeout=phase.seconds + 120,
            what=f"an attempt to meet the {phase.status} outage",
            context=relays.diagnosis,
        )
        phase_log.append(f"{phase.status} for {time.monotonic() - since:.1f} s")
    standin.set_outage(None, None)
    began.append((time.monotonic(), "200"))
    outage = time.monotonic() - started
    wait_until(
        lambda: pending_count(engine) == 0 or not relay.alive,
        timeout=RETRY_CAP_SECONDS + 60,
        what="the backlog to drain after recovery",
        context=relays.diagnosis,
    )
    exit_code = relay.stop()
    recovered_after = time.monotonic() - started - outage

    sends = sends_by_insert_id(standin.request_log())
    # What each attempt met: a held (timed-out) request is only answered when its phase ends.
    statuses = [
        next(what for at, what in reversed(began) if at <= r.at) for r in next(iter(sends.values()))
    ]
    # The n-th step of the schedule after each send: the row's attempt number, or after a
    # 429 (which uses none) the throttle's level, the 429s in a row.
    steps, attempt, in_a_row = [], 0, 0
    for status in statuses:
        in_a_row = in_a_row + 1 if status == "429" else 0
        attempt += status != "429"
        steps.append(in_a_row or attempt)
    gaps: dict[int, list[float]] = {}
    for requests in sends.values():
        for index, (first, second) in enumerate(itertools.pairwise(requests)):
            gaps.setdefault(steps[index], []).append(second.at - first.at)
    out_of_schedule = [
        f"after step {step}: {gap:.2f} s outside {low:.2f}-{high:.2f} s"
        for step, observed in gaps.items()
        for low, high in [schedule_bounds(step)]
        for gap in observed
        if not low <= gap <= high
    ]
    histogram = attempts_histogram(engine)
    report = ledger.reconcile(
        standin.accepted_events(),
        notes={
            "phases": ", ".join(phase_log),
            "outage / drained after recovery": f"{outage:.1f} s / {recovered_after:.1f} s",
            "answers, attempt by attempt": statuses,
            "gap after step n (allowed)": {
                n: f"{min(g):.2f}-{max(g):.2f} s ({schedule_bounds(n)[0]:.1f}-"
                f"{schedule_bounds(n)[1]:.1f})"
                for n, g in gaps.items()
            },
            "attempts per row (max allowed)": f"{histogram} ({MAX_ATTEMPTS})",
            "outbox states": state_counts(engine),
        },
    )
    print(f"\n{report}")
    context = f"\n{report}\n" + "\n".join(relays.logs())
    report.assert_clean()
    assert exit_code == 0, context
    assert state_counts(engine) == {OutboxState.DELIVERED.value: EVENTS}, context
    assert out_of_schedule == [], context
    assert statuses[0] == "503", context
    assert statuses.index("503") < statuses.index("timeout") < statuses.index("429"), context
    assert statuses[-1] == "200", context
    assert statuses.count("200") == 1, context
    assert len(histogram) == 1, context  # the batch stayed together
    # 429s used no attempt.
    assert max(histogram) == len(statuses) - statuses.count("429") < MAX_ATTEMPTS, context
    return report


@pytest.mark.heavy
def test_backlog_drains_after_503_timeout_and_429_outage_on_the_retry_schedule(
    pg_engine: Engine, standin: MixpanelStandin, relays: RelayLauncher
) -> None:
    """503s, then timeouts, then 429s: retries keep to the schedule and the backlog drains."""
    run_outage_scenario(
        pg_engine,
        standin,
        relays,
        phases=[Phase(503, 5.0), Phase(HOLD, 5.0), Phase(429, 5.0)],
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_minute_outage_then_429s_keeps_the_schedule_and_loses_nothing(
    pg_engine: Engine, standin: MixpanelStandin, relays: RelayLauncher
) -> None:
    """Two minutes of 503s and timeouts, then 429s: schedule kept, attempts left, all delivered."""
    run_outage_scenario(
        pg_engine,
        standin,
        relays,
        phases=[Phase(503, 60.0), Phase(HOLD, 60.0), Phase(429, 30.0)],
    )
