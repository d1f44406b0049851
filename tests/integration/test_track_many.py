"""track_many() and the XID cost of tracking, on every supported database."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from relay import (
    DuplicateInsertIdError,
    EventValidationError,
    MixpanelSuperEventPropertiesSchema,
    SystemRole,
    TrackItem,
    cron_run,
    register_event,
    track,
    track_many,
)
from relay._tables import outbox

EVENT = "svc.tests.widget_counted"


class WidgetCountedSchema(MixpanelSuperEventPropertiesSchema):
    """Test event: a widget was counted."""

    widget_id: str
    n: int = 0


register_event(EVENT, WidgetCountedSchema)

business = sa.MetaData()
orders = sa.Table("test_many_orders", business, sa.Column("id", sa.Integer, primary_key=True))
USER = "6f1c7a0e-1b2c-4d5e-8f90-123456789abc"
OCCURRED = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)


def props(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "employee_id": USER,
        "organization_id": "0b6a8a4e-8f55-4f8e-9a53-3f1f4f1c2d10",
        "organization_name": "Acme",
        "role": SystemRole.MANAGER,
        "impersonation": False,
        "widget_id": "w-1",
    }
    base.update(overrides)
    return base


def item(n: int = 0, **overrides: Any) -> dict[str, Any]:
    return {"event": EVENT, "distinct_id": USER, "properties": props(n=n), **overrides}


@pytest.fixture
def db(engine: Engine) -> Iterator[Engine]:
    business.drop_all(engine)
    business.create_all(engine)
    yield engine
    business.drop_all(engine)


def stored(engine: Engine) -> list[sa.Row[Any]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(outbox).order_by(outbox.c.id)).all())


def order_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar_one()


def test_every_valid_item_is_written_in_order_with_its_insert_id(db: Engine) -> None:
    """Mappings and TrackItems mix; results line up with the items; rows hold their data."""
    items: list[Any] = [item(i) for i in range(5)]
    items.append(TrackItem(EVENT, USER, props(n=5), occurred_at=OCCURRED, insert_id="typed-5"))
    with Session(db) as session, session.begin():
        ids = track_many(session, items)
    assert len(ids) == 6
    assert all(ids)
    assert ids[5] == "typed-5"
    rows = stored(db)
    assert [r.insert_id for r in rows] == ids
    assert [r.properties["n"] for r in rows] == [0, 1, 2, 3, 4, 5]
    assert rows[5].time_ms == int(OCCURRED.timestamp() * 1000)


def test_row_times_are_stored_exactly_and_a_time_ahead_waits(db: Engine) -> None:
    """created_at is the call's clock (to the microsecond on every database), and an event
    whose time is ahead of the clock (within the skew) is stored due at that time."""
    ahead = dt.datetime.now(dt.UTC).replace(microsecond=123456) + dt.timedelta(seconds=30)
    before = dt.datetime.now(dt.UTC)
    with db.begin() as conn:
        track_many(conn, [item(1), item(2, occurred_at=ahead)], strict=True)
    after = dt.datetime.now(dt.UTC)
    now_row, ahead_row = stored(db)
    assert before <= now_row.created_at == now_row.updated_at <= after
    assert now_row.next_attempt_at == now_row.created_at
    assert ahead_row.next_attempt_at == ahead.replace(microsecond=123000)  # time is in ms
    assert ahead_row.state == "pending"
    assert ahead_row.attempts == 0


def test_rollback_leaves_nothing(db: Engine) -> None:
    """The caller's rollback takes every row of the call with it."""
    with db.connect() as conn:
        tx = conn.begin()
        assert all(track_many(conn, [item(i) for i in range(10)]))
        tx.rollback()
    assert stored(db) == []


