"""Profile and group updates reach a Mixpanel that answers as the ingestion spec documents.

The stand-in answers ``/engage`` and ``/groups`` with the spec's ``Received`` (text ``1`` by
default, ``{"status": 1, "error": null}`` with its verbose switch); an update it refuses comes
back per record under ``strict=1``, or as ``0`` from a request holding only refused updates.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from helpers.standin import StartStandin, standin_settings
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import relay
from relay._delivery.drain import Drainer
from relay._mixpanel.client import MixpanelImportClient
from relay._tables import outbox
from relay.testing.mixpanel_standin import MixpanelStandin

ORG = "organization_id"


def _drain(engine: Engine, standin: MixpanelStandin) -> None:
    settings = standin_settings(standin, engine, mixpanel_project_token=standin.project_token)
    now = dt.datetime.now(dt.UTC)
    with MixpanelImportClient(settings) as client:
        drainer = Drainer(engine, client, settings, rng=random.Random(1), monotonic=lambda: 0.0)
        try:
            drainer.drain_until_idle(clock=lambda: now)
        finally:
            drainer.close()


def _commit(engine: Engine, *writers: Callable[[Session], object]) -> None:
    with Session(engine) as session:
        for writer in writers:
            writer(session)
        session.commit()


def _user(distinct_id: str, plan: str) -> Callable[[Session], object]:
    return lambda s: relay.update_profile(
        s, distinct_id=distinct_id, operation="$set", properties={"plan": plan}, strict=True
    )


def _group(group_id: str, name: str) -> Callable[[Session], object]:
    return lambda s: relay.update_group(
        s,
        group_key=ORG,
        group_id=group_id,
        operation="$set",
        properties={"organization_name": name},
        strict=True,
    )


def _states(engine: Engine) -> dict[str, str]:
    """Each row's state by the profile it updates (distinct id or group id)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.distinct_id, outbox.c.state).order_by(outbox.c.id))
        return {str(who): str(state) for who, state in rows}


@pytest.fixture(params=[False, True], ids=["text-1", "verbose-json"])
def standin(request: pytest.FixtureRequest, start_standin: StartStandin) -> MixpanelStandin:
    """A stand-in answering Received as text 1, or as {"status": 1, "error": null}."""
    return start_standin(verbose_answers=request.param)


def test_profile_and_group_updates_are_delivered_on_either_documented_answer(
    engine: Engine, standin: MixpanelStandin
) -> None:
    """A committed user $set and group $set are applied and marked delivered, once each."""
    _commit(engine, _user("u-1", "pro"), _group("org-1", "Acme"))
    _drain(engine, standin)
    profiles = standin.profiles()
    assert profiles[("user", "", "u-1")] == {"plan": "pro"}
    assert profiles[("group", ORG, "org-1")] == {"organization_name": "Acme"}
    assert set(_states(engine).values()) == {"delivered"}
    assert [(r.path, r.status) for r in standin.profile_requests()] == [
        ("/engage", 200),
        ("/groups", 200),
    ]


def test_an_update_refused_per_record_is_dead_lettered_alone(
    engine: Engine, standin: MixpanelStandin
) -> None:
    """Under strict=1 the refused update (named by index) is dead; its batch-mates and the group
    update are delivered in the same pass."""
    standin.refuse_profile_updates(["u-bad"])
    _commit(engine, _user("u-1", "a"), _user("u-bad", "b"), _user("u-2", "c"), _group("g", "G"))
    _drain(engine, standin)
    assert _states(engine) == {
        "u-1": "delivered",
        "u-bad": "dead",
        "u-2": "delivered",
        "g": "delivered",
    }
    assert ("user", "", "u-bad") not in standin.profiles()
    assert standin.profiles()[("user", "", "u-2")] == {"plan": "c"}


@pytest.mark.parametrize("verbose", [False, True], ids=["text-0", "verbose-status-0"])
def test_updates_answered_zero_are_split_until_each_is_dead_alone(
    engine: Engine, verbose: bool
) -> None:
    """Without per-record errors, a request answered 0 is split until each refused update is
    alone and dead; updates committed afterwards are delivered."""
    with MixpanelStandin(verbose_answers=verbose, profile_per_record_errors=False) as standin:
        standin.refuse_profile_updates(["u-bad", "u-worse", "g-bad"])
        _commit(engine, _user("u-bad", "a"), _user("u-worse", "b"), _group("g-bad", "G"))
        _drain(engine, standin)
        assert set(_states(engine).values()) == {"dead"}
        # /engage: the pair answered 0, then each half alone; /groups: the one update.
        assert [r.refused for r in standin.profile_requests()] == [2, 1, 1, 1]
        _commit(engine, _user("u-1", "a"), _group("g-1", "G"))
        _drain(engine, standin)
        states = _states(engine)
        assert (states["u-1"], states["g-1"]) == ("delivered", "delivered")
        assert standin.profiles()[("user", "", "u-1")] == {"plan": "a"}


def test_a_profile_update_answered_429_keeps_its_attempt_and_waits_for_the_shared_backoff(
    engine: Engine,
) -> None:
    """A 429 from /engage is the project's rate limit, not the update's failure: the row stays
    pending with its attempt given back, due at the shared throttle's end, then is delivered."""
    with MixpanelStandin() as standin:
        standin.fail_next(429)
        _commit(engine, _user("u-1", "pro"))
        settings = standin_settings(standin, engine, mixpanel_project_token=standin.project_token)
        now = dt.datetime.now(dt.UTC)
        with MixpanelImportClient(settings) as client:
            drainer = Drainer(engine, client, settings, rng=random.Random(1), monotonic=lambda: 0)
            try:
                assert drainer.drain_once(now=now).throttled == 1
                with engine.connect() as conn:
                    state, attempts, due = conn.execute(
                        sa.select(outbox.c.state, outbox.c.attempts, outbox.c.next_attempt_at)
                    ).one()
                assert (state, attempts) == ("pending", 0)
                due_at = due if due.tzinfo else due.replace(tzinfo=dt.UTC)
                assert due_at >= now + dt.timedelta(seconds=2)  # Mixpanel's backoff starts at 2 s
                drainer.drain_until_idle(clock=lambda: due_at + dt.timedelta(seconds=61))
            finally:
                drainer.close()
        assert _states(engine) == {"u-1": "delivered"}
        assert standin.profiles()[("user", "", "u-1")] == {"plan": "pro"}
