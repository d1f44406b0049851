"""Atomicity: an event exists exactly when its business transaction committed.

Several threads run business transactions (an order row plus a tracked event) while a relay
drains: 30 % roll back after tracking, and some also track an invalid event in default mode,
which must be logged and swallowed without poisoning the transaction. The ledger must show
exactly the committed valid events delivered, each once.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from ledger import Ledger, LedgerReport
from rig import RelayLauncher, SurveyEvents, TrackCall, pending_count, state_counts, wait_until
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from relay._tables import OutboxState, outbox
from relay._tracking import track
from relay.testing.mixpanel_standin import MixpanelStandin

THREADS = 4
ROLLBACK_SHARE = 0.3
INVALID_SHARE = 0.2

business = sa.MetaData()
orders = sa.Table(
    "fault_orders",
    business,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False, unique=True),
)


def _unregistered(call: TrackCall) -> dict[str, Any]:
    return {"event": "svc.faults.never_registered"}


def _email_value(call: TrackCall) -> dict[str, Any]:
    return {"properties": {**call.properties, "survey_id": "jane.doe@example.com"}}


def _banned_distinct_id(call: TrackCall) -> dict[str, Any]:
    return {"distinct_id": "undefined"}


def _schema_violation(call: TrackCall) -> dict[str, Any]:
    return {"properties": {**call.properties, "question_count": -1}}


def _bad_insert_id(call: TrackCall) -> dict[str, Any]:
    return {"insert_id": "not a valid id!"}


def _naive_time(call: TrackCall) -> dict[str, Any]:
    return {"occurred_at": call.occurred_at.replace(tzinfo=None)}


def _future_time(call: TrackCall) -> dict[str, Any]:
    return {"occurred_at": call.occurred_at + dt.timedelta(hours=2)}


INVALID: tuple[Callable[[TrackCall], dict[str, Any]], ...] = (
    _unregistered,
    _email_value,
    _banned_distinct_id,
    _schema_violation,
    _bad_insert_id,
    _naive_time,
    _future_time,
)


def _business_transactions(
    engine: Engine, ledger: Ledger, events: SurveyEvents, count: int, seed: int, tally: Counter[str]
) -> None:
    rng = random.Random(seed)
    for _ in range(count):
        call = events.next()
        invalid = INVALID[rng.randrange(len(INVALID))] if rng.random() < INVALID_SHARE else None
        invalid_first = rng.random() < 0.5
        with Session(engine) as session:
            session.execute(sa.insert(orders).values(run_id=call.properties["survey_run_id"]))
            if invalid is not None and invalid_first:
                assert track(session, **{**_arguments(call), **invalid(call)}) is None
            insert_id = track(session, **_arguments(call))
            assert insert_id is not None, "a valid event must be stored"
            if invalid is not None and not invalid_first:
                assert track(session, **{**_arguments(call), **invalid(call)}) is None
            if rng.random() < ROLLBACK_SHARE:
                session.rollback()
                tally["rolled back"] += 1
            else:
                session.commit()
                ledger.record_committed(
                    insert_id, event=call.event, distinct_id=call.distinct_id, time_ms=call.time_ms
                )
                tally["committed"] += 1
        if invalid is not None:
            tally[f"invalid: {invalid.__name__.lstrip('_')}"] += 1


def _arguments(call: TrackCall) -> dict[str, Any]:
    return {
        "event": call.event,
        "distinct_id": call.distinct_id,
        "properties": call.properties,
        "occurred_at": call.occurred_at,
        "strict": False,
    }


def run_atomicity_scenario(
    engine: Engine, standin: MixpanelStandin, relays: RelayLauncher, *, transactions: int
) -> LedgerReport:
    """Run ``transactions`` business transactions from several threads; return the ledger."""
    business.drop_all(engine)
    business.create_all(engine)
    seed = random.randrange(2**32)
    ledger = Ledger(f"atomicity: {transactions:,} transactions, {THREADS} threads, seed {seed}")
    events = SurveyEvents()
    relay = relays.start()  # drains while transactions commit and roll back around it
    tallies = [Counter[str]() for _ in range(THREADS)]
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            share = transactions // THREADS + (index < transactions % THREADS)
            _business_transactions(engine, ledger, events, share, seed + index, tallies[index])
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test thread below
            errors.append(exc)

    try:
        with capture_logs() as logged:
            threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if errors:
            raise errors[0]
        wait_until(
            lambda: pending_count(engine) == 0 or not relay.alive,
            timeout=120,
            what="the relay to drain every committed event",
            context=relays.diagnosis,
        )
        exit_code = relay.stop()
        tally = sum(tallies, Counter[str]())
        with engine.connect() as conn:
            order_rows = conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar_one()
            outbox_ids = set(conn.execute(sa.select(outbox.c.insert_id)).scalars())
    finally:
        business.drop_all(engine)

    failures = [e for e in logged if e["event"] == "mixpanel_event_tracking_failed"]
    invalid_calls = sum(n for name, n in tally.items() if name.startswith("invalid"))
    report = ledger.reconcile(
        standin.accepted_events(),
        notes={
            "transactions": dict(sorted(tally.items())),
            "tracking failures logged": len(failures),
            "outbox states": state_counts(engine),
        },
    )
    print(f"\n{report}")
    context = f"\n{report}\n" + "\n".join(relays.logs())
    report.assert_clean()
    assert exit_code == 0, context
    assert order_rows == tally["committed"] == len(ledger), context
    assert outbox_ids == ledger.committed_ids, context  # nothing rolled back or invalid stored
    assert state_counts(engine) == {OutboxState.DELIVERED.value: len(ledger)}, context
    assert len(failures) == invalid_calls, context  # each swallowed failure was logged
    assert report.same_key_resends == 0, context
    assert standin.stats().rejected == 0, context
    return report


def test_only_committed_valid_events_are_delivered_each_once(
    pg_engine: Engine, standin: MixpanelStandin, relays: RelayLauncher
) -> None:
    """1,000 transactions, 30 % rolled back, some with invalid events: the committed valid, once."""
    run_atomicity_scenario(pg_engine, standin, relays, transactions=1_000)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_ten_thousand_transactions_deliver_exactly_the_committed_valid_events(
    pg_engine: Engine, standin: MixpanelStandin, relays: RelayLauncher
) -> None:
    """10,000 transactions from several threads: the ledger balances with no re-send at all."""
    run_atomicity_scenario(pg_engine, standin, relays, transactions=10_000)
