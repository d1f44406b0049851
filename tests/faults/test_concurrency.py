"""Concurrency: four relay processes drain one PostgreSQL outbox without ever sharing a row.

The four relays start first and listen; then the whole backlog commits at once, so every
relay wakes to the same NOTIFY and they claim side by side (two drain threads each). With a
60 s lease, no kill and no failure, a row may never be sent twice: not by two relays, and not
by one. Each relay claims a distinct batch size, so a full batch names the relay that sent it.
"""

from __future__ import annotations

from collections import Counter

import pytest
from ledger import Ledger, LedgerReport, resends_within, sends_by_insert_id
from rig import (
    RelayLauncher,
    SurveyEvents,
    commit_backlog,
    pending_count,
    state_counts,
    wait_until,
    watchers,
)
from sqlalchemy.engine import Engine

from relay._tables import OutboxState
from relay.testing.mixpanel_standin import MixpanelStandin

RELAYS = 4
LEASE_SECONDS = 60.0
#: Relay n claims at most BATCH_BASE + n rows, so a full request identifies its relay.
BATCH_BASE = 996


def run_concurrency_scenario(
    engine: Engine, standin: MixpanelStandin, relays: RelayLauncher, *, events: int
) -> LedgerReport:
    """Four relays drain ``events`` committed at once; return the ledger."""
    ledger = Ledger(f"concurrency: {RELAYS} relays, {events:,} events, lease {LEASE_SECONDS:.0f} s")
    started = [
        relays.start(lease_seconds=str(LEASE_SECONDS), batch_max_events=str(BATCH_BASE + n))
        for n in range(1, RELAYS + 1)
    ]
    wait_until(lambda: watchers(engine) >= RELAYS, timeout=60, what="every relay to watch")
    commit_backlog(engine, ledger, SurveyEvents(), events, chunk=events)
    wait_until(
        lambda: pending_count(engine) == 0 or not all(r.alive for r in started),
        timeout=180,
        what="the relays to drain the backlog",
        context=relays.diagnosis,
    )
    exit_codes = [relay.stop() for relay in started]

    log = standin.request_log()
    sends = sends_by_insert_id(log)
    sizes = {BATCH_BASE + n: f"relay-{n}" for n in range(1, RELAYS + 1)}
    full_batches = Counter(sizes.get(r.events, "short batch") for r in log)
    report = ledger.reconcile(
        standin.accepted_events(),
        notes={
            "requests (by sender)": dict(sorted(full_batches.items())),
            "requests by status": standin.stats().by_status,
            "rows sent more than once": sum(len(s) > 1 for s in sends.values()),
            "outbox states": state_counts(engine),
        },
    )
    print(f"\n{report}")
    context = f"\n{report}\n" + "\n".join(relays.logs())
    report.assert_clean()
    assert exit_codes == [0] * RELAYS, context
    assert state_counts(engine) == {OutboxState.DELIVERED.value: events}, context
    assert resends_within(log, LEASE_SECONDS) == [], context
    assert all(len(s) == 1 for s in sends.values()), context
    assert report.same_key_resends == 0, context
    assert len(full_batches.keys() - {"short batch"}) >= 2, context  # they did drain side by side
    return report


@pytest.mark.heavy
def test_four_relays_never_send_the_same_row_twice(
    pg_engine: Engine, standin: MixpanelStandin, relays: RelayLauncher
) -> None:
    """Four relays drain 20,000 events side by side: every row sent exactly once."""
    run_concurrency_scenario(pg_engine, standin, relays, events=20_000)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_four_relays_drain_100k_events_each_sent_exactly_once(
    pg_engine: Engine, standin: MixpanelStandin, relays: RelayLauncher
) -> None:
    """Four relays drain 100,000 events side by side: every row sent exactly once."""
    run_concurrency_scenario(pg_engine, standin, relays, events=100_000)
