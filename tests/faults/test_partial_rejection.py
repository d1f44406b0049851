"""Partial rejection: records Mixpanel refuses one by one end dead with its reason, the rest land.

The stand-in refuses chosen ``$insert_id``\\ s in otherwise valid batches (a 400 with
``failed_records``, as Mixpanel answers ``/import?strict=1``). Exactly those rows must end
``dead`` with the stand-in's field and message in ``last_error``; every other row of the same
batches is delivered; nothing is sent twice.
"""

from __future__ import annotations

import random

import sqlalchemy as sa
from ledger import Ledger, sends_by_insert_id
from rig import (
    RelayLauncher,
    SurveyEvents,
    commit_backlog,
    pending_count,
    state_counts,
    wait_until,
)
from sqlalchemy.engine import Engine

from relay._tables import OutboxState, outbox
from relay.testing.mixpanel_standin import MixpanelStandin

EVENTS = 1_000
BATCH = 200
#: Refused records are drawn from the first batches only, so later batches are all clean.
REFUSED_FROM_FIRST = 600
REFUSED = 40
FIELD = "properties.survey_id"
MESSAGE = "'properties.survey_id' refused by the fault suite"


def test_refused_records_end_dead_with_the_reason_and_the_rest_are_delivered_once(
    pg_engine: Engine, standin: MixpanelStandin, relays: RelayLauncher
) -> None:
    """Refused records end dead with Mixpanel's reason; the rest are delivered; none is retried."""
    ledger = Ledger(f"partial rejection: {REFUSED} of {EVENTS:,} refused")
    commit_backlog(pg_engine, ledger, SurveyEvents(), EVENTS)
    with pg_engine.connect() as conn:
        in_order = list(conn.execute(sa.select(outbox.c.insert_id).order_by(outbox.c.id)).scalars())
    refused = set(random.sample(in_order[:REFUSED_FROM_FIRST], REFUSED))
    standin.reject_insert_ids(refused, field=FIELD, message=MESSAGE)
    ledger.expect_refused(refused)

    relay = relays.start(batch_max_events=str(BATCH))
    wait_until(
        lambda: pending_count(pg_engine) == 0 or not relay.alive,
        timeout=60,
        what="every row to be delivered or dead",
        context=relays.diagnosis,
    )
    exit_code = relay.stop()

    with pg_engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.insert_id, outbox.c.state, outbox.c.attempts, outbox.c.last_error)
        ).all()
    dead = {r.insert_id: r.last_error for r in rows if r.state == OutboxState.DEAD.value}
    log = standin.request_log()
    sends = sends_by_insert_id(log)
    report = ledger.reconcile(
        standin.accepted_events(),
        notes={
            "requests by status": standin.stats().by_status,
            "records refused by the stand-in": standin.stats().rejected,
            "outbox states": state_counts(pg_engine),
        },
    )
    print(f"\n{report}")
    context = f"\n{report}\n" + "\n".join(relays.logs())
    report.assert_clean()
    assert exit_code == 0, context
    assert dead.keys() == refused, context
    assert set(dead.values()) == {f"{FIELD}: {MESSAGE}"}, context
    assert state_counts(pg_engine) == {
        OutboxState.DELIVERED.value: EVENTS - REFUSED,
        OutboxState.DEAD.value: REFUSED,
    }, context
    assert {r.attempts for r in rows} == {1}, context  # nothing retried
    assert all(len(requests) == 1 for requests in sends.values()), context
    assert len(sends) == EVENTS, context
    assert report.same_key_resends == 0, context
    assert standin.stats().rejected == REFUSED, context
    assert standin.stats().by_status == {400: REFUSED_FROM_FIRST // BATCH, 200: 2}, context
