"""Drain ticks against real databases and the Mixpanel stand-in over loopback HTTP."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from helpers.outbox import row_values
from helpers.standin import standin_settings
from sqlalchemy.engine import Engine

from relay import _store as store
from relay._config import RelaySettings
from relay._daemon.metrics import RelayMetrics
from relay._daemon.pacing import MetricsFeed
from relay._delivery.drain import Drainer, DrainResult
from relay._mixpanel.client import MixpanelImportClient, SendOutcome
from relay._tables import OutboxEvent, OutboxState, outbox
from relay.testing.mixpanel_standin import MixpanelStandin

#: Ticks run at the real clock's time (to the second), never before the events' time: the
#: drainer holds back a row whose time is ahead of its ``now``.
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
#: Event time: a day before the real clock, so the stand-in's time rules accept it.
EVENT_TIME_MS = int((time.time() - 86_400) * 1000)

SettingsFactory = Callable[..., RelaySettings]


def _values(**overrides: Any) -> dict[str, Any]:
    properties = {"organization_id": "org-1", "is_cron_job": False}
    return row_values(at=NOW, **({"time_ms": EVENT_TIME_MS, "properties": properties} | overrides))


def _add(engine: Engine, count: int = 1, **overrides: Any) -> list[int]:
    """``count`` rows of ``_values(**overrides)``; their ids, in order."""
    rows = [_values(**overrides) for _ in range(count)]
    with store.transaction(engine) as conn:
        for values in rows:
            store.insert_event(conn, values=values)
        ids = conn.execute(
            sa.select(outbox.c.id)
            .where(outbox.c.insert_id.in_([r["insert_id"] for r in rows]))
            .order_by(outbox.c.id)
        ).scalars()
        return list(ids)


def _row(engine: Engine, row_id: int) -> sa.Row[Any]:
    with engine.connect() as conn:
        return conn.execute(sa.select(outbox).where(outbox.c.id == row_id)).one()


def _states(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.state, sa.func.count()).group_by(outbox.c.state)
        ).all()
    return {str(state): int(count) for state, count in rows}


@pytest.fixture
def make_settings(engine: Engine, standin: MixpanelStandin) -> SettingsFactory:
    """Settings pointing at the test database and the stand-in, with overrides."""

    def make(**overrides: Any) -> RelaySettings:
        return standin_settings(standin, engine, **overrides)

    return make


@pytest.fixture
def make_drainer(
    engine: Engine, make_settings: SettingsFactory
) -> Iterator[Callable[..., Drainer]]:
    """Drainers whose acks are stamped exactly at the tick's ``now`` (pinned monotonic clock)."""
    clients: list[MixpanelImportClient] = []

    def make(
        *,
        settings: RelaySettings | None = None,
        client: Any = None,
        stop: threading.Event | None = None,
        metrics: RelayMetrics | None = None,
        concurrency: int = 1,
        monotonic: Callable[[], float] = lambda: 0.0,
        rescan_seconds: float = 5.0,
    ) -> Drainer:
        settings = settings or make_settings()
        if client is None:
            client = MixpanelImportClient(settings)
            clients.append(client)
        return Drainer(
            engine,
            client,
            settings,
            observer=None if metrics is None else MetricsFeed(metrics),
            stop=stop,
            rng=random.Random(1),
            monotonic=monotonic,
            concurrency=concurrency,
            rescan_seconds=rescan_seconds,
        )

    yield make
    for client in clients:
        client.close()


def test_committed_event_is_delivered_once_with_its_stored_time_and_insert_id(
    engine: Engine, standin: MixpanelStandin, make_drainer: Callable[..., Drainer]
) -> None:
    """One committed row reaches Mixpanel once, as stored, and is marked delivered."""
    (row_id,) = _add(engine, insert_id="ins-0001", distinct_id="user-42")
    drainer = make_drainer()

    result = drainer.drain_once(now=NOW)
    again = drainer.drain_once(now=NOW + dt.timedelta(minutes=5))

    assert result == DrainResult(claimed=1, delivered=1)
    assert again == DrainResult()
    (sent,) = standin.accepted_events()
    assert sent["event"] == "svc.test.thing_done"
    assert sent["properties"] == {
        "time": EVENT_TIME_MS,
        "distinct_id": "user-42",
        "$insert_id": "ins-0001",
        "ip": "0",  # no GeoIP from the relay host's address
        "organization_id": "org-1",
        "is_cron_job": False,
    }
    row = _row(engine, row_id)
    assert (row.state, row.finished_at, row.attempts, row.lease_token) == (
        OutboxState.DELIVERED,
        NOW,
        1,
        None,
    )