def test_default_mode_skips_and_logs_bad_items_and_the_caller_goes_on(
    db: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """Invalid items (bad property, unknown key, not a mapping, duplicate id in the batch or
    already stored) come back None and are logged without values; valid ones are written and
    the caller's own rows commit."""
    with Session(db) as session, session.begin():
        session.execute(sa.insert(orders).values(id=1))
        track(session, event=EVENT, distinct_id=USER, properties=props(), insert_id="old-1")
        batch: list[Any] = [
            item(1),
            item(2, properties=props(n="many-secret")),
            {"event": EVENT, "distinct_id": USER, "properties": props(), "colour": "red"},
            "not an item",
            item(5, insert_id="old-1"),
            item(6, insert_id="twice"),
            item(7, insert_id="twice"),
            item(8),
        ]
        ids = track_many(session, batch, strict=False)
        session.execute(sa.insert(orders).values(id=2))
    assert [i is not None for i in ids] == [True, False, False, False, False, True, False, True]
    assert order_count(db) == 2
    assert sorted(r.insert_id for r in stored(db)) == sorted(["old-1", ids[0], "twice", ids[7]])
    assert [r.properties["n"] for r in stored(db) if r.insert_id == "twice"] == [6]
    logged = capsys.readouterr().out + capsys.readouterr().err
    assert "many-secret" not in logged


def test_strict_mode_raises_on_a_bad_item_before_writing_anything(db: Engine) -> None:
    """The first invalid item raises its own error, naming the field; nothing is stored."""
    with db.begin() as conn:
        with pytest.raises(EventValidationError) as info:
            track_many(conn, [item(1), item(2, properties=props(n="x")), item(3)], strict=True)
        assert info.value.field == "n"
        conn.execute(sa.insert(orders).values(id=1))
    assert stored(db) == []
    assert order_count(db) == 1


def test_strict_mode_writes_nothing_when_an_id_is_already_stored(db: Engine) -> None:
    """A duplicate found by the INSERT itself: the call's one savepoint is rolled back, so the
    batch's other rows are gone too, and the caller's transaction goes on."""
    with db.begin() as conn:
        track(conn, event=EVENT, distinct_id=USER, properties=props(), insert_id="there")
        with pytest.raises(DuplicateInsertIdError, match="nothing was written"):
            track_many(conn, [item(1), item(2, insert_id="there"), item(3)], strict=True)
        conn.execute(sa.insert(orders).values(id=1))
    assert [r.insert_id for r in stored(db)] == ["there"]
    assert order_count(db) == 1


def test_a_database_failure_never_aborts_the_callers_transaction(db: Engine) -> None:
    """A failure only the database sees (here: the outbox's table replaced by one the rows
    do not fit) is rolled back to the call's savepoint; default mode returns Nones and the
    caller's transaction commits its own rows."""
    with db.begin() as conn:
        conn.execute(sa.insert(orders).values(id=1))
        conn.execute(sa.text("DROP TABLE relay_outbox"))
        conn.execute(sa.text("CREATE TABLE relay_outbox (id INTEGER PRIMARY KEY)"))
        if db.dialect.name == "postgresql":  # let the cached table check pass
            conn.execute(sa.text("SELECT 1"))
        assert track_many(conn, [item(1), item(2)], strict=False) == [None, None]
        conn.execute(sa.insert(orders).values(id=2))
        conn.execute(sa.text("DROP TABLE relay_outbox"))
    assert order_count(db) == 2


def test_cron_run_applies_to_every_item(db: Engine) -> None:
    """Inside cron_run(), every item is marked with the run's timestamp."""
    with db.begin() as conn, cron_run(OCCURRED) as run_ms:
        track_many(conn, [item(i, occurred_at=OCCURRED) for i in range(3)], strict=True)
    assert {r.properties["cron_execution_timestamp"] for r in stored(db)} == {run_ms}
    assert all(r.properties["is_cron_job"] is True for r in stored(db))


def test_more_rows_than_one_chunk_are_all_written(db: Engine) -> None:
    """2,500 items cross two chunk boundaries; every one is stored once."""
    with db.begin() as conn:
        ids = track_many(conn, [item(i) for i in range(2500)], strict=True)
    assert len(set(ids)) == 2500
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one() == 2500


def test_what_is_stored_is_the_checked_json_on_a_host_engine_with_json_dumps(
    db_url: str, db: Engine
) -> None:
    """A host's own engine (sa.create_engine, json.dumps serializer) stores the bytes track()
    checked: the stored text is orjson's compact rendering, not json.dumps' spaced one."""
    host = sa.create_engine(db_url)
    try:
        with host.begin() as conn:
            track(conn, event=EVENT, distinct_id=USER, properties=props(), insert_id="h-1")
            track_many(conn, [item(1, insert_id="h-2")], strict=True)
        with host.connect() as conn:
            text = sa.cast(outbox.c.properties, sa.Text)
            if db.dialect.name != "postgresql":
                text = sa.type_coerce(outbox.c.properties, sa.Text)
            stored_text = conn.execute(sa.select(text).order_by(outbox.c.id)).scalars().all()
    finally:
        host.dispose()
    if db.dialect.name != "postgresql":  # jsonb renders its own spacing
        assert all(": " not in t and ", " not in t for t in stored_text)
    assert len(stored_text) == 2


# --- transaction ids on PostgreSQL ------------------------------------------------------------

XMINS = sa.text("SELECT count(DISTINCT xmin::text), min(xmin::text)::bigint FROM relay_outbox")


def test_a_thousand_track_calls_in_one_transaction_use_one_transaction_id(
    pg_engine: Engine,
) -> None:
    """Every row written by 1,000 track() calls carries the transaction's own id as xmin:
    no call took a subtransaction (a SAVEPOINT that writes would stamp its rows with an id
    of their own: 1,000 ids, and a suboverflowed snapshot for every other session)."""
    with pg_engine.begin() as conn:
        for n in range(1000):
            track(conn, event=EVENT, distinct_id=USER, properties=props(n=n), strict=True)
        top = conn.execute(sa.text("SELECT txid_current() % 4294967296")).scalar_one()
        distinct, xmin = conn.execute(XMINS).one()
    assert (distinct, xmin) == (1, top)


def test_track_many_uses_at_most_two_transaction_ids(pg_engine: Engine) -> None:
    """1,000 items in one call: the caller's transaction id plus the call's one savepoint."""
    with pg_engine.begin() as conn:
        conn.execute(sa.text("SELECT txid_current()"))  # the caller's id, taken first
        ids = track_many(conn, [item(n) for n in range(1000)], strict=True)
        top = conn.execute(sa.text("SELECT txid_current() % 4294967296")).scalar_one()
        distinct, xmin = conn.execute(XMINS).one()
    assert all(ids)
    assert distinct == 1  # one id stamped all 1,000 rows: the call's savepoint
    assert xmin > top  # (later than the caller's; other sessions may take ids in between)


def test_unique_ids_per_call_never_collide_across_calls(db: Engine) -> None:
    """Generated ids are fresh per item, call after call."""
    with db.begin() as conn:
        a = track_many(conn, [item(1), item(2)])
        b = track_many(conn, [item(1), item(2)])
    assert len({*a, *b}) == 4
    assert all(uuid.UUID(str(i)) for i in a + b)
