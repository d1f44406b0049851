"""track() writes events into the caller's own transaction, on every supported database."""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
import structlog
from helpers.logs import logging_restored
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import Field
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from relay import Location
from relay import _store as store
from relay._errors import EventValidationError, OutboxTablesMissingError, StoreError
from relay._event.limits import check_distinct_id, check_insert_id, check_properties
from relay._event.properties import (
    MixpanelSuperEventPropertiesSchema,
    SystemRole,
    datetime_to_timestamp_ms,
    timestamp_ms_to_datetime,
)
from relay._event.registry import register_event
from relay._tables import metadata, outbox
from relay._tracking import cron_run, strict_tracking, track, track_many
from relay._tracking.profiles import update_profile

EVENT = "svc.tests.widget_shipped"


class WidgetShippedSchema(MixpanelSuperEventPropertiesSchema):
    """Test event: a widget left the warehouse."""

    widget_id: str
    quantity: int = 1
    tags: list[str] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)


register_event(EVENT, WidgetShippedSchema)

business = sa.MetaData()
orders = sa.Table("test_orders", business, sa.Column("id", sa.Integer, primary_key=True))

USER = "6f1c7a0e-1b2c-4d5e-8f90-123456789abc"
OCCURRED = dt.datetime(2026, 11, 20, 9, 30, 15, 250000, tzinfo=dt.UTC)


def props(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "employee_id": USER,
        "organization_id": "0b6a8a4e-8f55-4f8e-9a53-3f1f4f1c2d10",
        "organization_name": "Acme",
        "role": SystemRole.MANAGER,
        "impersonation": False,
        "widget_id": "w-1",
    }
    return base | overrides


@pytest.fixture
def db(engine: Engine) -> Engine:
    """The relay tables plus a business table, empty."""
    business.drop_all(engine)
    business.create_all(engine)
    yield engine  # type: ignore[misc]
    business.drop_all(engine)


def outbox_rows(engine: Engine) -> list[sa.Row[Any]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(outbox).order_by(outbox.c.id)))


def order_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar_one()


def test_commit_stores_exactly_one_row_with_time_insert_id_and_properties(db: Engine) -> None:
    """A committed transaction leaves one pending row carrying the event's stored dedup key."""
    with Session(db) as session, session.begin():
        session.execute(sa.insert(orders).values(id=1))
        insert_id = track(
            session,
            event=EVENT,
            distinct_id=USER,
            properties=WidgetShippedSchema(**props(quantity=3)),
            occurred_at=OCCURRED,
            insert_id="order-1-shipped",
            strict=True,
        )
    assert insert_id == "order-1-shipped"
    (row,) = outbox_rows(db)
    assert row.event == EVENT
    assert row.insert_id == "order-1-shipped"
    assert row.distinct_id == USER
    assert row.time_ms == datetime_to_timestamp_ms(OCCURRED) == 1_795_167_015_250
    assert row.state == "pending"
    assert row.attempts == 0
    assert row.properties == {
        **props(quantity=3, role="manager"),
        "tags": [],
        "extra": {},
        "is_cron_job": False,
        "cron_execution_timestamp": None,
    }


def test_rollback_leaves_no_event(db: Engine) -> None:
    """Rolling back the business transaction rolls back the event with it."""
    with Session(db) as session:
        session.begin()
        session.execute(sa.insert(orders).values(id=1))
        assert track(session, event=EVENT, distinct_id=USER, properties=props(), strict=True)
        session.rollback()
    assert outbox_rows(db) == []
    assert order_count(db) == 0


def test_a_connection_works_like_a_session(db: Engine) -> None:
    """A Core Connection in a transaction is accepted and committed by its owner."""
    with db.begin() as conn:
        track(conn, event=EVENT, distinct_id=USER, properties=props(), strict=True)
    assert len(outbox_rows(db)) == 1


def test_generated_insert_ids_are_unique_and_valid(db: Engine) -> None:
    """Without an insert_id each event gets a fresh, Mixpanel-valid one."""
    with db.begin() as conn:
        ids = {track(conn, event=EVENT, distinct_id=USER, properties=props()) for _ in range(5)}
    assert len(ids) == 5
    for insert_id in ids:
        assert insert_id is not None
        check_insert_id(EVENT, insert_id)