def test_partial_400_kills_exactly_the_refused_rows_and_delivers_the_rest(
    engine: Engine, standin: MixpanelStandin, make_drainer: Callable[..., Drainer]
) -> None:
    """Records Mixpanel refuses are dead with its reason; the others of the batch are delivered."""
    ids = _add(engine, 5)
    refused = {ids[1], ids[3]}
    with engine.connect() as conn:
        insert_ids = conn.execute(
            sa.select(outbox.c.insert_id).where(outbox.c.id.in_(refused))
        ).scalars()
        standin.reject_insert_ids(insert_ids, field="properties.plan", message="bad plan")

    result = make_drainer().drain_once(now=NOW)

    assert (result.delivered, result.rejected, result.retried) == (3, 2, 0)
    for row_id in ids:
        row = _row(engine, row_id)
        if row_id in refused:
            assert row.state == OutboxState.DEAD
            assert row.last_error == "properties.plan: bad plan"
            assert row.finished_at == NOW
        else:
            assert row.state == OutboxState.DELIVERED
    assert standin.stats().unique == 3


def test_413_split_batch_is_delivered_entirely(
    engine: Engine, make_settings: SettingsFactory, make_drainer: Callable[..., Drainer]
) -> None:
    """When Mixpanel answers 413 the client splits the batch and every row ends delivered."""
    ids = _add(engine, 40)
    with MixpanelStandin(max_bytes=4096) as small:
        settings = make_settings(mixpanel_api_url=small.url)
        result = make_drainer(settings=settings).drain_once(now=NOW)
        statuses = [r.status for r in small.request_log()]
        unique = small.stats().unique
    assert result == DrainResult(claimed=40, delivered=40)
    assert 413 in statuses
    assert unique == len(ids)
    assert _states(engine) == {"delivered": 40}


@pytest.mark.parametrize("failure", [503, "timeout", "connection refused"])
def test_transient_failure_is_retried_with_backoff_and_then_delivered(
    engine: Engine,
    standin: MixpanelStandin,
    make_settings: SettingsFactory,
    make_drainer: Callable[..., Drainer],
    failure: int | str,
) -> None:
    """5xx, timeouts and refused connections keep the row pending until its retry time."""
    (row_id,) = _add(engine)
    settings = make_settings()
    if failure == "timeout":
        settings = make_settings(read_timeout_seconds=0.2)
        standin.delay_next(1.0)
    elif failure == "connection refused":
        settings = make_settings(mixpanel_api_url="http://127.0.0.1:1")
    else:
        standin.fail_next(int(failure))

    first = make_drainer(settings=settings).drain_once(now=NOW)

    assert (first.claimed, first.retried, first.delivered) == (1, 1, 0)
    row = _row(engine, row_id)
    assert (row.state, row.attempts, row.lease_token) == (OutboxState.PENDING, 1, None)
    delay = (row.next_attempt_at - NOW).total_seconds()
    assert 3.0 <= delay <= 7.0  # 2 s base for the first attempt, plus 1-5 s of jitter
    assert row.last_error

    drainer = make_drainer()
    assert drainer.drain_once(now=row.next_attempt_at - dt.timedelta(milliseconds=1)).claimed == 0
    second = drainer.drain_once(now=row.next_attempt_at)
    assert second == DrainResult(claimed=1, delivered=1)
    assert _row(engine, row_id).attempts == 2
    assert standin.stats().unique == 1


def test_retry_delay_grows_with_the_rows_attempts(
    engine: Engine, standin: MixpanelStandin, make_drainer: Callable[..., Drainer]
) -> None:
    """A row on its fourth attempt waits 16 s plus jitter, not the first attempt's 2 s."""
    (row_id,) = _add(engine, attempts=3)
    standin.fail_next(503)
    make_drainer().drain_once(now=NOW)
    delay = (_row(engine, row_id).next_attempt_at - NOW).total_seconds()
    assert 17.0 <= delay <= 21.0


def test_row_out_of_attempts_is_dead_with_the_last_error(
    engine: Engine,
    standin: MixpanelStandin,
    make_settings: SettingsFactory,
    make_drainer: Callable[..., Drainer],
) -> None:
    """A retryable failure on the last allowed attempt kills the row, naming the limit."""
    (row_id,) = _add(engine, attempts=2)
    standin.fail_next(503)
    result = make_drainer(settings=make_settings(max_attempts=3)).drain_once(now=NOW)
    assert (result.dead_after_max_attempts, result.retried) == (1, 0)
    row = _row(engine, row_id)
    assert row.state == OutboxState.DEAD
    assert row.last_error == "max attempts (3) reached: HTTP 503: Service Unavailable"


