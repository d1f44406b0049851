"""Pause and resume delivery (``relay pause`` / ``relay resume``) and the claim's fair lane.

Real databases, the real ``relay`` entry point and the real claim: a pause must keep every
covered row exactly as it was while claims pass over it, leave other events flowing, and be
audited; replayed rows must never stand in front of live ones.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine

from relay import _store as store
from relay._store.lanes import BULK_SHARE_DIVISOR
from relay._tables import Lane, OutboxState, audit, outbox
from relay.admin import stats
from relay.cli import main

NOW = dt.datetime.now(dt.UTC)
EVENT = "svc.test.thing_done"
OTHER = "svc.test.other_done"


def _add(engine: Engine, count: int = 1, **overrides: Any) -> list[int]:
    ids = []
    with store.transaction(engine) as conn:
        for _ in range(count):
            values: dict[str, Any] = {
                "insert_id": str(uuid.uuid4()),
                "event": EVENT,
                "distinct_id": "user-1",
                "time_ms": 1_767_225_600_000,
                "properties": {"n": 1},
                "next_attempt_at": NOW - dt.timedelta(seconds=10),
                "created_at": NOW - dt.timedelta(minutes=1),
                "updated_at": NOW - dt.timedelta(minutes=1),
            }
            values.update(overrides)
            store.insert_event(conn, values=values)
            ids.append(
                conn.execute(
                    sa.select(outbox.c.id).where(outbox.c.insert_id == values["insert_id"])
                ).scalar_one()
            )
    return ids


def _relay(engine: Engine, *args: str) -> Result:
    url = engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(main, ["--database-url", url, *args], catch_exceptions=False)


def _claim(engine: Engine, *, limit: int = 100) -> store.Claim:
    with store.transaction(engine, write=True) as conn:
        return store.claim(conn, now=NOW, limit=limit, lease_seconds=60.0)


def _rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(outbox).order_by(outbox.c.id))]


def _audit(engine: Engine) -> list[sa.Row[Any]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(audit).order_by(audit.c.id)))


# --- pause and resume ------------------------------------------------------------------------


def test_pausing_everything_stops_claims_and_leaves_rows_exactly_as_they_were(
    engine: Engine,
) -> None:
    """While all delivery is paused a claim takes nothing and no row changes; resume restores."""
    ids = _add(engine, 3) + _add(engine, 2, event=OTHER)
    before = _rows(engine)

    result = _relay(engine, "pause", "--reason", "Mixpanel incident INC-42", "--actor", "ops")

    assert result.exit_code == 0, result.output
    assert "all delivery paused" in result.stdout
    claim = _claim(engine)
    assert claim.events == []
    assert not claim.full
    assert _rows(engine) == before
    result = _relay(engine, "resume", "--actor", "ops")
    assert result.exit_code == 0, result.output
    assert "all delivery resumed" in result.stdout
    assert sorted(e.id for e in _claim(engine).events) == ids


def test_pausing_one_event_passes_over_its_rows_and_delivers_the_others(engine: Engine) -> None:
    """A paused event's rows stay pending and untouched; other events are claimed as before."""
    paused = _add(engine, 3)
    flowing = _add(engine, 2, event=OTHER)
    assert _relay(engine, "pause", "--event", EVENT, "--reason", "runaway").exit_code == 0
    before = [r for r in _rows(engine) if r[0] in paused]

    assert [e.id for e in _claim(engine).events] == flowing

    assert [r for r in _rows(engine) if r[0] in paused] == before
    # Resuming another scope lifts nothing.
    assert "was not paused" in _relay(engine, "resume").stdout
    assert _claim(engine).events == []
    assert _relay(engine, "resume", "--event", EVENT).exit_code == 0
    assert [e.id for e in _claim(engine).events] == paused


