"""The outbox store on real databases: insert, claim, fenced acks, release, error translation."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine

from relay import _store as store
from relay._database import create_engine
from relay._errors import DuplicateInsertIdError, OutboxTablesMissingError, StoreError
from relay._tables import LAST_ERROR_MAX_LENGTH, OutboxState, metadata, outbox

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
LEASE_SECONDS = 60.0


def _values(*, due: dt.datetime = NOW, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "insert_id": str(uuid.uuid4()),
        "event": "svc.test.thing_done",
        "distinct_id": "user-1",
        "time_ms": 1_767_225_600_000,
        "properties": {"organization_id": "org-1", "n": 1},
        "next_attempt_at": due,
        "created_at": NOW - dt.timedelta(minutes=5),
        "updated_at": NOW - dt.timedelta(minutes=5),
    }
    values.update(overrides)
    return values


def _add(engine: Engine, count: int = 1, **overrides: Any) -> list[int]:
    """Insert ``count`` rows and return their ids, oldest first."""
    insert_ids = []
    with store.transaction(engine) as conn:
        for _ in range(count):
            values = _values(**overrides)
            insert_ids.append(values["insert_id"])
            store.insert_event(conn, values=values)
        ids = conn.execute(
            sa.select(outbox.c.id).where(outbox.c.insert_id.in_(insert_ids)).order_by(outbox.c.id)
        ).scalars()
        return list(ids)


def _row(engine: Engine, row_id: int) -> sa.Row[Any]:
    with engine.connect() as conn:
        return conn.execute(sa.select(outbox).where(outbox.c.id == row_id)).one()


def _claim(engine: Engine, *, now: dt.datetime = NOW, limit: int = 100) -> store.Claim:
    with store.transaction(engine, write=True) as conn:
        return store.claim(conn, now=now, limit=limit, lease_seconds=LEASE_SECONDS)


@pytest.fixture(params=["postgresql", "mariadb"])
def locking_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An engine on each database with row locks (SKIP LOCKED), with empty relay tables."""
    engine = create_engine(request.getfixturevalue(f"{request.param}_url"))
    metadata.drop_all(engine)
    metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


# --- insert and notify ----------------------------------------------------------------------


def test_insert_event_stores_one_pending_row_with_zero_attempts(engine: Engine) -> None:
    """insert_event writes exactly the given values, with the table's defaults for the rest."""
    (row_id,) = _add(engine, properties={"organization_id": "org-9", "nested": {"a": [1, 2]}})
    row = _row(engine, row_id)
    assert row.state == OutboxState.PENDING
    assert row.attempts == 0
    assert row.lease_token is None
    assert row.properties == {"organization_id": "org-9", "nested": {"a": [1, 2]}}
    assert row.next_attempt_at == NOW


def test_insert_event_rolled_back_with_the_callers_transaction_leaves_no_row(
    engine: Engine,
) -> None:
    """The insert belongs to the caller's transaction: a rollback removes it."""
    with engine.connect() as conn:
        transaction = conn.begin()
        store.insert_event(conn, values=_values())
        transaction.rollback()
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one() == 0


def test_duplicate_insert_id_raises_store_error_with_the_driver_error_chained(
    engine: Engine,
) -> None:
    """A driver error leaves the store as StoreError, the original kept as __cause__."""
    values = _values()
    _add(engine, insert_id=values["insert_id"])
    with engine.connect() as conn, pytest.raises(StoreError) as caught:
        store.insert_event(conn, values=values)
    assert isinstance(caught.value.__cause__, sa.exc.IntegrityError)


def test_duplicate_insert_id_is_a_typed_error_with_the_sqlstate_where_the_driver_has_one(
    engine: Engine,
) -> None:
    """The store decides what a failure is, once: a unique-key violation is a
    DuplicateInsertIdError (a StoreError), carrying SQLSTATE 23xxx where the driver reports
    one (SQLite's driver reports none)."""
    values = _values()
    _add(engine, insert_id=values["insert_id"])
    with engine.connect() as conn, pytest.raises(DuplicateInsertIdError) as caught:
        store.insert_event(conn, values=values)
    assert isinstance(caught.value, StoreError)
    assert "already in the outbox" in str(caught.value)
    if engine.dialect.name == "postgresql":
        assert caught.value.sqlstate == "23505"
    elif engine.dialect.name == "sqlite":
        assert caught.value.sqlstate is None


def test_missing_outbox_tables_are_a_typed_error_naming_the_fix(engine: Engine) -> None:
    """A database that was never migrated: the insert fails as OutboxTablesMissingError on
    every dialect (PostgreSQL's 42P01, MariaDB's 1146, SQLite's "no such table"), and the
    message points at ``relay migrate``."""
    metadata.drop_all(engine)
    with engine.connect() as conn, pytest.raises(OutboxTablesMissingError, match="relay migrate"):
        store.insert_event(conn, values=_values())