def test_poison_row_never_blocks_the_rows_behind_it(
    engine: Engine,
    standin: MixpanelStandin,
    make_settings: SettingsFactory,
    make_drainer: Callable[..., Drainer],
) -> None:
    """A row failing again and again waits out its backoff while later rows are delivered."""
    drainer = make_drainer(settings=make_settings(max_attempts=2))
    (poison,) = _add(engine)
    standin.fail_next(503)
    assert drainer.drain_once(now=NOW).retried == 1

    later = NOW + dt.timedelta(seconds=1)
    behind = _add(engine, 3, next_attempt_at=later)
    assert drainer.drain_once(now=later) == DrainResult(claimed=3, delivered=3)

    standin.fail_next(503)
    retry_at = _row(engine, poison).next_attempt_at
    assert drainer.drain_once(now=retry_at).dead_after_max_attempts == 1
    assert _row(engine, poison).state == OutboxState.DEAD
    assert all(_row(engine, i).state == OutboxState.DELIVERED for i in behind)


def test_row_whose_properties_cannot_be_encoded_is_dead_and_its_batch_delivered(
    engine: Engine, make_drainer: Callable[..., Drainer]
) -> None:
    """Stored properties that are not a JSON object kill that row only."""
    (good_before,) = _add(engine)
    (poison,) = _add(engine, properties=[1, 2, 3])
    (good_after,) = _add(engine)
    result = make_drainer().drain_once(now=NOW)
    assert (result.delivered, result.rejected) == (2, 1)
    assert _row(engine, poison).state == OutboxState.DEAD
    assert "not a JSON object" in _row(engine, poison).last_error
    assert _row(engine, good_before).state == _row(engine, good_after).state == "delivered"


def test_401_stops_sending_keeps_rows_untouched_and_reports_the_auth_error(
    engine: Engine,
    standin: MixpanelStandin,
    make_settings: SettingsFactory,
    make_drainer: Callable[..., Drainer],
) -> None:
    """After a 401 no further request goes out and every row is back as it was, attempts too."""
    ids = _add(engine, 30, attempts=2)
    # Small requests, so the claimed batch needs several and the 401 comes on the first.
    settings = make_settings(mixpanel_service_account_secret="wrong", batch_max_bytes=1024)
    metrics = RelayMetrics()

    result = make_drainer(settings=settings, metrics=metrics).drain_once(now=NOW)

    assert result.auth_error is not None
    assert "401" in result.auth_error
    assert (result.claimed, result.released, result.delivered, result.retried) == (30, 30, 0, 0)
    assert [r.status for r in standin.request_log()] == [401]
    for row_id in ids:
        row = _row(engine, row_id)
        assert (row.state, row.attempts, row.lease_token, row.next_attempt_at) == (
            OutboxState.PENDING,
            2,
            None,
            NOW,
        )
    assert metrics.health()[1]["last_success_age_seconds"] is None


def test_batch_claimed_after_stop_is_released_unsent(
    engine: Engine, standin: MixpanelStandin, make_drainer: Callable[..., Drainer]
) -> None:
    """Once shutdown is requested, a claimed batch goes back untouched instead of being sent."""
    ids = _add(engine, 3)
    stop = threading.Event()
    stop.set()
    result = make_drainer(stop=stop).drain_once(now=NOW)
    assert (result.claimed, result.released) == (3, 3)
    assert standin.request_log() == []
    assert all(_row(engine, i).attempts == 0 for i in ids)
    assert all(_row(engine, i).lease_token is None for i in ids)


class _ReclaimingSender:
    """A client that lets another relay re-claim the batch (lease expired) before answering."""

    def __init__(self, engine: Engine, inner: MixpanelImportClient) -> None:
        self.engine = engine
        self.inner = inner
        self.thief: store.Claim | None = None

    def send(self, events: Sequence[OutboxEvent]) -> SendOutcome:
        with store.transaction(self.engine, write=True) as conn:
            self.thief = store.claim(
                conn, now=NOW + dt.timedelta(hours=1), limit=100, lease_seconds=60
            )
        return self.inner.send(events)


