"""The pipelined drain's own failure modes: a stop, a failed ack, a batch claimed ahead too long."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from helpers.outbox import add_rows
from helpers.standin import standin_settings
from sqlalchemy.engine import Engine

from relay._delivery.drain import Drainer, DrainObserver, DrainResult
from relay._delivery.limiter import AdaptiveLimiter
from relay._errors import StoreError
from relay._mixpanel.client import MixpanelImportClient
from relay._tables import OutboxState, outbox
from relay.testing.mixpanel_standin import MixpanelStandin

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
EVENT_TIME_MS = int((time.time() - 86_400) * 1000)


def _add(engine: Engine, count: int) -> None:
    add_rows(engine, count, at=NOW, time_ms=EVENT_TIME_MS)


def _rows(engine: Engine) -> list[sa.Row[Any]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(
                    outbox.c.id, outbox.c.state, outbox.c.attempts, outbox.c.lease_token
                ).order_by(outbox.c.id)
            ).all()
        )


@pytest.fixture
def make_drainer() -> Iterator[Callable[..., Drainer]]:
    """Paced drainers (a limiter: the pipelined drain) on a stand-in, closed after the test."""
    clients: list[MixpanelImportClient] = []

    def make(
        engine: Engine,
        standin: MixpanelStandin,
        *,
        limiter: AdaptiveLimiter,
        stop: threading.Event | None = None,
        observer: DrainObserver | None = None,
        **overrides: Any,
    ) -> Drainer:
        overrides.setdefault("batch_max_events", 50)
        settings = standin_settings(standin, engine, **overrides)
        client = MixpanelImportClient(settings, cancel=stop)
        clients.append(client)
        return Drainer(
            engine,
            client,
            settings,
            rng=random.Random(1),
            stop=stop,
            limiter=limiter,
            observer=observer,
        )

    yield make
    for client in clients:
        client.close()


def test_a_stop_while_batches_are_claimed_ahead_hands_their_rows_back(
    engine: Engine, make_drainer: Callable[..., Drainer]
) -> None:
    """Stopped mid-pipeline: rows claimed ahead or cut short go back pending, attempt returned."""
    _add(engine, 600)
    stop = threading.Event()
    with MixpanelStandin(latency_ms=400) as standin:
        drainer = make_drainer(engine, standin, limiter=AdaptiveLimiter(1), stop=stop)
        results: list[Any] = []
        worker = threading.Thread(
            target=lambda: results.append(drainer.drain_until_idle(clock=lambda: NOW))
        )
        worker.start()
        # The first batch goes out alone; from the second on the pipeline claims ahead.
        deadline = time.monotonic() + 30
        while standin.stats().requests < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)  # the claim stage now holds a batch waiting for the one slot
        stop.set()
        worker.join(30)
        assert not worker.is_alive()
        stats = standin.stats()
    (result,) = results
    rows = _rows(engine)
    delivered = [r for r in rows if r.state == OutboxState.DELIVERED]
    pending = [r for r in rows if r.state == OutboxState.PENDING]
    assert len(delivered) + len(pending) == 600
    assert pending, "the stop came before the backlog was drained"
    # Every row not delivered is free for the next relay at once: no lease, no attempt used.
    assert {(r.attempts, r.lease_token) for r in pending} == {(0, None)}
    assert {r.attempts for r in delivered} == {1}
    assert result.released >= 50  # at least the batch claimed ahead went back
    assert result.delivered == len(delivered)
    assert stats.duplicates == 0
    assert stats.unique >= len(delivered)


@pytest.fixture
def failing_second_ack(pg_engine: Engine) -> Iterator[Engine]:
    """PostgreSQL refuses the second statement that marks rows delivered (a real DB error)."""
    with pg_engine.begin() as conn:
        conn.exec_driver_sql("CREATE SEQUENCE relay_test_delivered_rows")
        conn.exec_driver_sql(
            """CREATE FUNCTION relay_test_fail_an_ack() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF nextval('relay_test_delivered_rows') = 51 THEN
                    RAISE EXCEPTION 'relay test: this ack fails';
                END IF;
                RETURN NEW;
            END $$"""
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER relay_test_fail_an_ack BEFORE UPDATE ON relay_outbox FOR EACH ROW "
            "WHEN (NEW.state = 'delivered') EXECUTE FUNCTION relay_test_fail_an_ack()"
        )
    try:
        yield pg_engine
    finally:
        with pg_engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER relay_test_fail_an_ack ON relay_outbox")
            conn.exec_driver_sql("DROP FUNCTION relay_test_fail_an_ack()")
            conn.exec_driver_sql("DROP SEQUENCE relay_test_delivered_rows")


def test_a_failed_ack_loses_no_row(
    failing_second_ack: Engine, make_drainer: Callable[..., Drainer]
) -> None:
    """An ack the database refuses raises; its rows stay leased, then go again, none lost."""
    engine = failing_second_ack
    _add(engine, 300)
    with MixpanelStandin() as standin:
        drainer = make_drainer(
            engine,
            standin,
            limiter=AdaptiveLimiter(2),
            lease_seconds=30,
            request_deadline_seconds=20,
        )
        with pytest.raises(StoreError):
            drainer.drain_until_idle(clock=lambda: NOW)
        rows = _rows(engine)
        leased = [r for r in rows if r.state == OutboxState.PENDING and r.lease_token]
        # The batch whose ack failed (and any acked with it) still holds its lease: no other
        # relay takes it before the lease runs out, and nothing marked it delivered or dead.
        assert len(leased) >= 50
        assert {r.attempts for r in leased} == {1}
        assert OutboxState.DEAD not in {r.state for r in rows}
        # Once the lease ran out the rows are claimed and sent again (same $insert_id).
        later = NOW + dt.timedelta(seconds=31)
        for _ in range(20):
            drainer.drain_until_idle(clock=lambda: later)
            if {r.state for r in _rows(engine)} == {OutboxState.DELIVERED}:
                break
        stats = standin.stats()
    rows = _rows(engine)
    assert {r.state for r in rows} == {OutboxState.DELIVERED}
    assert stats.unique == 300
    assert stats.duplicates >= 50  # re-sent after the failed ack; Mixpanel drops repeats


class _HandBacks:
    """Records when each batch's result came in (monotonic), for the hand-back's timing."""

    def __init__(self) -> None:
        self.results: list[tuple[float, DrainResult]] = []

    def requests_sent(self, requests: object) -> None:
        """Not needed here."""

    def batch_done(self, result: DrainResult) -> None:
        """Note the time of every result."""
        self.results.append((time.monotonic(), result))


def test_a_batch_claimed_ahead_goes_back_before_its_lease_runs_out(
    engine: Engine, make_drainer: Callable[..., Drainer]
) -> None:
    """A batch waiting for a slot longer than half its lease goes back unsent, lease still live."""
    _add(engine, 200)
    lease = 5.0
    observer = _HandBacks()
    with MixpanelStandin(latency_ms=3500) as standin:
        # One slot; a request takes 3.5 s; the batch claimed ahead may wait lease / 2 = 2.5 s.
        # Each margin is a second or half of one: the wait over lease / 2, the read timeout
        # and the deadline over the request.
        drainer = make_drainer(
            engine,
            standin,
            limiter=AdaptiveLimiter(1),
            observer=observer,
            lease_seconds=lease,
            request_deadline_seconds=4.5,
            read_timeout_seconds=4.0,
        )
        result = drainer.drain_until_idle(clock=lambda: NOW)
        log = standin.request_log()
        stats = standin.stats()
    rows = _rows(engine)
    delivered = [r for r in rows if r.state == OutboxState.DELIVERED]
    pending = [r for r in rows if r.state == OutboxState.PENDING]
    # Two batches went out (the first alone, the second through the pipeline); the third,
    # claimed ahead, went back unsent with its attempt returned; nothing was sent twice.
    assert result.released == 50
    assert len(delivered) == 100 == stats.unique
    assert stats.duplicates == 0
    assert {(r.attempts, r.lease_token) for r in pending} == {(0, None)}
    # It was claimed once the second request had its slot, i.e. as that request left, and went
    # back while its lease (8 s from the claim) still ran.
    (handed_back,) = [at for at, r in observer.results if r.released]
    second_sent = log[1].at
    assert handed_back - second_sent < lease
