"""`relay migrate` runs while the host keeps tracking events: no write waits for the migration.

Each test brings relay's tables to revision 0001 (what a database in the field may be at),
starts the host (a thread tracking one real event per transaction with ``track()``, timing
each transaction) and then runs ``relay migrate`` in a process of its own up to head.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from migration_rig import (
    TrackingWriter,
    drop_relay_tables,
    revision,
    start_migrate,
    track_one,
    wait_until,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from relay import _migrations
from relay._database import create_engine

HEAD = "0007"
#: The outbox of a busy host: a million rows, almost all delivered (kept for replay).
ROWS = 1_000_000
PENDING = 10_000
#: The longest any tracked write may wait for a lock while the migration runs, enforced by the
#: server on the writer's connections (a write waiting longer fails the test; CPU time on a busy
#: machine does not count). The former revision 0002 rebuilt an index inside its transaction and
#: held every write for over a second at this size (bench/online_migration.py --old; figures in
#: BENCHMARKS.md); online, writes wait at most one of the migration's own lock timeouts.
BIG_TABLE_LOCK_WAIT_BOUND = 0.8
#: While another transaction holds relay_outbox, writers may wait one lock_timeout per attempt
#: (200 ms on PostgreSQL, 1 s on MariaDB), never as long as the holder holds it (seconds here).
HELD_LOCK_WAIT_BOUND = 2.0
MIGRATE_TIMEOUT = 120.0

#: The rows of the big table. The $insert_ids are unique and ascending, not random: loading the
#: unique index with ascending keys took a third of the million rows' load off (no migration
#: statement touches that index; the writers' own ids are random as ever). finished_at falls as
#: ids rise, so that building ix_relay_outbox_state_finished_at sorts for real: the former,
#: blocking 0002 (bench/online_migration.py --old, run in its place) still fails the test.
_LOAD = sa.text(
    """
    INSERT INTO relay_outbox (insert_id, event, distinct_id, time_ms, properties, state,
        attempts, next_attempt_at, created_at, updated_at, finished_at)
    SELECT lpad(g::text, 36, '0'), 'svc.surveys.survey_delivered', 'd-' || (g % 5000),
        1764000000000 + g, jsonb_build_object('n', g),
        CASE WHEN g <= :pending THEN 'pending' ELSE 'delivered' END,
        CASE WHEN g <= :pending THEN 0 ELSE 1 END, now(), now(), now(),
        CASE WHEN g <= :pending THEN NULL ELSE now() - g * interval '1 second' END
    FROM generate_series(1, :rows) AS g
    """
)


def _at_0001(url: str) -> Iterator[Engine]:
    engine = create_engine(url)
    drop_relay_tables(engine)
    _migrations.upgrade(engine, "0001")
    try:
        yield engine
    finally:
        drop_relay_tables(engine)
        engine.dispose()


@pytest.fixture
def pg_at_0001(postgresql_url: str) -> Iterator[Engine]:
    """PostgreSQL with relay's tables at revision 0001, dropped afterwards."""
    yield from _at_0001(postgresql_url)


@pytest.fixture(params=["postgresql", "mariadb"])
def server_at_0001(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """PostgreSQL and MariaDB, each with relay's tables at revision 0001."""
    yield from _at_0001(request.getfixturevalue(f"{request.param}_url"))


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _finish(migrate: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        _, stderr = migrate.communicate(timeout=MIGRATE_TIMEOUT)
    except subprocess.TimeoutExpired:
        migrate.kill()
        _, stderr = migrate.communicate()
        raise AssertionError(f"relay migrate did not finish: {stderr}") from None
    return migrate.returncode, stderr


def _index(engine: Engine, name: str) -> tuple[bool, str] | None:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = :name"
            ),
            {"name": name},
        ).one_or_none()
    return None if row is None else (bool(row[0]), str(row[1]))


def _assert_postgresql_at_head(engine: Engine) -> None:
    assert revision(engine) == HEAD
    state = _index(engine, "ix_relay_outbox_state_finished_at")
    assert state is not None
    assert state[0], "the rebuilt index is INVALID"
    assert "<> 'pending'" in state[1]
    assert _index(engine, "ix_relay_outbox_state_finished_at_new") is None
    with engine.connect() as conn:
        options = conn.execute(
            sa.text("SELECT reloptions FROM pg_class WHERE relname = 'relay_outbox'")
        ).scalar()
    assert options == ["fillfactor=50"]
    columns = {c["name"] for c in sa.inspect(engine).get_columns("relay_outbox")}
    assert "lease_expires_at" in columns


