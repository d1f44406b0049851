"""Profile updates keep their order per profile across a relay SIGKILLed mid-send, lease
expiry, re-sends and two relays draining side by side (real ``relay run`` processes)."""

from __future__ import annotations

import random
import threading
import time
import uuid

import sqlalchemy as sa
from ledger import ProfileLedger
from rig import RelayLauncher, wait_until
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import relay
from relay._tables import OutboxState, outbox
from relay.testing.mixpanel_standin import MixpanelStandin

HOLD_SECONDS = 5.0


def _set(engine: Engine, distinct_id: str, value: int) -> None:
    with Session(engine) as session:
        relay.update_profile(
            session,
            distinct_id=distinct_id,
            operation="$set",
            properties={"step": value},
            strict=True,
        )
        session.commit()


def _leased(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(outbox)
                .where(outbox.c.lease_token.is_not(None), outbox.c.state == "pending")
            ).scalar_one()
        )


def _pending(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(outbox)
                .where(outbox.c.state == OutboxState.PENDING.value)
            ).scalar_one()
        )


def test_three_sets_end_at_the_last_value_after_a_relay_killed_mid_send(
    pg_engine: Engine, standin: MixpanelStandin, relays: RelayLauncher
) -> None:
    """The first $set is held in flight and its relay SIGKILLed: its lease holds the later
    $sets back (no request for them while it lasts); a second relay re-sends the first after
    the lease expires, then the others in order, and the profile ends at the last value."""
    for value in (1, 2, 3):
        _set(pg_engine, "u-1", value)
    standin.delay_next(HOLD_SECONDS)
    first = relays.start(mixpanel_project_token=standin.project_token)
    wait_until(
        lambda: _leased(pg_engine) == 1, timeout=30, what="a claim", context=relays.diagnosis
    )
    time.sleep(2.0)  # the request is in flight, held by the stand-in
    first.kill()
    time.sleep(HOLD_SECONDS + 0.5)  # the held request is applied, its answer lost
    assert standin.profiles().get(("user", "", "u-1")) == {"step": 1}, relays.diagnosis()
    assert _pending(pg_engine) == 3  # nothing acked; steps 2 and 3 never sent
    assert len(standin.profile_requests()) == 1
    relays.start(mixpanel_project_token=standin.project_token)
    wait_until(
        lambda: _pending(pg_engine) == 0,
        timeout=60,
        what="every row acked",
        context=relays.diagnosis,
    )
    assert standin.profiles()[("user", "", "u-1")] == {"step": 3}
    # One re-send of step 1, then 2 and 3: each request alone.
    assert [r.applied for r in standin.profile_requests()] == [1, 1, 1, 1]


def test_two_relays_and_a_kill_keep_every_profile_in_order(
    pg_engine: Engine, standin: MixpanelStandin, relays: RelayLauncher
) -> None:
    """Forty profiles with five $sets each, drained by two relays at once, one SIGKILLed
    part-way: every profile ends at its last $set, every row delivered."""
    profiles = [f"u-{n}" for n in range(40)]
    for step in range(1, 6):
        for distinct_id in profiles:
            _set(pg_engine, distinct_id, step)
    victim = relays.start(mixpanel_project_token=standin.project_token)
    relays.start(mixpanel_project_token=standin.project_token)
    wait_until(
        lambda: len(standin.profile_requests()) >= 2,
        timeout=30,
        what="a claim",
        context=relays.diagnosis,
    )
    victim.kill()
    wait_until(
        lambda: _pending(pg_engine) == 0,
        timeout=90,
        what="every row acked",
        context=relays.diagnosis,
    )
    final = standin.profiles()
    assert {d: final[("user", "", d)] for d in profiles} == {d: {"step": 5} for d in profiles}


class ProfileTrickle:
    """A producer thread: each transaction a $union of a fresh token and a $set of the step,
    one in five rolled back on purpose; recorded in the ledger after commit or rollback."""

    def __init__(self, engine: Engine, ledger: ProfileLedger, profiles: int) -> None:
        self._engine = engine
        self._ledger = ledger
        self._profiles = [f"p-{n}" for n in range(profiles)]
        self._steps = dict.fromkeys(self._profiles, 0)
        self._rng = random.Random(14)
        self._stop = threading.Event()
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="profile-trickle", daemon=True)

    def __enter__(self) -> ProfileTrickle:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._one()
                time.sleep(0.01)
        except Exception as exc:  # noqa: BLE001 - surfaced in __exit__
            self._error = exc

    def _one(self) -> None:
        distinct_id = self._rng.choice(self._profiles)
        token = uuid.uuid4().hex
        step = self._steps[distinct_id] + 1
        commit = self._rng.random() >= 0.2
        with Session(self._engine) as session:
            for operation, properties in (
                ("$union", {"seen": [token]}),
                ("$set", {"step": step}),
            ):
                relay.update_profile(
                    session,
                    distinct_id=distinct_id,
                    operation=operation,
                    properties=properties,
                    strict=True,
                )
            if commit:
                session.commit()
            else:
                session.rollback()
        if commit:
            self._steps[distinct_id] = step
            self._ledger.record_committed(distinct_id, step=step, token=token)
        else:
            self._ledger.record_rolled_back(token)


def test_profile_ledger_balances_through_repeated_kills_while_updates_are_written(
    pg_engine: Engine, standin: MixpanelStandin, relays: RelayLauncher
) -> None:
    """While a producer commits (and rolls back) profile updates, relays are SIGKILLed at
    random moments four times; a last relay drains everything. Every committed update was
    applied, no rolled-back one ever was, and every profile ends at its last committed $set."""
    ledger = ProfileLedger("profiles under kills")
    rng = random.Random(7)
    with ProfileTrickle(pg_engine, ledger, profiles=12):
        for _ in range(4):
            victim = relays.start(mixpanel_project_token=standin.project_token)
            time.sleep(rng.uniform(0.8, 2.0))
            victim.kill()
    relays.start(mixpanel_project_token=standin.project_token)
    wait_until(
        lambda: _pending(pg_engine) == 0,
        timeout=120,
        what="every row acked",
        context=relays.diagnosis,
    )
    report = ledger.reconcile(standin.profiles())
    assert report.committed > 20, report
    assert report.rolled_back > 0, report
    report.assert_clean()
