"""Replay, dead letters and the audit trail through ``relay.admin``, on every supported database."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from relay import _store as store
from relay import admin
from relay._config import RelaySettings
from relay._delivery.drain import Drainer
from relay._mixpanel.client import MixpanelImportClient
from relay._tables import OutboxState, audit, outbox
from relay.admin import EventFilter, FilterError
from relay.testing.mixpanel_standin import MixpanelStandin

#: The real clock (to the second): a drain tick before an event's time holds the row back.
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
LATER = NOW + dt.timedelta(hours=1)
#: A day before the ticks: the relay sends no time ahead of its clock, and the stand-in (on the
#: real clock, later still) keeps a past time as it is.
EVENT_TIME_MS = int((NOW - dt.timedelta(days=1)).timestamp() * 1000)
EVENT = "svc.test.thing_done"
OTHER = "svc.test.other_done"


def _values(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "insert_id": str(uuid.uuid4()),
        "event": EVENT,
        "distinct_id": "user-1",
        "time_ms": EVENT_TIME_MS,
        "properties": {"organization_id": "org-1", "is_cron_job": False},
        "next_attempt_at": NOW,
        "created_at": NOW - dt.timedelta(days=1),
        "updated_at": NOW - dt.timedelta(days=1),
    }
    values.update(overrides)
    return values


def _dead(**overrides: Any) -> dict[str, Any]:
    return {
        "state": OutboxState.DEAD.value,
        "attempts": 3,
        "last_error": "properties.plan: bad plan",
        "finished_at": NOW - dt.timedelta(hours=2),
        **overrides,
    }


def _delivered(**overrides: Any) -> dict[str, Any]:
    return {
        "state": OutboxState.DELIVERED.value,
        "attempts": 1,
        "finished_at": NOW - dt.timedelta(hours=2),
        **overrides,
    }


def _add(engine: Engine, count: int = 1, **overrides: Any) -> list[int]:
    rows = [_values(**overrides) for _ in range(count)]
    with store.transaction(engine) as conn:
        for values in rows:
            store.insert_event(conn, values=values)
        return list(
            conn.execute(
                sa.select(outbox.c.id)
                .where(outbox.c.insert_id.in_([r["insert_id"] for r in rows]))
                .order_by(outbox.c.id)
            ).scalars()
        )


def _table(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(outbox).order_by(outbox.c.id))]


def _row(engine: Engine, row_id: int) -> sa.Row[Any]:
    with engine.connect() as conn:
        return conn.execute(sa.select(outbox).where(outbox.c.id == row_id)).one()


def _audit(engine: Engine) -> list[sa.Row[Any]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(audit).order_by(audit.c.id)))


@pytest.fixture
def drainer(engine: Engine, standin: MixpanelStandin) -> Iterator[Drainer]:
    """A drainer sending to the stand-in, with acks stamped at the tick's ``now``."""
    settings = RelaySettings(
        database_url=engine.url.render_as_string(hide_password=False),
        mixpanel_api_url=standin.url,
        mixpanel_project_id=standin.project_id,
        mixpanel_service_account_username=standin.username,
        mixpanel_service_account_secret=standin.secret,
        read_timeout_seconds=5.0,
    )
    with MixpanelImportClient(settings) as client:
        yield Drainer(engine, client, settings, monotonic=lambda: 0.0)


# --- dry run ---------------------------------------------------------------------------------


def test_preview_counts_breaks_down_and_samples_without_changing_anything(engine: Engine) -> None:
    """A dry run reports count, per-(event, state) breakdown and a sample, and changes nothing."""
    _add(engine, 3, **_dead())
    _add(engine, 2, event=OTHER, **_delivered())
    _add(engine, 4)
    before = _table(engine)

    p = admin.preview(
        engine,
        EventFilter(states=(OutboxState.DEAD, OutboxState.DELIVERED)),
        now=NOW,
        sample_size=2,
    )

    assert p.count == 5
    assert [(b.event, b.state, b.count) for b in p.breakdown] == [
        (OTHER, OutboxState.DELIVERED, 2),
        (EVENT, OutboxState.DEAD, 3),
    ]
    assert [r.event.id for r in p.sample] == sorted(r.event.id for r in p.sample)
    assert len(p.sample) == 2
    assert _table(engine) == before
    assert _audit(engine) == []