@pytest.mark.heavy
def test_relay_migrate_on_a_million_rows_never_holds_up_a_tracked_write(
    pg_at_0001: Engine,
) -> None:
    """Upgrading a 1M-row outbox from 0001 never makes a track() wait 0.8 s for a lock."""
    engine = pg_at_0001
    with engine.begin() as conn:
        conn.execute(_LOAD, {"rows": ROWS, "pending": PENDING})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE relay_outbox")  # settled, as a table in the field

    writer = TrackingWriter(engine, lock_wait_bound=BIG_TABLE_LOCK_WAIT_BOUND)
    writer.start()
    try:
        wait_until(lambda: writer.commits > 0 or writer.error, timeout=30, what="a first write")
        started = time.monotonic()
        migrate = start_migrate(_url(engine))
        code, stderr = _finish(migrate)
        finished = time.monotonic()
    finally:
        timings = writer.stop()

    assert code == 0, stderr
    during = [s for (start, s) in timings if start + s >= started and start <= finished]
    assert len(during) >= 20, "the writer hardly ran during the migration"
    _assert_postgresql_at_head(engine)
    with engine.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM relay_outbox")).scalar_one()
    assert total == ROWS + len(timings)


def _migration_waits_for_lock(engine: Engine) -> bool:
    """Whether the migration's ADD COLUMN is queued for relay_outbox's lock right now."""
    if engine.dialect.name == "postgresql":
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE relay_outbox ADD%'"
        )
    else:
        query = (
            "SELECT count(*) FROM information_schema.processlist WHERE db = DATABASE() "
            "AND state = 'Waiting for table metadata lock' "
            "AND info LIKE 'ALTER TABLE relay_outbox ADD%'"
        )
    with engine.connect() as conn:
        return bool(conn.execute(sa.text(query)).scalar_one())


def test_migration_facing_a_held_lock_retries_while_writers_keep_going(
    server_at_0001: Engine,
) -> None:
    """An open transaction on relay_outbox makes the migration wait and retry, never the writers.

    The holder is a business transaction that tracked an event and stays open. The migration
    is seen queued for the lock, then giving up and queued again (a retry); meanwhile the
    writer commits, each transaction within one lock timeout; the migration completes once
    the holder commits.
    """
    engine = server_at_0001
    holder = Session(engine)
    writer = TrackingWriter(engine, lock_wait_bound=HELD_LOCK_WAIT_BOUND)
    migrate: subprocess.Popen[str] | None = None
    try:
        track_one(holder, 0)
        holder.flush()  # the holder's transaction now holds its lock on relay_outbox
        writer.start()
        wait_until(lambda: writer.commits > 0 or writer.error, timeout=30, what="a first write")
        migrate = start_migrate(_url(engine))
        wait_until(
            lambda: _migration_waits_for_lock(engine), timeout=30, what="the migration to queue"
        )
        queued_at = time.monotonic()
        wait_until(lambda: not _migration_waits_for_lock(engine), timeout=30, what="it to give up")
        wait_until(lambda: _migration_waits_for_lock(engine), timeout=30, what="a retry")
        before = writer.commits
        wait_until(
            lambda: writer.commits >= before + 20 or writer.error,
            timeout=30,
            what="the writer to commit while the migration waits",
        )
        assert migrate.poll() is None, "the migration ended while the lock was held"
        assert revision(engine) == "0001"
        released_at = time.monotonic()
        holder.commit()
        code, stderr = _finish(migrate)
    finally:
        holder.close()
        if migrate is not None and migrate.poll() is None:
            migrate.kill()
            migrate.communicate()
        timings = writer.stop()

    assert code == 0, stderr
    held = [s for (start, s) in timings if start + s >= queued_at and start <= released_at]
    assert held, "no write overlapped the hold"
    assert revision(engine) == HEAD
    columns = {c["name"] for c in sa.inspect(engine).get_columns("relay_outbox")}
    assert "lease_expires_at" in columns


def test_migrate_rebuilds_an_index_a_failed_concurrent_build_left_invalid(
    pg_at_0001: Engine,
) -> None:
    """An INVALID index left by an interrupted run is dropped and rebuilt by the next run."""
    engine = pg_at_0001
    with Session(engine) as session:
        track_one(session, 1)
        track_one(session, 2)
        session.commit()
    # Two pending rows break uniqueness: the build fails and leaves an INVALID index, exactly
    # as a cancelled or crashed CREATE INDEX CONCURRENTLY does.
    autocommit = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    with autocommit as conn, pytest.raises(sa.exc.IntegrityError):
        conn.exec_driver_sql(
            "CREATE UNIQUE INDEX CONCURRENTLY ix_relay_outbox_state_finished_at_new "
            "ON relay_outbox (state)"
        )
    assert _index(engine, "ix_relay_outbox_state_finished_at_new") == (
        False,
        "CREATE UNIQUE INDEX ix_relay_outbox_state_finished_at_new ON public.relay_outbox "
        "USING btree (state)",
    )

    code, stderr = _finish(start_migrate(_url(engine)))

    assert code == 0, stderr
    _assert_postgresql_at_head(engine)