def test_ack_after_the_lease_was_reclaimed_leaves_the_new_claim_alone(
    engine: Engine, make_settings: SettingsFactory, make_drainer: Callable[..., Drainer]
) -> None:
    """A slow relay whose rows were re-claimed reports them lease_lost and changes nothing."""
    ids = _add(engine, 2)
    settings = make_settings()
    with MixpanelImportClient(settings) as client:
        sender = _ReclaimingSender(engine, client)
        result = make_drainer(settings=settings, client=sender).drain_once(now=NOW)
    assert (result.claimed, result.delivered, result.lease_lost) == (2, 0, 2)
    assert sender.thief is not None
    for row_id in ids:
        row = _row(engine, row_id)
        assert (row.state, row.lease_token) == (OutboxState.PENDING, sender.thief.token)


class _BrokenSender:
    """A client with a bug: send raises."""

    def send(self, events: Sequence[OutboxEvent]) -> SendOutcome:
        raise RuntimeError("bug")


def test_client_that_raises_leaves_the_batch_scheduled_for_retry(
    engine: Engine, make_drainer: Callable[..., Drainer]
) -> None:
    """An unexpected client exception retries the batch with backoff instead of stranding it."""
    (row_id,) = _add(engine)
    result = make_drainer(client=_BrokenSender()).drain_once(now=NOW)
    assert result.retried == 1
    row = _row(engine, row_id)
    assert (row.state, row.lease_token, row.last_error) == (
        OutboxState.PENDING,
        None,
        "client error: RuntimeError",
    )


def test_drain_until_idle_loops_while_batches_come_back_full(
    engine: Engine,
    standin: MixpanelStandin,
    make_settings: SettingsFactory,
    make_drainer: Callable[..., Drainer],
) -> None:
    """Twelve due rows with a batch limit of five take three ticks in one call."""
    _add(engine, 12)
    drainer = make_drainer(settings=make_settings(batch_max_events=5))
    result = drainer.drain_until_idle(clock=lambda: NOW)
    assert (result.claimed, result.delivered, result.batch_full) == (12, 12, False)
    assert [r.events for r in standin.request_log()] == [5, 5, 2]


def test_drain_until_idle_stops_at_a_transient_failure_instead_of_burning_the_backlog(
    engine: Engine,
    standin: MixpanelStandin,
    make_settings: SettingsFactory,
    make_drainer: Callable[..., Drainer],
) -> None:
    """After a 503 on a full batch the rest of the backlog is left untried, attempts intact."""
    ids = _add(engine, 12)
    standin.fail_next(503)
    drainer = make_drainer(settings=make_settings(batch_max_events=5))
    result = drainer.drain_until_idle(clock=lambda: NOW)
    assert (result.claimed, result.retried, result.delivered) == (5, 5, 0)
    assert [_row(engine, i).attempts for i in ids] == [1] * 5 + [0] * 7


def test_concurrent_drain_delivers_every_row_exactly_once(
    engine: Engine,
    standin: MixpanelStandin,
    make_settings: SettingsFactory,
    make_drainer: Callable[..., Drainer],
) -> None:
    """Three threads draining side by side send each row once and lose no lease."""
    ids = _add(engine, 60)
    drainer = make_drainer(settings=make_settings(batch_max_events=4), concurrency=3)
    result = drainer.drain_until_idle(clock=lambda: NOW)
    assert (result.claimed, result.delivered, result.lease_lost) == (60, 60, 0)
    assert standin.stats().accepted == standin.stats().unique == len(ids)
    assert _states(engine) == {"delivered": 60}


def test_with_a_delivered_retention_of_zero_delivered_rows_are_deleted_and_the_rest_kept(
    engine: Engine,
    standin: MixpanelStandin,
    make_settings: SettingsFactory,
    make_drainer: Callable[..., Drainer],
) -> None:
    """``RELAY_DELIVERED_RETENTION_HOURS=0``: every accepted row is gone after its ack (whole
    batches, acked together, and a batch Mixpanel partly refused), each sent once; a refused
    row stays dead with its reason and a row failing transiently stays pending."""
    ids = _add(engine, 40)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.id, outbox.c.insert_id).where(outbox.c.id.in_(ids)))
        insert_id = {row.id: row.insert_id for row in rows}
    standin.reject_insert_ids([insert_id[ids[5]]], field="properties.plan", message="bad plan")
    settings = make_settings(batch_max_events=4, delivered_retention_hours=0)
    drainer = make_drainer(settings=settings, concurrency=3)

    result = drainer.drain_until_idle(clock=lambda: NOW)

    assert (result.claimed, result.delivered, result.rejected, result.lease_lost) == (40, 39, 1, 0)
    assert standin.stats().accepted == standin.stats().unique == 39
    assert _states(engine) == {"dead": 1}
    assert _row(engine, ids[5]).last_error == "properties.plan: bad plan"

    (failing,) = _add(engine)
    standin.fail_next(503)
    assert make_drainer(settings=settings).drain_once(now=NOW).retried == 1
    assert _row(engine, failing).state == OutboxState.PENDING
    assert _states(engine) == {"dead": 1, "pending": 1}