# --- executed replay -------------------------------------------------------------------------


def test_replay_makes_rows_pending_and_due_keeping_time_and_insert_id(engine: Engine) -> None:
    """A replayed row is pending, due now, attempts and errors reset, time and insert_id kept."""
    (row_id,) = _add(engine, **_dead(insert_id="ins-replay-1", lease_token="t" * 32))
    before = _row(engine, row_id)

    result = admin.replay(engine, EventFilter(ids=(row_id,)), now=LATER, actor="alice")

    row = _row(engine, row_id)
    assert (result.changed, result.skipped) == (1, 0)
    assert (row.state, row.next_attempt_at, row.attempts) == (OutboxState.PENDING, LATER, 0)
    assert (row.lease_token, row.last_error, row.finished_at) == (None, None, None)
    assert (row.insert_id, row.time_ms, row.event, row.distinct_id, row.properties) == (
        before.insert_id,
        before.time_ms,
        before.event,
        before.distinct_id,
        before.properties,
    )


def test_replay_touches_only_rows_matching_every_filter_field(engine: Engine) -> None:
    """Rows outside any one filter field (event, state, distinct_id) are left untouched."""
    target = _add(engine, 2, distinct_id="user-7", **_dead())
    _add(engine, 1, distinct_id="user-8", **_dead())
    _add(engine, 1, distinct_id="user-7", event=OTHER, **_dead())
    _add(engine, 1, distinct_id="user-7", **_delivered())
    before = {row[0]: row for row in _table(engine)}

    result = admin.replay(
        engine,
        EventFilter(events=(EVENT,), states=(OutboxState.DEAD,), distinct_ids=("user-7",)),
        now=LATER,
    )

    assert result.changed == 2
    after = {row[0]: row for row in _table(engine)}
    assert {i for i in after if after[i] != before[i]} == set(target)


def test_replay_skips_rows_leased_by_a_relay_and_reports_them(engine: Engine) -> None:
    """A row under a live lease is never yanked from its relay; it is counted as skipped."""
    (leased,) = _add(engine, lease_token="a" * 32, next_attempt_at=LATER + dt.timedelta(minutes=1))
    (expired,) = _add(engine, lease_token="b" * 32, next_attempt_at=LATER - dt.timedelta(minutes=1))
    held = _row(engine, leased)

    result = admin.replay(engine, EventFilter(states=(OutboxState.PENDING,)), now=LATER)

    assert (result.changed, result.skipped) == (1, 1)
    assert _row(engine, leased) == held
    assert _row(engine, expired).lease_token is None


def test_replay_walks_the_selection_in_batches_of_the_given_size(engine: Engine) -> None:
    """Twenty-five rows in batches of ten are replayed in three batches, each reported."""
    _add(engine, 25, **_dead())
    seen: list[admin.BatchProgress] = []

    result = admin.replay(
        engine,
        EventFilter(states=(OutboxState.DEAD,)),
        now=LATER,
        batch_size=10,
        on_batch=seen.append,
    )

    assert (result.changed, result.batches) == (25, 3)
    assert [(p.changed, p.done, p.total) for p in seen] == [(10, 10, 25), (10, 20, 25), (5, 25, 25)]


def test_replay_writes_one_audit_entry_with_actor_filter_and_count(engine: Engine) -> None:
    """An executed replay is audited: actor, action, the filter as JSON, the exact count."""
    _add(engine, 3, **_dead())

    result = admin.replay(
        engine, EventFilter(events=(EVENT,), states=(OutboxState.DEAD,)), now=LATER, actor="alice"
    )

    (entry,) = _audit(engine)
    assert entry.id == result.audit_id
    assert (entry.actor, entry.action, entry._mapping["count"], entry.at) == (
        "alice",
        "replay",
        3,
        LATER,
    )
    assert entry.filter == {"events": [EVENT], "states": ["dead"]}
    assert entry.detail.startswith("finished: 3 requeued")


