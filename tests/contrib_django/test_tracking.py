"""``relay.contrib.django.track``: events in Django's own transaction, on every backend.

Each promise is checked through Django's own connection and, where it matters, from outside
(relay's own engine, a separate connection that sees committed rows only).
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from conftest import ALIASES, SURVEY_DELIVERED, rolled_back, survey_properties
from django.db import connections, transaction
from djapp.models import Delivery

from relay._errors import EventValidationError, StoreError
from relay._tracking import strict_tracking
from relay.contrib.django import borrowed_connection, relay_engine, track, track_many

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=list(ALIASES)),
    pytest.mark.usefixtures("fire_and_forget"),
]


def committed(alias: str) -> list[str]:
    """Insert ids of the committed outbox rows, read on a connection other than Django's."""
    with relay_engine(alias).connect() as conn:
        return list(
            conn.execute(sa.text("SELECT insert_id FROM relay_outbox ORDER BY id")).scalars()
        )


def tracked(alias: str, **changes: object) -> str | None:
    return track(
        event=SURVEY_DELIVERED,
        distinct_id="emp-1",
        properties=survey_properties(**changes),
        using=alias,
    )


def test_commit_writes_the_event_with_the_business_row(alias: str) -> None:
    """Committing the block commits the event and the host's row together, once."""
    assert committed(alias) == []  # (on SQLite, relay's engine first switches the file to WAL)
    with transaction.atomic(using=alias):
        Delivery.objects.using(alias).create(survey_id="s", employee_id="emp-1")
        insert_id = tracked(alias)
        assert committed(alias) == []  # not visible to others before the commit
    assert insert_id is not None
    assert committed(alias) == [insert_id]
    assert Delivery.objects.using(alias).count() == 1


def test_rollback_leaves_no_event(alias: str) -> None:
    """A block that rolls back takes its events with it."""
    with rolled_back(alias):
        Delivery.objects.using(alias).create(survey_id="s", employee_id="emp-1")
        assert tracked(alias) is not None
    assert committed(alias) == []
    assert Delivery.objects.using(alias).count() == 0


def test_nested_block_rolled_back_removes_only_its_own_events(alias: str) -> None:
    """An inner ``atomic()`` that rolls back removes its events; the outer block's stay."""
    with transaction.atomic(using=alias):
        before = tracked(alias, survey_id="before")
        with rolled_back(alias):
            tracked(alias, survey_id="inner")
        after = tracked(alias, survey_id="after")
        with transaction.atomic(using=alias):
            kept = tracked(alias, survey_id="inner-kept")
    assert committed(alias) == [before, after, kept]


@pytest.mark.parametrize(
    "bad",
    [
        {"properties": {"survey_id": "s"}},  # invalid properties
        {"event": "svc.nope.not_registered"},  # unknown event
        {"distinct_id": ""},
    ],
    ids=["invalid-properties", "unknown-event", "empty-distinct-id"],
)
def test_a_bad_event_leaves_the_block_intact(alias: str, bad: dict[str, object]) -> None:
    """A refused event returns None, and the block carries on and commits its other work."""
    arguments: dict[str, object] = {
        "event": SURVEY_DELIVERED,
        "distinct_id": "emp-1",
        "properties": survey_properties(),
        **bad,
    }
    with transaction.atomic(using=alias):
        Delivery.objects.using(alias).create(survey_id="s", employee_id="emp-1")
        assert track(**arguments, using=alias) is None  # type: ignore[arg-type]
        good = tracked(alias)
        Delivery.objects.using(alias).create(survey_id="t", employee_id="emp-1")
    assert committed(alias) == [good]
    assert Delivery.objects.using(alias).count() == 2


def test_a_failed_insert_rolls_back_alone(alias: str) -> None:
    """A duplicate ``$insert_id`` fails in the database; only its savepoint is rolled back.

    On PostgreSQL an error without the savepoint would abort the whole transaction: the
    Django writes after it prove that it did not.
    """
    first = tracked(alias)
    with transaction.atomic(using=alias):
        Delivery.objects.using(alias).create(survey_id="s", employee_id="emp-1")
        assert (
            track(
                event=SURVEY_DELIVERED,
                distinct_id="emp-1",
                properties=survey_properties(),
                insert_id=first,
                using=alias,
            )
            is None
        )
        Delivery.objects.using(alias).create(survey_id="t", employee_id="emp-1")
    assert committed(alias) == [first]
    assert Delivery.objects.using(alias).count() == 2


def test_strict_mode_raises_and_the_block_decides(alias: str) -> None:
    """In strict mode a bad event raises; caught inside the block, the block still commits."""
    with transaction.atomic(using=alias):
        with pytest.raises(EventValidationError):
            track(
                event=SURVEY_DELIVERED,
                distinct_id="emp-1",
                properties={"survey_id": "s"},
                strict=True,
                using=alias,
            )
        good = tracked(alias)
    assert committed(alias) == [good]