def test_drain_until_idle_stops_after_max_batches(
    engine: Engine,
    standin: MixpanelStandin,
    make_settings: SettingsFactory,
    make_drainer: Callable[..., Drainer],
) -> None:
    """The batch budget is shared by all threads and leaves the rest pending."""
    _add(engine, 30)
    drainer = make_drainer(settings=make_settings(batch_max_events=5), concurrency=2)
    result = drainer.drain_until_idle(clock=lambda: NOW, max_batches=3)
    assert (result.claimed, result.delivered) == (15, 15)
    assert _states(engine) == {"delivered": 15, "pending": 15}


def test_drain_updates_the_metrics(
    engine: Engine, standin: MixpanelStandin, make_drainer: Callable[..., Drainer]
) -> None:
    """Delivered and dead counters, the send histogram and the success time follow each tick."""
    ids = _add(engine, 3)
    with engine.connect() as conn:
        insert_id = conn.execute(
            sa.select(outbox.c.insert_id).where(outbox.c.id == ids[0])
        ).scalar_one()
    standin.reject_insert_ids([insert_id])
    metrics = RelayMetrics()
    make_drainer(metrics=metrics).drain_once(now=NOW)
    sample = metrics.registry.get_sample_value
    default = {"destination": "default"}
    assert sample("relay_delivered_total", default) == 2
    assert sample("relay_dead_total", {"reason": "rejected", **default}) == 1
    assert sample("relay_send_seconds_count", {"status": "400", **default}) == 1
    assert (sample("relay_last_success_timestamp_seconds") or 0) > 0
    assert metrics.health()[0] is True


# --- the claim cursor: reading past rows already claimed --------------------------------------


def _due(seconds_before_now: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds_before_now)


def test_a_row_due_before_the_claim_cursor_is_claimed_before_the_drain_reports_idle(
    engine: Engine,
    standin: MixpanelStandin,
    make_drainer: Callable[..., Drainer],
    make_settings: SettingsFactory,
) -> None:
    """Full claims start where the previous one ended; a row that became due behind that point
    (here: committed late with an early next_attempt_at) is claimed by the claim from the start
    that follows the first short claim, and drain_until_idle does not stop before it."""
    drainer = make_drainer(settings=make_settings(batch_max_events=2))
    ids = [_add(engine, next_attempt_at=_due(10 - i))[0] for i in range(5)]

    first = drainer.drain_once(now=NOW)
    (late,) = _add(engine, next_attempt_at=_due(60))
    second = drainer.drain_once(now=NOW)
    third = drainer.drain_once(now=NOW)
    fourth = drainer.drain_once(now=NOW)
    idle = drainer.drain_once(now=NOW)

    assert (first.claimed, first.batch_full) == (2, True)
    # Started at the cursor: the late row, due earlier, is passed over...
    assert (second.claimed, second.batch_full) == (2, True)
    # ...until the end of the due rows: short, but "more may be due" behind the cursor.
    assert (third.claimed, third.batch_full) == (1, True)
    assert (fourth.claimed, fourth.delivered, fourth.batch_full) == (1, 1, False)
    assert idle == DrainResult()
    assert [_row(engine, i).state for i in [*ids, late]] == [OutboxState.DELIVERED] * 6
    assert len(standin.accepted_events()) == 6


def test_drain_until_idle_delivers_rows_left_behind_the_claim_cursor(
    engine: Engine,
    standin: MixpanelStandin,
    make_drainer: Callable[..., Drainer],
    make_settings: SettingsFactory,
) -> None:
    """The same through drain_until_idle: nothing due is left when it returns."""
    drainer = make_drainer(settings=make_settings(batch_max_events=2))
    _add(engine, 3, next_attempt_at=_due(30))
    drainer.drain_once(now=NOW)  # full: the cursor now sits at the rows due 30 s ago
    _add(engine, 2, next_attempt_at=_due(60))  # behind the cursor

    result = drainer.drain_until_idle(clock=lambda: NOW)

    assert result.delivered == 3
    assert _states(engine) == {OutboxState.DELIVERED.value: 5}