def test_replay_without_actor_names_the_os_user(engine: Engine) -> None:
    """The audit entry's actor defaults to the OS user running the command."""
    _add(engine, **_dead())

    admin.replay(engine, EventFilter(states=(OutboxState.DEAD,)), now=LATER)

    assert _audit(engine)[0].actor == admin.default_actor()


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"events": ("svc.test.no_such_thing",)}, id="unknown-event"),
        pytest.param({}, id="empty"),
    ],
)
def test_replay_refuses_a_bad_filter_changing_and_auditing_nothing(
    engine: Engine, bad: dict[str, Any]
) -> None:
    """An unknown event name or an empty filter raises FilterError; no row or audit is written."""
    _add(engine, 2, **_dead())
    before = _table(engine)

    with pytest.raises(FilterError) as caught:
        admin.replay(engine, EventFilter(**bad), now=LATER)

    assert ("svc.test.no_such_thing" in str(caught.value)) == ("events" in bad)
    assert _table(engine) == before
    assert _audit(engine) == []


def test_replay_accepts_an_event_name_found_only_in_the_outbox(engine: Engine) -> None:
    """An unregistered name that rows carry is known: the filter selects them."""
    _add(engine, **_dead(event="svc.legacy.thing_done"))

    result = admin.replay(engine, EventFilter(events=("svc.legacy.thing_done",)), now=LATER)

    assert result.changed == 1


# --- through the relay, to the stand-in ------------------------------------------------------


def test_replayed_dead_letters_are_delivered_on_the_next_drain_with_their_key(
    engine: Engine, standin: MixpanelStandin, drainer: Drainer
) -> None:
    """Dead letters replayed reach Mixpanel on the next drain with their $insert_id and time."""
    ids = _add(engine, 3, **_dead())
    keys = {(r[1], r[4]) for r in _table(engine)}
    assert drainer.drain_once(now=LATER).claimed == 0

    admin.replay(engine, EventFilter(states=(OutboxState.DEAD,)), now=LATER)
    result = drainer.drain_once(now=LATER)

    assert result.delivered == 3
    sent = {
        (e["properties"]["$insert_id"], e["properties"]["time"]) for e in standin.accepted_events()
    }
    assert sent == keys
    assert {_row(engine, i).state for i in ids} == {OutboxState.DELIVERED}


def test_replaying_delivered_events_is_deduplicated_by_mixpanel(
    engine: Engine, standin: MixpanelStandin, drainer: Drainer
) -> None:
    """Replayed delivered events re-send the same keys: duplicates grow, unique counts do not."""
    _add(engine, 4)
    assert drainer.drain_once(now=NOW).delivered == 4
    first = standin.stats()

    admin.replay(engine, EventFilter(states=(OutboxState.DELIVERED,)), now=LATER)
    assert drainer.drain_once(now=LATER).delivered == 4

    again = standin.stats()
    assert (first.unique, first.duplicates) == (4, 0)
    assert (again.unique, again.duplicates, again.accepted) == (4, 4, 8)


# --- dead letters ----------------------------------------------------------------------------


def test_dead_letters_are_grouped_by_reason_with_counts_times_and_events(engine: Engine) -> None:
    """Many rows dead of one cause read as one group with its count, first/last seen, events."""
    early, late = NOW - dt.timedelta(hours=5), NOW - dt.timedelta(hours=1)
    _add(engine, 3, **_dead(last_error="cause A", finished_at=early))
    _add(engine, 2, event=OTHER, **_dead(last_error="cause A", finished_at=late))
    _add(engine, 1, **_dead(last_error="cause B"))
    _add(engine, 2)

    groups = admin.dead_letters(engine)

    assert [(g.reason, g.count, g.events) for g in groups] == [
        ("cause A", 5, {EVENT: 3, OTHER: 2}),
        ("cause B", 1, {EVENT: 1}),
    ]
    assert (groups[0].first_at, groups[0].last_at) == (early, late)