def test_unreachable_database_raises_store_error(postgresql_url: str) -> None:
    """Failing to connect at all is a StoreError too, not a SQLAlchemy exception."""
    url = sa.make_url(postgresql_url).set(port=1, host="127.0.0.1")
    engine = create_engine(url.render_as_string(hide_password=False), pool_pre_ping=False)
    try:
        with pytest.raises(StoreError), store.transaction(engine) as conn:
            store.insert_event(conn, values=_values())
    finally:
        engine.dispose()


def test_newest_row_id_changes_when_an_insert_commits_not_before(engine: Engine) -> None:
    """The watcher's probe sees a new row once its transaction commits, and never before."""
    with engine.connect() as probe:
        assert store.newest_row_id(probe) is None
        probe.rollback()
        with engine.connect() as writer, writer.begin():
            store.insert_event(writer, values=_values())
            assert store.newest_row_id(probe) is None
            probe.rollback()
        first = store.newest_row_id(probe)
        probe.rollback()
        with engine.begin() as writer:
            store.insert_event(writer, values=_values())
        second = store.newest_row_id(probe)
    assert first is not None
    assert second is not None
    assert second > first


# --- claim ------------------------------------------------------------------------------------


def test_claim_returns_only_due_pending_rows(engine: Engine) -> None:
    """Rows not yet due, delivered and dead rows are never claimed."""
    due = _add(engine, 2, due=NOW - dt.timedelta(seconds=1))
    exactly_due = _add(engine, due=NOW)
    _add(engine, due=NOW + dt.timedelta(microseconds=1))
    _add(engine, state=OutboxState.DELIVERED.value, finished_at=NOW)
    _add(engine, state=OutboxState.DEAD.value, finished_at=NOW)
    claim = _claim(engine)
    assert [e.id for e in claim.events] == due + exactly_due


def test_claim_leases_rows_under_a_fresh_token_and_counts_the_attempt(engine: Engine) -> None:
    """The claim sets a new token and the lease's expiry and adds one attempt; it leaves
    next_attempt_at (an indexed column) alone."""
    (row_id,) = _add(engine, attempts=2)
    claim = _claim(engine)
    assert len(claim.token) == 32
    assert [e.attempts for e in claim.events] == [3]
    row = _row(engine, row_id)
    assert row.lease_token == claim.token
    assert row.attempts == 3
    assert row.lease_expires_at == NOW + dt.timedelta(seconds=LEASE_SECONDS)
    assert row.next_attempt_at == NOW
    assert row.updated_at == NOW
    assert row.state == OutboxState.PENDING
    assert _claim(engine).token != claim.token


def test_claim_updates_rows_in_place_without_new_index_entries_on_postgresql(
    pg_engine: Engine,
) -> None:
    """Every claimed row is a HOT update: the claim changes no indexed column, and the fill
    factor leaves room on each page for the new version of each of its rows (of the size of a
    catalog event, whose properties take some 400 bytes of JSON)."""
    _add(pg_engine, 200, properties={"organization_id": "org-1", "detail": "x" * 400})
    with store.transaction(pg_engine, write=True) as conn:
        claim = store.claim(conn, now=NOW, limit=200, lease_seconds=LEASE_SECONDS)
        hot = conn.execute(
            sa.text("SELECT pg_stat_get_xact_tuples_hot_updated('relay_outbox'::regclass)")
        ).scalar_one()
    assert len(claim.events) == 200
    assert hot == 200


def test_row_leased_before_the_lease_expiry_column_is_neither_claimed_nor_due(
    engine: Engine,
) -> None:
    """A lease written by a relay older than migration 0002 (expiry in next_attempt_at, no
    lease_expires_at) is honoured until it runs out, then the row is claimable."""
    (row_id,) = _add(engine, lease_token="o" * 32, due=NOW + dt.timedelta(seconds=30))
    assert _claim(engine).events == []
    with engine.connect() as conn:
        leased = conn.execute(
            sa.select(sa.func.count()).select_from(outbox).where(store.lease_is_live(NOW))
        ).scalar_one()
    assert leased == 1
    later = NOW + dt.timedelta(seconds=30)
    assert [e.id for e in _claim(engine, now=later).events] == [row_id]