def test_claims_go_back_to_the_oldest_due_row_every_rescan_interval_during_a_backlog(
    engine: Engine,
    standin: MixpanelStandin,
    make_drainer: Callable[..., Drainer],
    make_settings: SettingsFactory,
) -> None:
    """While claims keep coming back full, a row behind the cursor waits at most the rescan
    interval, not for the end of the backlog."""
    clock = [0.0]
    drainer = make_drainer(
        settings=make_settings(batch_max_events=2), monotonic=lambda: clock[0], rescan_seconds=5.0
    )
    _add(engine, 8, next_attempt_at=_due(30))
    drainer.drain_once(now=NOW)
    (late,) = _add(engine, next_attempt_at=_due(60))

    clock[0] = 4.9
    before = drainer.drain_once(now=NOW)
    late_state_before = _row(engine, late).state
    clock[0] = 5.0
    after = drainer.drain_once(now=NOW)

    assert (before.claimed, before.batch_full) == (2, True)
    assert late_state_before == OutboxState.PENDING
    assert (after.claimed, after.batch_full) == (2, True)
    assert _row(engine, late).state == OutboxState.DELIVERED


# --- rows ahead of the clock, rows too large for any request ---------------------------------


def _ms(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


def test_row_with_a_time_ahead_of_the_tick_is_not_sent_before_that_time(
    engine: Engine, standin: MixpanelStandin, make_drainer: Callable[..., Drainer]
) -> None:
    """A due row whose time is 30 s ahead goes back unsent, due at its time, attempt returned."""
    # The ticks run 30 s behind the real clock, so that the row's time is already past for the
    # stand-in (which, like Mixpanel, re-stamps a time ahead of its own clock) when it is sent.
    at = NOW
    tick = NOW - dt.timedelta(seconds=30)
    (row_id,) = _add(engine, time_ms=_ms(at), next_attempt_at=tick)
    drainer = make_drainer()

    early = drainer.drain_once(now=tick)
    row = _row(engine, row_id)
    still_early = drainer.drain_once(now=at - dt.timedelta(milliseconds=1))
    sent_before = standin.accepted_events()
    on_time = drainer.drain_once(now=at)

    assert early == DrainResult(claimed=1, postponed=1)
    assert (row.state, row.next_attempt_at, row.attempts, row.lease_token) == (
        OutboxState.PENDING,
        at,
        0,
        None,
    )
    assert still_early == DrainResult()
    assert sent_before == []
    assert on_time == DrainResult(claimed=1, delivered=1)
    (sent,) = standin.accepted_events()
    assert sent["properties"]["time"] == _ms(at)


def test_rows_ahead_of_the_clock_never_hold_back_the_rest_of_their_batch(
    engine: Engine, standin: MixpanelStandin, make_drainer: Callable[..., Drainer]
) -> None:
    """In one claim the rows whose time has come are delivered; only the early one waits."""
    ids = _add(engine, 2)
    (ahead,) = _add(engine, time_ms=_ms(NOW) + 5_000)
    ids += _add(engine, 2)
    result = make_drainer().drain_once(now=NOW)
    assert result == DrainResult(claimed=5, delivered=4, postponed=1)
    assert {e["properties"]["$insert_id"] for e in standin.accepted_events()} == {
        _row(engine, i).insert_id for i in ids
    }
    assert _row(engine, ahead).state == OutboxState.PENDING


def test_row_too_large_for_any_request_is_dead_at_claim_and_the_rest_delivered(
    engine: Engine,
    standin: MixpanelStandin,
    make_drainer: Callable[..., Drainer],
    make_settings: SettingsFactory,
) -> None:
    """A row whose stored properties exceed batch_max_bytes is dead with its size; others go."""
    (first,) = _add(engine)
    (huge,) = _add(engine, properties={"organization_id": "org-1", "blob": "x" * 10_000})
    (last,) = _add(engine)
    result = make_drainer(settings=make_settings(batch_max_bytes=4096)).drain_once(now=NOW)
    assert result == DrainResult(claimed=3, delivered=2, rejected=1)
    assert len(standin.accepted_events()) == 2
    row = _row(engine, huge)
    assert row.state == OutboxState.DEAD
    assert row.last_error is not None
    assert row.last_error.startswith("stored properties render to ")
    assert row.last_error.endswith(" bytes, over the request limit of 4096 bytes")
    assert {_row(engine, first).state, _row(engine, last).state} == {OutboxState.DELIVERED}