def test_generated_insert_ids_are_time_ordered_uuid7s(db: Engine) -> None:
    """Generated ids are version-7 UUIDs carrying the creation time, ascending in creation
    order, so the outbox's unique insert_id index grows at its right edge."""
    before_ms = int(time.time() * 1000)
    with db.begin() as conn:
        ids = [
            str(track(conn, event=EVENT, distinct_id=USER, properties=props(), strict=True))
            for _ in range(50)
        ]
    after_ms = int(time.time() * 1000)
    parsed = [uuid.UUID(insert_id) for insert_id in ids]
    assert {u.version for u in parsed} == {7}
    assert ids == sorted(ids)
    assert all(before_ms <= u.int >> 80 <= after_ms for u in parsed)


def test_values_that_look_like_sql_or_placeholders_are_stored_verbatim(db: Engine) -> None:
    """Quotes, backslashes, semicolons and placeholders reach the row as they were given."""
    nasty = "o'brien\\'); DROP TABLE test_orders; -- %s %(x)s $1 \u00e9 \\x00 ''"
    with db.begin() as conn:
        conn.execute(sa.insert(orders).values(id=1))
        track(
            conn,
            event=EVENT,
            distinct_id=USER,
            properties=props(widget_id=nasty, tags=[nasty], extra={nasty: nasty}),
            insert_id="quote-1",
            strict=True,
        )
    (row,) = outbox_rows(db)
    assert row.properties["widget_id"] == nasty
    assert row.properties["tags"] == [nasty]
    assert row.properties["extra"] == {nasty: nasty}
    assert order_count(db) == 1


def row_values(insert_id: str) -> dict[str, Any]:
    """An outbox row's column values, as the store's pending_row() makes them."""
    return {
        "insert_id": insert_id,
        "properties": '{"a": 1}',
        "event": EVENT,
        "distinct_id": USER,
        "time_ms": 1_795_167_015_250,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": OCCURRED,
        "created_at": OCCURRED,
        "updated_at": OCCURRED,
    }


def test_postgresql_writes_the_event_in_one_round_trip_and_other_databases_do_not(
    engine: Engine,
) -> None:
    """The one-round-trip write applies to PostgreSQL through psycopg only, and never to a
    connection in autocommit mode; a second write of the same $insert_id reports False."""
    values = row_values("one-trip-1")
    with engine.begin() as conn:
        written = store.insert_in_one_round_trip(conn, values=values)
        again = store.insert_in_one_round_trip(conn, values=values)
    assert written is (True if engine.dialect.name == "postgresql" else None)
    assert again is (False if engine.dialect.name == "postgresql" else None)
    rows = outbox_rows(engine)
    assert [(r.insert_id, r.properties, r.next_attempt_at) for r in rows] == (
        [("one-trip-1", {"a": 1}, OCCURRED)] if written else []
    )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        assert store.insert_in_one_round_trip(conn, values=values) is None


def test_a_nul_that_postgresql_would_refuse_is_refused_before_any_sql(db: Engine) -> None:
    """A NUL character (stored as the JSON escape, which jsonb refuses, or sent raw, which
    psycopg refuses): track() refuses it in validation, before any SQL, so the business
    transaction carries on and commits its own rows (no savepoint is there to repair an
    aborted transaction)."""
    with db.begin() as conn:
        conn.execute(sa.insert(orders).values(id=1))
        assert (
            track(conn, event=EVENT, distinct_id=USER, properties=props(widget_id="a\x00b")) is None
        )
        conn.execute(sa.insert(orders).values(id=2))
    assert order_count(db) == 2
    assert outbox_rows(db) == []