def test_claim_carries_the_stored_fields_and_properties_as_json_text(engine: Engine) -> None:
    """Claimed events hold the stored columns; properties come back as the stored JSON text."""
    properties = {"organization_id": "org-1", "unicode": "Zürich ✓", "list": [1, 2.5, None]}
    (row_id,) = _add(
        engine, properties=properties, insert_id="ins-1", distinct_id="d-7", time_ms=123
    )
    (event,) = _claim(engine).events
    assert (event.id, event.insert_id, event.distinct_id, event.time_ms) == (
        row_id,
        "ins-1",
        "d-7",
        123,
    )
    assert event.event == "svc.test.thing_done"
    assert event.attempts == 1
    assert isinstance(event.properties_json, str)
    assert json.loads(event.properties_json) == properties


def test_a_claim_through_psycopg2_reads_the_same_events_and_acks_them(postgresql_url: str) -> None:
    """``postgresql+psycopg2://`` (a Django project's driver, which relay accepts): the claim's
    rows read from the driver's cursor and its ids bound as ``bigint[]`` text work there too."""
    from relay.testing.scratch import fresh_tables  # noqa: PLC0415

    url = sa.make_url(postgresql_url).set(drivername="postgresql+psycopg2")
    with fresh_tables(url.render_as_string(hide_password=False)) as engine:
        properties = {"organization_id": "org-1", "unicode": "Zürich ✓", "n": [1, 2.5, None]}
        ids = _add(engine, 3, properties=properties)
        claim = _claim(engine)
        assert [e.id for e in claim.events] == ids
        assert all(json.loads(e.properties_json) == properties for e in claim.events)
        assert {e.attempts for e in claim.events} == {1}
        with store.transaction(engine) as conn:
            store.mark_delivered(conn, token=claim.token, ids=ids[:2], now=NOW)
        assert [_row(engine, i).state for i in ids] == ["delivered", "delivered", "pending"]


def test_an_id_list_selects_exactly_its_rows_whatever_its_size_or_ids(engine: Engine) -> None:
    """``id_is_one_of`` and the cached statements' ``ids`` parameter (one ``bigint[]`` text on
    PostgreSQL) select exactly the listed rows: none for an empty list, ids past 2**31 and
    2**53 included, an id that names no row ignored."""
    small = _add(engine, 3)
    big = [2**31 + 7, 2**53 + 1]
    with store.transaction(engine) as conn:
        for row_id in big:
            values = _values()
            store.insert_event(conn, values=values)
            conn.execute(
                sa.update(outbox).where(outbox.c.insert_id == values["insert_id"]).values(id=row_id)
            )
    from relay._store._base import id_is_one_of, ids_bound  # noqa: PLC0415

    def chosen(ids: list[int]) -> list[int]:
        with engine.connect() as conn:
            direct = conn.execute(
                sa.select(outbox.c.id).where(id_is_one_of(conn, ids)).order_by(outbox.c.id)
            ).scalars()
            bound = conn.execute(
                sa.select(outbox.c.id).where(ids_bound(conn.dialect.name)).order_by(outbox.c.id),
                {"ids": ids},
            ).scalars()
            found, found_bound = list(direct), list(bound)
        assert found == found_bound
        return found

    assert chosen([]) == []
    assert chosen([small[1]]) == [small[1]]
    assert chosen([big[1], small[0], 10**15]) == [small[0], big[1]]
    assert chosen([*big, *small]) == [*small, *big]


def test_claim_takes_oldest_due_first_and_at_most_the_limit(engine: Engine) -> None:
    """Rows come in (next_attempt_at, id) order and no more than the limit are leased."""
    late = _add(engine, 2, due=NOW - dt.timedelta(seconds=1))
    early = _add(engine, 2, due=NOW - dt.timedelta(seconds=10))
    first = _claim(engine, limit=3)
    assert [e.id for e in first.events] == sorted([*early, late[0]])
    second = _claim(engine, limit=3)
    assert [e.id for e in second.events] == [late[1]]


def test_claim_from_due_from_skips_rows_due_before_it_and_reports_its_last_due(
    engine: Engine,
) -> None:
    """``due_from`` is where the claim starts reading; ``last_due`` is where the next may."""
    _add(engine, due=NOW - dt.timedelta(seconds=10))
    later = _add(engine, 2, due=NOW - dt.timedelta(seconds=5))
    last = _add(engine, due=NOW - dt.timedelta(seconds=1))
    with store.transaction(engine, write=True) as conn:
        claim = store.claim(
            conn,
            now=NOW,
            limit=100,
            lease_seconds=LEASE_SECONDS,
            due_from=NOW - dt.timedelta(seconds=5),
        )
    assert [e.id for e in claim.events] == [*later, *last]
    assert claim.last_due == NOW - dt.timedelta(seconds=1)
    assert _claim(engine, limit=100).last_due == NOW - dt.timedelta(seconds=10)
    assert _claim(engine).last_due is None