def test_pause_and_resume_are_audited_once_and_shown_in_stats(engine: Engine) -> None:
    """Each change writes one audit entry with actor and reason; repeats change nothing."""
    first = _relay(engine, "pause", "--event", EVENT, "--reason", "bad deploy", "--actor", "ann")
    again = _relay(engine, "pause", "--event", EVENT, "--reason", "other", "--actor", "bob")
    assert first.exit_code == again.exit_code == 0
    assert "was already paused" in again.stdout
    assert "bad deploy" in again.stdout  # the first pause and its reason stay

    report = orjson.loads(_relay(engine, "stats", "--json").stdout)
    assert [(p["event"], p["reason"], p["actor"]) for p in report["paused"]] == [
        (EVENT, "bad deploy", "ann")
    ]
    assert [p.event for p in stats(engine, now=NOW).paused] == [EVENT]

    resumed = orjson.loads(_relay(engine, "resume", "--event", EVENT, "--json").stdout)
    assert resumed["changed"] is True
    assert resumed["pause"]["reason"] == "bad deploy"
    entries = [(e.action, e.actor, e.filter, e.count) for e in _audit(engine)]
    assert entries[0] == ("pause", "ann", {"event": EVENT}, 0)
    assert entries[1][0] == "resume"
    assert len(entries) == 2
    assert _audit(engine)[0].detail == "bad deploy"
    assert "bad deploy" in (_audit(engine)[1].detail or "")
    assert orjson.loads(_relay(engine, "stats", "--json").stdout)["paused"] == []


@pytest.mark.parametrize(
    ("args", "named"),
    [
        pytest.param(["pause", "--event", "Not An Event", "--reason", "x"], "--event", id="name"),
        pytest.param(["pause", "--reason", "   "], "--reason must not be empty", id="blank"),
        pytest.param(["pause", "--reason", "x" * 501], "longer than 500", id="long"),
        pytest.param(["resume", "--event", "svc..x"], "--event", id="resume-name"),
    ],
)
def test_bad_pause_input_exits_2_and_writes_nothing(
    engine: Engine, args: list[str], named: str
) -> None:
    """A malformed event name or reason is one line on stderr, exit 2, no pause, no audit."""
    result = _relay(engine, *args)
    assert result.exit_code == 2
    assert named in result.stderr
    assert orjson.loads(_relay(engine, "stats", "--json").stdout)["paused"] == []
    assert _audit(engine) == []


def test_pause_needs_a_reason(engine: Engine) -> None:
    """Without --reason click refuses the command (exit 2) and nothing is paused."""
    result = _relay(engine, "pause")
    assert result.exit_code == 2
    assert "--reason" in result.stderr
    assert _audit(engine) == []


# --- the fair lane ---------------------------------------------------------------------------


def test_live_rows_are_claimed_before_replayed_rows_due_earlier(engine: Engine) -> None:
    """Replayed rows due long before live ones still leave the claim to the live rows first."""
    bulk = _add(engine, 40, next_attempt_at=NOW - dt.timedelta(hours=1), lane=int(Lane.BULK))
    live = _add(engine, 5)

    claim = _claim(engine, limit=10)

    taken = [e.id for e in claim.events]
    assert set(live) <= set(taken)
    assert sorted(set(taken) - set(live)) == bulk[:5]
    assert claim.full


def test_replayed_rows_keep_a_share_while_live_rows_fill_every_claim(engine: Engine) -> None:
    """With more live rows due than a claim holds, the bulk lane still gets limit // 8 rows."""
    limit = 16
    bulk = _add(engine, 10, next_attempt_at=NOW - dt.timedelta(hours=1), lane=int(Lane.BULK))
    live = _add(engine, 30)

    taken = [e.id for e in _claim(engine, limit=limit).events]

    share = limit // BULK_SHARE_DIVISOR
    assert len(taken) == limit
    assert sorted(set(taken) & set(bulk)) == bulk[:share]
    assert sorted(set(taken) & set(live)) == live[: limit - share]