def test_outside_atomic_the_event_is_committed_at_once(alias: str) -> None:
    """In autocommit mode the event is written and committed immediately, as ``save()`` is."""
    connection = connections[alias]
    assert connection.get_autocommit()
    insert_id = tracked(alias)
    assert committed(alias) == [insert_id]
    assert connection.get_autocommit()
    assert not connection.in_atomic_block


def test_django_connection_state_is_untouched(alias: str) -> None:
    """Nothing SQLAlchemy does begins, ends or reconfigures Django's connection.

    The same DBAPI connection is still Django's, its autocommit flag and atomic state are
    as before, and Django's own JSON decoding (Django's JSONField) still works after relay
    borrowed it: SQLAlchemy's dialect registered nothing on the connection.
    """
    connection = connections[alias]
    with transaction.atomic(using=alias):
        Delivery.objects.using(alias).create(survey_id="s", employee_id="emp-1")
        raw = connection.connection
        for _ in range(3):
            tracked(alias)
        assert connection.connection is raw
        assert connection.in_atomic_block
        assert not connection.get_autocommit()
        assert not connection.needs_rollback
        if connection.vendor == "postgresql" and hasattr(raw, "_notice_handlers"):
            assert raw._notice_handlers == []  # SQLAlchemy's notice logger was not added
    assert connection.get_autocommit()
    from relay.contrib.django.models import OutboxEvent  # noqa: PLC0415

    rows = list(OutboxEvent.objects.using(alias).all())
    assert len(rows) == 3
    assert rows[0].properties["survey_id"] == "survey-1"  # Django decodes relay's JSON


def test_the_borrowed_connection_cannot_commit_or_close_django(alias: str) -> None:
    """Committing, rolling back or closing the SQLAlchemy side leaves Django's block open."""
    with transaction.atomic(using=alias):
        Delivery.objects.using(alias).create(survey_id="s", employee_id="emp-1")
        with borrowed_connection(alias) as conn:
            conn.execute(sa.text("SELECT 1"))
            conn.commit()
            conn.execute(sa.text("SELECT 1"))
            conn.rollback()
            conn.close()
        assert committed(alias) == []
        Delivery.objects.using(alias).create(survey_id="t", employee_id="emp-1")
        with borrowed_connection(alias) as conn:
            current = conn.get_isolation_level()
            other = next(
                level
                for level in conn.dialect.get_isolation_level_values(
                    conn.connection.dbapi_connection
                )
                if level not in (current, "AUTOCOMMIT")
            )
            with pytest.raises(StoreError, match="isolation level"):
                conn.execution_options(isolation_level=other).execute(sa.text("SELECT 1"))
        transaction.set_rollback(True, using=alias)
    assert Delivery.objects.using(alias).count() == 0


def test_track_many_writes_each_good_event(alias: str) -> None:
    """``track_many`` returns one insert id or None per item, in order; bad items alone fail."""
    good = {"event": SURVEY_DELIVERED, "distinct_id": "emp-1", "properties": survey_properties()}
    bad = {**good, "properties": {"survey_id": "s"}}
    with transaction.atomic(using=alias):
        ids = track_many([good, bad, good], using=alias)
    assert ids[1] is None
    assert ids[0] is not None
    assert ids[2] is not None
    assert committed(alias) == [ids[0], ids[2]]
    with rolled_back(alias):
        track_many([good, good], using=alias)
    assert committed(alias) == [ids[0], ids[2]]
    assert track_many([], using=alias) == []


def test_strict_track_many_writes_nothing_of_a_bad_batch(alias: str) -> None:
    """Strict ``track_many`` raises on a bad item before any row is written; the block goes on."""
    good = {"event": SURVEY_DELIVERED, "distinct_id": "emp-1", "properties": survey_properties()}
    bad = {**good, "properties": {"survey_id": "s"}}
    with transaction.atomic(using=alias):
        with pytest.raises(EventValidationError):
            track_many([good, bad, good], strict=True, using=alias)
        Delivery.objects.using(alias).create(survey_id="s", employee_id="emp-1")
    assert committed(alias) == []
    assert Delivery.objects.using(alias).count() == 1


@pytest.mark.parametrize("alias", ["postgresql", "mariadb"])  # SQLite: one writer at a time
def test_threads_use_their_own_django_connections(alias: str) -> None:
    """Each thread borrows its own Django connection: a thread's rollback is its own."""
    results: dict[str, str | None] = {}

    def work(name: str, fail: bool) -> None:
        try:
            with rolled_back(alias) if fail else transaction.atomic(using=alias):
                results[name] = tracked(alias, survey_id=name)
        finally:
            connections[alias].close()

    threads = [threading.Thread(target=work, args=(f"t{i}", i % 2 == 1)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(committed(alias)) == sorted([results["t0"], results["t2"]])


def test_a_dead_django_connection_does_not_break_the_caller(alias: str) -> None:
    """With Django's database unreachable, track() logs and returns None; strict raises."""
    connection = connections[alias]
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent-dir/relay.db"
    else:
        connection.settings_dict["PORT"] = "1"
    try:
        assert tracked(alias) is None
        with strict_tracking(), pytest.raises(Exception):  # noqa: B017,PT011 - the driver's error
            tracked(alias)
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