def test_claim_from_due_from_reads_past_the_dead_index_entries_of_finished_rows(
    pg_engine: Engine,
) -> None:
    """PostgreSQL keeps a finished row's entry in the partial index of pending rows until
    VACUUM: a claim from the oldest entry walks all of them, a claim from ``due_from`` does
    not. Counted in index pages fetched, not in time."""
    with pg_engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE relay_outbox SET (autovacuum_enabled = false)"))
        conn.execute(
            sa.insert(outbox).from_select(
                [
                    "insert_id",
                    "event",
                    "distinct_id",
                    "time_ms",
                    "properties",
                    "state",
                    "attempts",
                    "next_attempt_at",
                    "created_at",
                    "updated_at",
                ],
                sa.select(
                    sa.func.md5(sa.cast(sa.column("g"), sa.Text)),
                    sa.literal("svc.test.thing_done"),
                    sa.literal("user-1"),
                    sa.literal(1_767_225_600_000),
                    sa.cast(sa.literal('{"n": 1}'), postgresql.JSONB),
                    sa.literal("pending"),
                    sa.literal(0),
                    sa.literal(NOW) - sa.column("g") * sa.text("interval '1 millisecond'"),
                    sa.literal(NOW),
                    sa.literal(NOW),
                ).select_from(sa.func.generate_series(1, 20_000).alias("g")),
            )
        )
        conn.execute(sa.text("ANALYZE relay_outbox"))
    tail = _add(pg_engine, 3, due=NOW)
    with store.transaction(pg_engine, write=True) as conn:
        finished = conn.execute(
            sa.update(outbox).where(outbox.c.id.not_in(tail)).values(state="delivered")
        ).rowcount
    assert finished == 20_000

    def index_pages_fetched(due_from: dt.datetime | None) -> tuple[list[int], int]:
        fetched = sa.text(
            "SELECT pg_stat_get_xact_blocks_fetched('ix_relay_outbox_pending_due'::regclass)"
        )
        with store.transaction(pg_engine, write=True) as conn:
            conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
            before = conn.execute(fetched).scalar_one()
            claim = store.claim(
                conn, now=NOW, limit=10, lease_seconds=LEASE_SECONDS, due_from=due_from
            )
            after = conn.execute(fetched).scalar_one()
            conn.rollback()
        return [e.id for e in claim.events], after - before

    from_start, start_pages = index_pages_fetched(None)
    from_cursor, cursor_pages = index_pages_fetched(NOW)
    assert from_start == from_cursor == tail
    # A descent and a leaf or two: 5 pages before revision 0006 put ``destination`` in the
    # index (wider entries, one more page on the way down); from the start, over 400.
    assert cursor_pages <= 6, (start_pages, cursor_pages)
    assert start_pages >= 10 * cursor_pages


def test_claim_with_nothing_due_returns_no_events(engine: Engine) -> None:
    """An empty claim is a normal answer, not an error."""
    _add(engine, due=NOW + dt.timedelta(hours=1))
    assert _claim(engine).events == []


def test_leased_row_is_not_claimed_again_before_the_lease_expires(engine: Engine) -> None:
    """A live lease keeps the row away from other claims."""
    _add(engine)
    assert len(_claim(engine).events) == 1
    assert _claim(engine, now=NOW + dt.timedelta(seconds=LEASE_SECONDS - 1)).events == []


def test_expired_lease_is_claimed_again_with_a_new_token_and_another_attempt(
    engine: Engine,
) -> None:
    """After the lease runs out the row is due again: no rescuer needed, one more attempt."""
    (row_id,) = _add(engine)
    first = _claim(engine)
    later = NOW + dt.timedelta(seconds=LEASE_SECONDS)
    second = _claim(engine, now=later)
    assert [e.id for e in second.events] == [row_id]
    assert second.token != first.token
    assert second.events[0].attempts == 2
    assert _row(engine, row_id).lease_token == second.token


def test_claim_on_a_second_connection_skips_rows_locked_by_an_open_claim(
    locking_engine: Engine,
) -> None:
    """While one relay's claim transaction is open, another claims other rows without waiting."""
    ids = _add(locking_engine, 6)
    with locking_engine.connect() as first_conn, locking_engine.connect() as second_conn:
        first_tx = first_conn.begin()
        first = store.claim(first_conn, now=NOW, limit=3, lease_seconds=LEASE_SECONDS)
        # Fail fast instead of hanging if SKIP LOCKED did not skip.
        if locking_engine.dialect.name == "postgresql":
            second_conn.exec_driver_sql("SET lock_timeout = '2s'")
        else:
            second_conn.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 2")
        second_conn.commit()
        with second_conn.begin():
            second = store.claim(second_conn, now=NOW, limit=6, lease_seconds=LEASE_SECONDS)
        first_tx.commit()
    first_ids = {e.id for e in first.events}
    second_ids = {e.id for e in second.events}
    assert first_ids == set(ids[:3])
    assert second_ids == set(ids[3:])