def test_the_claim_cursor_follows_the_live_lane_only(engine: Engine) -> None:
    """``last_due`` is the last live row handled, never a replayed row's time."""
    _add(engine, 3, next_attempt_at=NOW - dt.timedelta(hours=1), lane=int(Lane.BULK))
    live = _add(engine, 2, next_attempt_at=NOW - dt.timedelta(seconds=3))
    claim = _claim(engine, limit=100)
    assert set(live) <= {e.id for e in claim.events}
    assert claim.last_due == NOW - dt.timedelta(seconds=3)
    only_bulk = _add(engine, 2, next_attempt_at=NOW - dt.timedelta(hours=2), lane=int(Lane.BULK))
    claim = _claim(engine, limit=100)
    assert [e.id for e in claim.events] == only_bulk
    assert claim.last_due is None


def test_replay_moves_rows_to_the_bulk_lane(engine: Engine) -> None:
    """``relay replay`` makes delivered rows pending again behind live traffic."""
    ids = _add(
        engine,
        3,
        state=OutboxState.DELIVERED.value,
        attempts=1,
        finished_at=NOW - dt.timedelta(hours=1),
    )
    live = _add(engine, 1)
    result = _relay(engine, "replay", "--state", "delivered", "--yes")
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        lanes = dict(conn.execute(sa.select(outbox.c.id, outbox.c.lane)).all())
    assert {i: lanes[i] for i in ids} == dict.fromkeys(ids, int(Lane.BULK))
    assert lanes[live[0]] == int(Lane.LIVE)
    assert [e.id for e in _claim(engine, limit=1).events] == live


@pytest.mark.parametrize(
    ("live", "bulk", "limit", "resume", "paused"),
    [
        (0, 0, 10, False, False),
        (5, 0, 10, False, False),
        (0, 40, 10, False, False),
        (5, 40, 10, False, False),
        (30, 10, 16, False, False),
        (30, 10, 16, True, False),
        (12, 12, 7, False, False),  # limit // 8 == 0: no reserved share
        (25, 300, 200, True, True),
    ],
)
def test_one_statement_for_both_lanes_takes_the_rows_the_lane_by_lane_reads_take(
    pg_engine: Engine, live: int, bulk: int, limit: int, resume: bool, paused: bool
) -> None:
    """PostgreSQL reads both lanes in one statement; it chooses exactly the candidates, in the
    order, that reading the live lane and then the bulk lane's share would (a stale cursor,
    a paused event and claims smaller than 8 rows included)."""
    from relay._store import claims, lanes  # noqa: PLC0415 - the internals compared here

    _add(pg_engine, bulk, next_attempt_at=NOW - dt.timedelta(hours=1), lane=int(Lane.BULK))
    _add(pg_engine, bulk // 3, event=OTHER, lane=int(Lane.BULK))
    for n in range(live):
        _add(pg_engine, 1, next_attempt_at=NOW - dt.timedelta(seconds=60 - n))
    _add(pg_engine, live // 3, event=OTHER)
    exclusion = lanes.Exclusion(everything=False, events=(OTHER,) if paused else ())
    due_from = NOW - dt.timedelta(seconds=60 - live // 2) if resume else None
    read = {}
    for name, both in (("apart", None), ("together", claims._due_rows_of_both_lanes)):
        with store.transaction(pg_engine, write=True) as conn:
            read[name] = lanes.claim_candidates(
                conn,
                select_lane=functools.partial(claims._due_rows, "postgresql", True),
                select_both=None if both is None else functools.partial(both, "postgresql", True),
                params={"destination": "default", "now": NOW},
                limit=limit,
                due_from=due_from,
                exclusion=exclusion,
            )
            conn.rollback()
    apart, together = read["apart"], read["together"]
    assert [tuple(r)[:3] for r in together.rows] == [tuple(r) for r in apart.rows]
    assert (together.live, together.more) == (apart.live, apart.more)
    # Each case reads what it is meant to: rows of each lane that has some.
    assert (together.live > 0) == (live > 0)
    # (a claim under 8 rows reserves the bulk lane nothing: full of live rows, it takes none)
    reserved = bulk > 0 and (limit >= BULK_SHARE_DIVISOR or live < limit)
    assert (len(together.rows) > together.live) == reserved