def test_a_failure_only_the_database_sees_aborts_the_transaction_and_commits_nothing(
    pg_engine: Engine,
) -> None:
    """The documented residue: a failure the server reports during the write (here the
    caller's own statement_timeout, hit by a lock another transaction holds) aborts the
    caller's PostgreSQL transaction. track() still returns None by default; the caller's next
    statement fails, its rollback works, and nothing of the transaction is committed."""
    business.create_all(pg_engine)
    try:
        blocker = pg_engine.connect()
        blocker_tx = blocker.begin()
        blocker.execute(sa.text("LOCK TABLE relay_outbox IN EXCLUSIVE MODE"))
        try:
            with pg_engine.connect() as conn:
                tx = conn.begin()
                conn.execute(sa.insert(orders).values(id=1))
                conn.execute(sa.text("SET LOCAL statement_timeout = '200ms'"))
                assert track(conn, event=EVENT, distinct_id=USER, properties=props()) is None
                with pytest.raises(sa.exc.DBAPIError):
                    conn.execute(sa.insert(orders).values(id=2))
                tx.rollback()
                assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
        finally:
            blocker_tx.rollback()
            blocker.close()
        assert order_count(pg_engine) == 0
        assert outbox_rows(pg_engine) == []
    finally:
        business.drop_all(pg_engine)