def test_dead_letters_latest_groups_only_the_most_recently_dead_rows(engine: Engine) -> None:
    """``latest=N`` groups the N rows that died last (what the Django admin shows), on each
    database; without it every dead row counts. Rows that are not dead never enter either."""
    old, mid, new = (NOW - dt.timedelta(hours=h) for h in (9, 5, 1))
    _add(engine, 3, **_dead(last_error="old cause", finished_at=old))
    _add(engine, 2, event=OTHER, **_dead(last_error="new cause", finished_at=new))
    _add(engine, 2, **_dead(last_error="mid cause", finished_at=mid))
    _add(engine, 4, **_delivered(finished_at=NOW))

    latest = admin.dead_letters(engine, latest=3)
    every = admin.dead_letters(engine)

    assert [(g.reason, g.count, g.events) for g in latest] == [
        ("new cause", 2, {OTHER: 2}),
        ("mid cause", 1, {EVENT: 1}),
    ]
    assert (latest[0].first_at, latest[0].last_at) == (new, new)
    assert [(g.reason, g.count) for g in every] == [
        ("old cause", 3),
        ("mid cause", 2),
        ("new cause", 2),
    ]
    # Narrowed to a destination, the latest are that destination's latest.
    _add(engine, 2, destination="eu", **_dead(last_error="eu cause", finished_at=NOW))
    assert [g.reason for g in admin.dead_letters(engine, latest=3)] == ["eu cause", "new cause"]
    mine = admin.dead_letters(engine, latest=3, destination="default")
    assert [(g.reason, g.count) for g in mine] == [("new cause", 2), ("mid cause", 1)]


def test_requeue_of_one_reason_replays_only_that_group(engine: Engine) -> None:
    """Requeuing a reason's group replays its rows only and is audited as requeue."""
    group = _add(engine, 2, **_dead(last_error="cause A"))
    (other,) = _add(engine, **_dead(last_error="cause B"))

    result = admin.requeue_dead_letters(engine, EventFilter(errors=("cause A",)), now=LATER)

    assert result.changed == 2
    assert {_row(engine, i).state for i in group} == {OutboxState.PENDING}
    assert _row(engine, other).state == OutboxState.DEAD
    (entry,) = _audit(engine)
    assert (entry.action, entry._mapping["count"]) == ("requeue", 2)


def test_requeue_refuses_a_selection_of_rows_that_are_not_dead(engine: Engine) -> None:
    """Asking dead letters for delivered rows is a filter error, and nothing changes."""
    _add(engine, **_delivered())

    with pytest.raises(FilterError, match="delivered"):
        admin.requeue_dead_letters(engine, EventFilter(states=(OutboxState.DELIVERED,)), now=LATER)

    assert _audit(engine) == []


def test_discard_deletes_only_dead_rows_and_audits_reason_and_count(engine: Engine) -> None:
    """Discarding deletes the selected dead rows, never live ones, and audits why and how many."""
    _add(engine, 3, **_dead())
    kept = _add(engine, 2) + _add(engine, 1, **_delivered())

    result = admin.discard_dead_letters(
        engine, EventFilter(events=(EVENT,)), reason="bad plan shipped in 1.2", now=LATER
    )

    assert result.changed == 3
    assert [row[0] for row in _table(engine)] == kept
    (entry,) = _audit(engine)
    assert (entry.action, entry._mapping["count"]) == ("discard", 3)
    assert "bad plan shipped in 1.2" in entry.detail


def test_discard_without_a_reason_is_refused(engine: Engine) -> None:
    """A blank reason is a filter error; no row is deleted and nothing is audited."""
    _add(engine, **_dead())

    with pytest.raises(FilterError, match="reason"):
        admin.discard_dead_letters(
            engine, EventFilter(states=()), reason=" ", now=LATER, allow_all=True
        )

    assert len(_table(engine)) == 1
    assert _audit(engine) == []


def test_show_dead_letter_refuses_a_row_that_is_not_dead(engine: Engine) -> None:
    """Showing a pending row as a dead letter names its actual state."""
    (row_id,) = _add(engine)

    with pytest.raises(FilterError, match="pending"):
        admin.show_dead_letter(engine, str(row_id))
