"""Replays and requeues never put a profile back in time, on every supported database.

Mixpanel deduplicates re-sent events by ``$insert_id`` but applies every profile update it
receives: a replayed ``$set plan=free`` delivered before ``$set plan=pro`` would revert the
profile. A profile update a later update of the same profile follows is skipped, counted as
superseded, and the dry run counts events and profile updates apart.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from helpers.standin import standin_settings
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import relay
from relay import _store as store
from relay import admin
from relay._delivery.drain import Drainer, DrainResult
from relay._mixpanel.client import MixpanelImportClient
from relay._tables import audit, outbox
from relay.admin import EventFilter
from relay.cli import main
from relay.testing.mixpanel_standin import MixpanelStandin

PERSON = "u-replay-1"


@pytest.fixture
def drainer(engine: Engine, standin: MixpanelStandin) -> Iterator[Drainer]:
    """A drainer on the test database and the stand-in, with the project token."""
    settings = standin_settings(standin, engine, mixpanel_project_token=standin.project_token)
    with MixpanelImportClient(settings) as client:
        made = Drainer(engine, client, settings, rng=random.Random(1), monotonic=lambda: 0.0)
        yield made
        made.close()


def _set(engine: Engine, **properties: Any) -> None:
    with Session(engine) as session:
        relay.update_profile(
            session, distinct_id=PERSON, operation="$set", properties=properties, strict=True
        )
        session.commit()


def _drain(drainer: Drainer) -> DrainResult:
    now = dt.datetime.now(dt.UTC)
    return drainer.drain_until_idle(clock=lambda: now)


def _plan(standin: MixpanelStandin) -> object:
    profile = standin.profiles().get(("user", "", PERSON)) or {}
    return profile.get("plan")


def _free_then_pro(engine: Engine, drainer: Drainer, standin: MixpanelStandin) -> list[int]:
    """`$set plan=free` delivered, then `$set plan=pro` delivered; returns their outbox ids."""
    _set(engine, plan="free")
    assert _drain(drainer).delivered == 1
    _set(engine, plan="pro")
    assert _drain(drainer).delivered == 1
    assert _plan(standin) == "pro"
    with engine.connect() as conn:
        return list(conn.execute(sa.select(outbox.c.id).order_by(outbox.c.id)).scalars())


def _add_event(engine: Engine) -> None:
    now = dt.datetime.now(dt.UTC)
    with store.transaction(engine) as conn:
        store.insert_event(
            conn,
            values={
                "insert_id": str(uuid.uuid4()),
                "event": "svc.test.thing_done",
                "distinct_id": PERSON,
                "time_ms": int((now - dt.timedelta(hours=1)).timestamp() * 1000),
                "properties": {"organization_id": "org-1"},
                "state": "delivered",
                "finished_at": now,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            },
        )


def _cli(engine: Engine, *args: str) -> Result:
    url = engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(main, ["--database-url", url, *args], catch_exceptions=False)


def test_replay_of_everything_leaves_the_profile_at_its_latest_state(
    engine: Engine, drainer: Drainer, standin: MixpanelStandin
) -> None:
    """Replaying `$set plan=free` and the later `$set plan=pro` re-sends only `pro`: the
    profile never goes back to `free`, and the earlier update is counted as superseded."""
    earlier, later = _free_then_pro(engine, drainer, standin)

    result = admin.replay(engine, EventFilter(), allow_all=True, now=dt.datetime.now(dt.UTC))
    _drain(drainer)

    assert (result.changed, result.superseded, result.skipped) == (1, 1, 0)
    assert _plan(standin) == "pro"
    with engine.connect() as conn:
        states = dict(conn.execute(sa.select(outbox.c.id, outbox.c.lane)).all())
        detail = conn.execute(sa.select(audit.c.detail)).scalar_one()
    assert states == {earlier: 0, later: 1}  # the earlier row was never requeued
    assert "1 profile update(s) not re-sent" in detail


def test_replay_of_only_the_superseded_update_sends_nothing(
    engine: Engine, drainer: Drainer, standin: MixpanelStandin
) -> None:
    """`relay replay --id <the free update> --yes` changes nothing and says why: a later
    update of the same profile superseded it."""
    earlier, _ = _free_then_pro(engine, drainer, standin)
    sent = len(standin.profile_requests())

    result = _cli(engine, "replay", "--id", str(earlier), "--yes")

    assert result.exit_code == 0, result.output
    assert "replayed 0 events" in result.output
    assert "not re-sent: 1 profile updates" in result.output
    _drain(drainer)
    assert len(standin.profile_requests()) == sent
    assert _plan(standin) == "pro"


def test_dry_run_counts_events_profile_updates_and_superseded_apart(
    engine: Engine, drainer: Drainer, standin: MixpanelStandin
) -> None:
    """The dry run says how many rows are events and how many profile updates, and how many
    of those a replay would skip as superseded, as text and as JSON."""
    _free_then_pro(engine, drainer, standin)
    _add_event(engine)

    text = _cli(engine, "replay", "--all")
    as_json = _cli(engine, "replay", "--all", "--json")

    assert text.exit_code == 0, text.output
    first = text.output.splitlines()[0]
    assert first.startswith("dry run: 3 rows match: 1 events, 2 profile updates (1 superseded")
    payload = orjson.loads(as_json.output)
    assert (payload["count"], payload["events"], payload["profile_updates"]) == (3, 1, 2)
    assert payload["superseded"] == 1


def _kill_first(engine: Engine) -> int:
    """Make the first row a dead letter, as a refusal would have; returns its id."""
    with engine.begin() as conn:
        first = conn.execute(sa.select(sa.func.min(outbox.c.id))).scalar_one()
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.id == first)
            .values(state="dead", last_error="HTTP 400: refused")
        )
        return int(first)


def test_requeue_of_a_dead_update_a_later_one_superseded_leaves_it_dead(
    engine: Engine, drainer: Drainer, standin: MixpanelStandin
) -> None:
    """A dead `$set plan=free` followed by a delivered `$set plan=pro` is not requeued by
    `dead-letters requeue`: the profile stays `pro`, the row stays dead."""
    _free_then_pro(engine, drainer, standin)
    first = _kill_first(engine)

    result = admin.requeue_dead_letters(
        engine, EventFilter(), allow_all=True, now=dt.datetime.now(dt.UTC)
    )
    _drain(drainer)

    assert (result.changed, result.superseded) == (0, 1)
    assert _plan(standin) == "pro"
    with engine.connect() as conn:
        state = conn.execute(sa.select(outbox.c.state).where(outbox.c.id == first)).scalar_one()
    assert state == "dead"