def test_concurrent_claimers_never_receive_the_same_row(engine: Engine) -> None:
    """Eight threads claiming until the table is drained receive every row exactly once."""
    ids = _add(engine, 300)
    claimed: list[list[int]] = [[] for _ in range(8)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(claimed))

    def claimer(out: list[int]) -> None:
        try:
            start.wait()
            while True:
                events = _claim(engine, limit=7).events
                if not events:
                    return
                out.extend(e.id for e in events)
        except Exception as exc:  # noqa: BLE001 - handed to the main thread to fail the test
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(out,)) for out in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    everything = [row_id for out in claimed for row_id in out]
    assert sorted(everything) == ids


# --- claims bounded by bytes -----------------------------------------------------------------


def _stored_sizes(engine: Engine, ids: list[int]) -> list[int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.id, store.stored_size(conn)).where(outbox.c.id.in_(ids))
        ).all()
    by_id = {row_id: int(size) for row_id, size in rows}
    return [by_id[row_id] for row_id in ids]


def _budget_claim(
    engine: Engine, *, max_bytes: int | None = None, row_max_bytes: int | None = None
) -> store.Claim:
    with store.transaction(engine, write=True) as conn:
        return store.claim(
            conn,
            now=NOW,
            limit=100,
            lease_seconds=LEASE_SECONDS,
            max_bytes=max_bytes,
            row_max_bytes=row_max_bytes,
        )