def test_invalid_event_in_default_mode_keeps_the_business_row(
    db: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Fire-and-forget: an invalid event is logged, not written, and the business commits."""
    with Session(db) as session, session.begin():
        session.execute(sa.insert(orders).values(id=1))
        result = track(
            session,
            event=EVENT,
            distinct_id=USER,
            properties=props(widget_id="mail jane@example.com"),
            strict=False,
        )
        assert result is None
    assert order_count(db) == 1
    assert outbox_rows(db) == []


def test_invalid_event_in_strict_mode_raises_naming_the_field(db: Engine) -> None:
    """Strict mode raises relay's own error, naming the event and the field, not the value."""
    with Session(db) as session, session.begin():
        with pytest.raises(EventValidationError) as info:
            track(
                session,
                event=EVENT,
                distinct_id=USER,
                properties=props(quantity="many"),
                strict=True,
            )
        with strict_tracking(), pytest.raises(EventValidationError, match="widget_id"):
            track(session, event=EVENT, distinct_id=USER, properties=props(widget_id=None))
    assert info.value.event == EVENT
    assert info.value.field == "quantity"
    assert "many" not in str(info.value)


def test_unregistered_event_is_refused(db: Engine) -> None:
    """An event nobody registered cannot be tracked."""
    with db.begin() as conn, pytest.raises(EventValidationError.__mro__[1], match="not registered"):
        track(
            conn, event="svc.tests.never_registered", distinct_id=USER, properties={}, strict=True
        )


def test_failed_insert_is_rolled_back_alone_and_the_transaction_goes_on(db: Engine) -> None:
    """A duplicate $insert_id is skipped by the INSERT itself (no error, no savepoint) and
    reported as None; the business transaction still commits."""
    with Session(db) as session, session.begin():
        track(session, event=EVENT, distinct_id=USER, properties=props(), insert_id="dup-1")
        session.execute(sa.insert(orders).values(id=1))
        again = track(session, event=EVENT, distinct_id=USER, properties=props(), insert_id="dup-1")
        assert again is None
        session.execute(sa.insert(orders).values(id=2))
    assert order_count(db) == 2
    assert [r.insert_id for r in outbox_rows(db)] == ["dup-1"]


def test_failed_insert_in_strict_mode_raises_store_error_without_values(db: Engine) -> None:
    """The StoreError carries the failure's kind and a hint, never the bound values."""
    with db.begin() as conn:
        track(conn, event=EVENT, distinct_id=USER, properties=props(), insert_id="dup-2")
        with pytest.raises(StoreError, match="already in the outbox") as info:
            track(
                conn,
                event=EVENT,
                distinct_id=USER,
                properties=props(),
                insert_id="dup-2",
                strict=True,
            )
    assert "Acme" not in str(info.value)
    assert info.value.__cause__ is None


def test_unmigrated_database_is_logged_or_raised_as_missing_tables(db: Engine) -> None:
    """Relay's tables missing: by default track() returns None and the caller goes on; strict
    mode raises the store's OutboxTablesMissingError as is, with no driver error chained."""
    metadata.drop_all(db)
    with db.begin() as conn:
        assert track(conn, event=EVENT, distinct_id=USER, properties=props()) is None
    with db.begin() as conn, pytest.raises(OutboxTablesMissingError) as info:
        track(conn, event=EVENT, distinct_id=USER, properties=props(), strict=True)
    assert info.value.__cause__ is None
    assert "Acme" not in str(info.value)


def test_failure_logs_name_the_event_but_never_property_values(
    db: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """The failure log has the event name and the field, and no trace of the refused value."""
    with logging_restored():
        structlog.configure(
            processors=[structlog.processors.JSONRenderer()],
            logger_factory=structlog.PrintLoggerFactory(),
        )
        with db.begin() as conn:
            track(
                conn, event=EVENT, distinct_id=USER, properties=props(widget_id="+1 415 555 0100")
            )
    out = capsys.readouterr().out
    assert "mixpanel_event_tracking_failed" in out
    assert EVENT in out
    assert "widget_id" in out
    assert "555" not in out


def test_cron_run_marks_events_and_keeps_the_original_time(db: Engine) -> None:
    """Inside a cron run, events carry is_cron_job and the run time; time stays the action's."""
    run_at = dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC)
    with db.begin() as conn, cron_run(run_at) as run_ms:
        track(
            conn,
            event=EVENT,
            distinct_id=USER,
            properties=props(),
            occurred_at=OCCURRED,
            strict=True,
        )
        track(
            conn,
            event=EVENT,
            distinct_id=USER,
            properties=WidgetShippedSchema(**props()),
            occurred_at=OCCURRED,
            strict=True,
        )
    rows = outbox_rows(db)
    assert len(rows) == 2
    for row in rows:
        assert row.time_ms == datetime_to_timestamp_ms(OCCURRED)
        assert row.properties["is_cron_job"] is True
        assert (
            row.properties["cron_execution_timestamp"] == run_ms == datetime_to_timestamp_ms(run_at)
        )


def test_events_outside_a_cron_run_are_not_marked(db: Engine) -> None:
    """The cron marking ends with the block."""
    with cron_run():
        pass
    with db.begin() as conn:
        track(conn, event=EVENT, distinct_id=USER, properties=props(), strict=True)
    assert outbox_rows(db)[0].properties["is_cron_job"] is False


def test_naive_occurred_at_is_refused(db: Engine) -> None:
    """A naive datetime is ambiguous and would shift the event time; it is refused."""
    with db.begin() as conn, pytest.raises(EventValidationError, match="timezone-aware"):
        track(
            conn,
            event=EVENT,
            distinct_id=USER,
            properties=props(),
            occurred_at=dt.datetime(2026, 1, 1),  # noqa: DTZ001 - the naive case under test
            strict=True,
        )


def test_no_tracking_path_sends_a_notify_in_the_hosts_transaction(
    pg_engine: Engine, postgresql_url: str
) -> None:
    """track(), track_many() and a profile update commit without any NOTIFY (which would make
    every notifying commit on the server wait for PostgreSQL's global notify lock), through a
    Session and a Connection alike."""
    dsn = (
        sa.engine.make_url(postgresql_url)
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN relay_outbox")
        with Session(pg_engine) as session, session.begin():
            track(session, event=EVENT, distinct_id=USER, properties=props(), strict=True)
        with pg_engine.begin() as conn:
            track(conn, event=EVENT, distinct_id=USER, properties=props(), strict=True)
            track_many(
                conn,
                [{"event": EVENT, "distinct_id": USER, "properties": props()}],
                strict=True,
            )
            update_profile(
                conn, distinct_id=USER, operation="$set", properties={"plan": "pro"}, strict=True
            )
        assert list(listener.notifies(timeout=0.5, stop_after=1)) == []
    assert len(outbox_rows(pg_engine)) == 4


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
hostile_text = st.text(max_size=300) | st.sampled_from(
    ["null", "anonymous", "a@b.io", "+1 (415) 555-0100", "\x00", "\ud800", "x" * 256, ""]
)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    event=st.sampled_from([EVENT, "svc.tests.unknown_event", "not an event"]),
    distinct_id=hostile_text,
    insert_id=st.none() | hostile_text,
    widget_id=hostile_text,
    quantity=st.integers() | st.text(max_size=5),
    extra=st.dictionaries(st.text(max_size=300), json_values, max_size=8),
    tags=st.lists(hostile_text, max_size=300),
    occurred_at=st.none() | st.datetimes(timezones=st.just(dt.UTC)),
)
def test_hostile_inputs_never_escape_and_never_store_a_bad_row(
    engine: Engine,
    event: str,
    distinct_id: str,
    insert_id: str | None,
    widget_id: str,
    quantity: Any,
    extra: dict[str, Any],
    tags: list[str],
    occurred_at: dt.datetime | None,
) -> None:
    """In default mode track() never raises into the caller, and every stored row is valid."""
    logging.disable(logging.CRITICAL)
    try:
        with engine.begin() as conn:
            result = track(
                conn,
                event=event,
                distinct_id=distinct_id,
                properties=props(widget_id=widget_id, quantity=quantity, extra=extra, tags=tags),
                occurred_at=occurred_at,
                insert_id=insert_id,
                strict=False,
            )
            rows = list(conn.execute(sa.select(outbox).where(outbox.c.insert_id == (result or ""))))
            conn.execute(sa.delete(outbox))
    finally:
        logging.disable(logging.NOTSET)
    if result is None:
        assert rows == []
        return
    (row,) = rows
    assert row.event == EVENT
    check_distinct_id(EVENT, row.distinct_id)
    check_insert_id(EVENT, row.insert_id)
    check_properties(EVENT, row.properties)
    assert row.time_ms >= 100_000_000_000


# --- location, time ahead, stored size -------------------------------------------------------


def test_location_is_stored_as_mixpanels_location_properties(db: Engine) -> None:
    """location= is stored as $city, $region and mp_country_code, and nothing else is added."""
    with Session(db) as session, session.begin():
        track(
            session,
            event=EVENT,
            distinct_id=USER,
            properties=props(),
            location=Location(city="Berlin", region="Berlin", country_code="DE"),
            strict=True,
        )
    (row,) = outbox_rows(db)
    assert row.properties["$city"] == "Berlin"
    assert row.properties["$region"] == "Berlin"
    assert row.properties["mp_country_code"] == "DE"
    assert "ip" not in row.properties
    assert "$ip" not in row.properties


def test_location_with_an_unassigned_country_code_is_refused_and_stores_nothing(
    db: Engine,
) -> None:
    """A country code that is not ISO 3166-1 alpha-2 is refused naming mp_country_code."""
    with Session(db) as session, session.begin():
        with pytest.raises(EventValidationError) as info:
            track(
                session,
                event=EVENT,
                distinct_id=USER,
                properties=props(),
                location=Location(country_code="XX"),
                strict=True,
            )
        assert info.value.field == "mp_country_code"
        assert (
            track(
                session,
                event=EVENT,
                distinct_id=USER,
                properties=props(),
                location=Location(country_code="Germany"),
            )
            is None
        )
    assert outbox_rows(db) == []


def test_time_within_the_clock_skew_is_stored_due_at_that_time(db: Engine) -> None:
    """An event 30 s ahead is stored, due no earlier than its own time."""
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    with Session(db) as session, session.begin():
        track(
            session,
            event=EVENT,
            distinct_id=USER,
            properties=props(),
            occurred_at=ahead,
            strict=True,
        )
    (row,) = outbox_rows(db)
    assert row.next_attempt_at == timestamp_ms_to_datetime(row.time_ms)
    assert row.time_ms == datetime_to_timestamp_ms(ahead)


def test_time_ten_minutes_ahead_is_refused(db: Engine) -> None:
    """A time beyond the 60 s clock-skew bound (once accepted up to an hour) is refused."""
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    with Session(db) as session, session.begin(), pytest.raises(EventValidationError) as info:
        track(
            session,
            event=EVENT,
            distinct_id=USER,
            properties=props(),
            occurred_at=ahead,
            strict=True,
        )
    assert info.value.field == "time"
    assert outbox_rows(db) == []


def test_event_that_would_grow_past_one_megabyte_in_storage_is_refused(db: Engine) -> None:
    """450 KB of 1e308 floats (20 MB as PostgreSQL stores them) is refused naming the field."""
    floats = {"f": [[1e308] * 250] * 250}
    with Session(db) as session, session.begin(), pytest.raises(EventValidationError) as info:
        track(
            session,
            event=EVENT,
            distinct_id=USER,
            properties=props(extra=floats),
            strict=True,
        )
    assert info.value.field == "extra"
    assert outbox_rows(db) == []