def test_claim_takes_rows_in_due_order_up_to_its_byte_budget(engine: Engine) -> None:
    """A claim stops before the row that would take it past max_bytes, and says it is full."""
    ids = _add(engine, 5, properties={"blob": "x" * 1000})
    size = _stored_sizes(engine, ids)[0]
    first = _budget_claim(engine, max_bytes=3 * size + size // 2)
    second = _budget_claim(engine, max_bytes=3 * size + size // 2)
    assert [e.id for e in first.events] == ids[:3]
    assert first.full
    assert [e.id for e in second.events] == ids[3:]
    assert not second.full


def test_claim_takes_its_first_row_even_when_it_alone_is_over_the_budget(engine: Engine) -> None:
    """A row larger than the budget but within a request is claimed alone, never stuck."""
    ids = _add(engine, 2, properties={"blob": "x" * 5000})
    claim = _budget_claim(engine, max_bytes=1000)
    assert [e.id for e in claim.events] == ids[:1]
    assert claim.full


def test_claim_dead_letters_a_row_no_request_can_carry_and_leases_the_rest(
    engine: Engine,
) -> None:
    """A row over row_max_bytes is dead with its size and the limit, never leased or claimed."""
    (before,) = _add(engine, properties={"n": 1})
    (huge,) = _add(engine, properties={"blob": "x" * 20_000})
    (after,) = _add(engine, properties={"n": 2})
    (size,) = _stored_sizes(engine, [huge])
    claim = _budget_claim(engine, max_bytes=50_000, row_max_bytes=10_000)
    assert [e.id for e in claim.events] == [before, after]
    assert claim.too_large == 1
    row = _row(engine, huge)
    assert row.state == OutboxState.DEAD
    assert row.last_error == (
        f"stored properties render to {size} bytes, over the request limit of 10000 bytes"
    )
    assert row.lease_token is None
    assert row.attempts == 0
    assert row.finished_at == NOW
    assert _budget_claim(engine, max_bytes=50_000, row_max_bytes=10_000).events == []


def test_claim_measures_postgresql_rows_at_the_size_jsonb_renders_them(pg_engine: Engine) -> None:
    """A row of 1e308 floats, 1.4 KB as JSON but 62 KB as PostgreSQL renders it, is too large."""
    (normal,) = _add(pg_engine, properties={"n": 1})
    (grown,) = _add(pg_engine, properties={"f": [1e308] * 200})
    assert len(json.dumps({"f": [1e308] * 200})) < 2_000
    (size,) = _stored_sizes(pg_engine, [grown])
    assert size > 60_000
    claim = _budget_claim(pg_engine, max_bytes=40_000, row_max_bytes=10_000)
    assert [e.id for e in claim.events] == [normal]
    assert _row(pg_engine, grown).state == OutboxState.DEAD


def test_claim_within_a_budget_skips_rows_locked_by_an_open_claim_and_frees_the_unpicked(
    locking_engine: Engine,
) -> None:
    """Rows an open claim locked but left out of its budget are skipped, then free at commit."""
    ids = _add(locking_engine, 6, properties={"blob": "x" * 1000})
    size = _stored_sizes(locking_engine, ids)[0]
    with locking_engine.connect() as first_conn, locking_engine.connect() as second_conn:
        first_tx = first_conn.begin()
        first = store.claim(
            first_conn, now=NOW, limit=3, lease_seconds=LEASE_SECONDS, max_bytes=2 * size
        )
        if locking_engine.dialect.name == "postgresql":
            second_conn.exec_driver_sql("SET lock_timeout = '2s'")
        else:
            second_conn.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 2")
        second_conn.commit()
        with second_conn.begin():
            second = store.claim(second_conn, now=NOW, limit=6, lease_seconds=LEASE_SECONDS)
        first_tx.commit()
    third = _budget_claim(locking_engine, max_bytes=10 * size)
    assert [e.id for e in first.events] == ids[:2]
    assert [e.id for e in second.events] == ids[3:]
    assert [e.id for e in third.events] == [ids[2]]


# --- fenced acks ------------------------------------------------------------------------------


def test_mark_delivered_finishes_the_row_and_clears_the_lease(engine: Engine) -> None:
    """Delivered rows get state delivered, finished_at, and no token or error."""
    (row_id,) = _add(engine, last_error="HTTP 503")
    claim = _claim(engine)
    acked_at = NOW + dt.timedelta(seconds=2)
    with store.transaction(engine, write=True) as conn:
        changed = store.mark_delivered(conn, token=claim.token, ids=[row_id], now=acked_at)
    assert changed == 1
    row = _row(engine, row_id)
    assert (row.state, row.finished_at, row.lease_token, row.last_error) == (
        OutboxState.DELIVERED,
        acked_at,
        None,
        None,
    )
    assert row.attempts == 1


def test_mark_claim_delivered_finishes_only_the_claims_own_rows_in_its_id_range(
    engine: Engine,
) -> None:
    """Acking a whole claim by its id range leaves another claim's rows in that range alone."""
    early = NOW - dt.timedelta(seconds=10)
    ids = [_add(engine, due=early if n % 2 == 0 else NOW)[0] for n in range(4)]
    first = _claim(engine, limit=2)
    second = _claim(engine, limit=2)
    assert [e.id for e in first.events] == [ids[0], ids[2]]
    assert [e.id for e in second.events] == [ids[1], ids[3]]
    with store.transaction(engine, write=True) as conn:
        changed = store.mark_claim_delivered(conn, claim=first, now=NOW)
    assert changed == 2
    states = [_row(engine, row_id).state for row_id in ids]
    assert states == [OutboxState.DELIVERED, OutboxState.PENDING] * 2
    row = _row(engine, ids[0])
    assert (row.finished_at, row.lease_token, row.lease_expires_at) == (NOW, None, None)


def test_claim_spread_over_the_table_is_acked_by_its_ids_not_by_walking_its_id_range(
    engine: Engine,
) -> None:
    """A claim that takes an old row (a retry, due now) with new ones spans most of the table
    by id: its ack touches exactly its rows, and on PostgreSQL reads only those rows, not
    every row between its lowest and highest id."""
    (old,) = _add(engine, due=NOW - dt.timedelta(seconds=30))
    _add(engine, 1000, due=NOW + dt.timedelta(hours=1))  # in between, not due
    new = _add(engine, 2, due=NOW - dt.timedelta(seconds=1))
    claim = _claim(engine)
    assert [e.id for e in claim.events] == [old, *new]
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE relay_outbox"))
    with store.transaction(engine, write=True) as conn:
        before = _rows_read(conn)
        changed = store.mark_claim_delivered(conn, claim=claim, now=NOW)
        read = _rows_read(conn) - before
    assert changed == 3
    assert [_row(engine, i).state for i in [old, *new]] == [OutboxState.DELIVERED] * 3
    with engine.connect() as conn:
        pending = conn.execute(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.state == "pending")
        ).scalar_one()
    assert pending == 1000
    if engine.dialect.name == "postgresql":
        assert read <= 10


def _rows_read(conn: sa.Connection) -> int:
    """Rows of relay_outbox this transaction has read so far, by any scan (PostgreSQL)."""
    if conn.dialect.name != "postgresql":
        return 0
    return int(
        conn.execute(
            sa.text(
                "SELECT pg_stat_get_xact_tuples_returned('relay_outbox'::regclass)"
                " + pg_stat_get_xact_tuples_fetched('relay_outbox'::regclass)"
            )
        ).scalar_one()
    )


def test_mark_claim_delivered_with_a_stale_token_changes_nothing(engine: Engine) -> None:
    """A claim acked after its rows were re-claimed by another relay changes no row."""
    (row_id,) = _add(engine)
    stale = _claim(engine)
    _claim(engine, now=NOW + dt.timedelta(seconds=LEASE_SECONDS))
    with store.transaction(engine, write=True) as conn:
        changed = store.mark_claim_delivered(conn, claim=stale, now=NOW)
    assert changed == 0
    assert _row(engine, row_id).state == OutboxState.PENDING


def _states(engine: Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return {row.id: row.state for row in conn.execute(sa.select(outbox.c.id, outbox.c.state))}


def test_an_ack_that_keeps_no_delivered_row_deletes_exactly_the_claims_own_rows(
    engine: Engine,
) -> None:
    """``keep=False`` (``RELAY_DELIVERED_RETENTION_HOURS=0``) deletes what ``keep=True``
    would mark delivered, under the same fence: by the claim's id range (another claim's rows
    in that range stay), by its ids (a claim spread over the table), never with a stale
    token, and never a row that is no longer pending."""
    early = NOW - dt.timedelta(seconds=10)
    interleaved = [_add(engine, due=early if n % 2 == 0 else NOW)[0] for n in range(4)]
    first = _claim(engine, limit=2)
    second = _claim(engine, limit=2)
    with store.transaction(engine, write=True) as conn:
        assert store.mark_claim_delivered(conn, claim=first, now=NOW, keep=False) == 2
    left = _states(engine)
    assert sorted(left) == [interleaved[1], interleaved[3]]
    assert set(left.values()) == {OutboxState.PENDING}

    # The second claim's rows, one of them dead meanwhile (an operator, a max-attempts ack):
    # the spread-out path by ids, which must neither delete the dead row nor count it.
    (old,) = _add(engine, due=NOW - dt.timedelta(seconds=30))
    _add(engine, 50, due=NOW + dt.timedelta(hours=1))
    (new,) = _add(engine, due=NOW - dt.timedelta(seconds=1))
    spread = _claim(engine)
    assert [e.id for e in spread.events] == [old, new]
    with store.transaction(engine, write=True) as conn:
        store.mark_dead(conn, token=spread.token, errors={new: "refused"}, now=NOW)
        assert store.mark_claim_delivered(conn, claim=spread, now=NOW, keep=False) == 1
        assert store.mark_delivered(conn, token=second.token, ids=[], now=NOW, keep=False) == 0
    left = _states(engine)
    assert old not in left
    assert left[new] == OutboxState.DEAD
    assert len(left) == 2 + 50 + 1

    # A stale token: the rows were claimed again after its lease ran out.
    stale = second
    _claim(engine, now=NOW + dt.timedelta(seconds=LEASE_SECONDS), limit=2)
    with store.transaction(engine, write=True) as conn:
        assert store.mark_claim_delivered(conn, claim=stale, now=NOW, keep=False) == 0
        assert (
            store.mark_delivered(
                conn, token=stale.token, ids=[e.id for e in stale.events], now=NOW, keep=False
            )
            == 0
        )
    assert len(_states(engine)) == 2 + 50 + 1


def test_mark_dead_keeps_each_rows_own_reason(engine: Engine) -> None:
    """Rows killed together keep their individual reasons, in one statement."""
    ids = _add(engine, 3)
    claim = _claim(engine)
    reasons = {ids[0]: "properties.time: too old", ids[1]: "event: too large"}
    with store.transaction(engine, write=True) as conn:
        assert store.mark_dead(conn, token=claim.token, errors=reasons, now=NOW) == 2
    for row_id, reason in reasons.items():
        row = _row(engine, row_id)
        assert (row.state, row.last_error, row.finished_at) == (OutboxState.DEAD, reason, NOW)
        assert row.lease_token is None
    assert _row(engine, ids[2]).state == OutboxState.PENDING


def test_schedule_retry_sets_each_rows_time_and_error_and_keeps_the_attempt(
    engine: Engine,
) -> None:
    """Retried rows stay pending with their own next_attempt_at and error; attempts stay."""
    ids = _add(engine, 2)
    claim = _claim(engine)
    retries = {
        ids[0]: store.Retry(at=NOW + dt.timedelta(seconds=3), error="HTTP 429"),
        ids[1]: store.Retry(at=NOW + dt.timedelta(seconds=9), error="timeout"),
    }
    with store.transaction(engine, write=True) as conn:
        assert store.schedule_retry(conn, token=claim.token, retries=retries, now=NOW) == 2
    for row_id, retry in retries.items():
        row = _row(engine, row_id)
        assert (row.state, row.next_attempt_at, row.last_error) == (
            OutboxState.PENDING,
            retry.at,
            retry.error,
        )
        assert (row.lease_token, row.attempts) == (None, 1)


def test_release_gives_the_attempt_back_and_makes_the_row_due(engine: Engine) -> None:
    """A released row is pending, unleased, due at the given time, with its attempt returned."""
    (row_id,) = _add(engine, attempts=4)
    claim = _claim(engine)
    with store.transaction(engine, write=True) as conn:
        changed = store.release(conn, token=claim.token, ids=[row_id], next_attempt_at=NOW, now=NOW)
    assert changed == 1
    row = _row(engine, row_id)
    assert (row.attempts, row.lease_token, row.next_attempt_at) == (4, None, NOW)
    assert [e.id for e in _claim(engine).events] == [row_id]


def test_acks_with_a_stale_token_change_nothing_after_another_relay_reclaimed(
    engine: Engine,
) -> None:
    """A late worker's acks are fenced out once its lease was re-claimed: rowcount 0 each."""
    (row_id,) = _add(engine)
    stale = _claim(engine)
    fresh = _claim(engine, now=NOW + dt.timedelta(seconds=LEASE_SECONDS + 1))
    before = _row(engine, row_id)
    later = NOW + dt.timedelta(seconds=LEASE_SECONDS + 2)
    with store.transaction(engine, write=True) as conn:
        results = [
            store.mark_delivered(conn, token=stale.token, ids=[row_id], now=later),
            store.mark_dead(conn, token=stale.token, errors={row_id: "x"}, now=later),
            store.schedule_retry(
                conn, token=stale.token, retries={row_id: store.Retry(later, "y")}, now=later
            ),
            store.release(conn, token=stale.token, ids=[row_id], next_attempt_at=later, now=later),
        ]
    assert results == [0, 0, 0, 0]
    assert _row(engine, row_id) == before
    with store.transaction(engine, write=True) as conn:
        assert store.mark_delivered(conn, token=fresh.token, ids=[row_id], now=later) == 1


def test_second_ack_of_a_finished_row_changes_nothing(engine: Engine) -> None:
    """The state guard makes a duplicate ack a no-op, even with the right token."""
    (row_id,) = _add(engine)
    claim = _claim(engine)
    with store.transaction(engine, write=True) as conn:
        assert store.mark_delivered(conn, token=claim.token, ids=[row_id], now=NOW) == 1
    with store.transaction(engine, write=True) as conn:
        assert store.mark_dead(conn, token=claim.token, errors={row_id: "late"}, now=NOW) == 0
    assert _row(engine, row_id).state == OutboxState.DELIVERED


def test_acks_with_nothing_to_do_run_no_statement(engine: Engine) -> None:
    """Empty id lists return 0 without touching the database."""
    with store.transaction(engine, write=True) as conn:
        assert store.mark_delivered(conn, token="t", ids=[], now=NOW) == 0
        assert store.mark_dead(conn, token="t", errors={}, now=NOW) == 0
        assert store.schedule_retry(conn, token="t", retries={}, now=NOW) == 0
        assert store.release(conn, token="t", ids=[], next_attempt_at=NOW, now=NOW) == 0


def test_long_errors_are_clipped_to_the_column(engine: Engine) -> None:
    """An error longer than last_error holds is cut, not refused by the database."""
    (row_id,) = _add(engine)
    claim = _claim(engine)
    with store.transaction(engine, write=True) as conn:
        store.mark_dead(conn, token=claim.token, errors={row_id: "e" * 5000}, now=NOW)
    last_error = _row(engine, row_id).last_error
    assert len(last_error) == LAST_ERROR_MAX_LENGTH
    assert last_error.endswith("…")


def test_ack_of_two_thousand_rows_is_one_statement_that_fits_every_dialect(
    engine: Engine,
) -> None:
    """A full batch (2000 ids, 2000 distinct reasons) is acked without hitting bind limits."""
    with store.transaction(engine) as conn:
        conn.execute(sa.insert(outbox), [_values() for _ in range(2000)])
    claim = _claim(engine, limit=2000)
    assert len(claim.events) == 2000
    half = [e.id for e in claim.events[:1000]]
    reasons = {e.id: f"reason {e.id}" for e in claim.events[1000:]}
    with store.transaction(engine, write=True) as conn:
        assert store.mark_delivered(conn, token=claim.token, ids=half, now=NOW) == 1000
        assert store.mark_dead(conn, token=claim.token, errors=reasons, now=NOW) == 1000
