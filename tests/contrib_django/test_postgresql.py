"""PostgreSQL specifics through Django: no NOTIFY in the block, the driver, the outbox check."""

from __future__ import annotations

import select

import psycopg
import pytest
import sqlalchemy as sa
from conftest import SURVEY_DELIVERED, survey_properties
from django.db import connections, transaction

from relay.contrib.django import database_url, track

pytestmark = pytest.mark.django_db(transaction=True, databases=["postgresql"])


def _listener() -> psycopg.Connection:
    url = database_url("postgresql").replace("postgresql+psycopg2://", "postgresql://")
    url = url.replace("postgresql+psycopg://", "postgresql://")
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("LISTEN relay_outbox")
    return conn


def _notified(conn: psycopg.Connection, timeout: float) -> bool:
    select.select([conn.fileno()], [], [], timeout)
    return any(True for _ in conn.notifies(timeout=0.01, stop_after=1))


def test_a_committed_block_sends_no_notify() -> None:
    """track() through Django adds no NOTIFY to the block (it would serialise the host's
    commits on PostgreSQL's global notify lock); the relays find the row by themselves."""
    listener = _listener()
    try:
        with transaction.atomic(using="postgresql"):
            assert track(
                event=SURVEY_DELIVERED,
                distinct_id="emp-1",
                properties=survey_properties(),
                using="postgresql",
            )
        assert not _notified(listener, 0.5)
    finally:
        listener.close()


def test_driver_is_the_one_django_uses() -> None:
    """relay speaks the driver Django loaded (psycopg 3, or psycopg2 when 3 is absent)."""
    from relay.contrib.django._bridge import sqlalchemy_backend  # noqa: PLC0415

    connections["postgresql"].ensure_connection()
    module = type(connections["postgresql"].connection).__module__.split(".")[0]
    assert sqlalchemy_backend("postgresql") == ("postgresql", module)


def test_the_outbox_check_runs_once_per_django_connection() -> None:
    """track() asks whether relay_outbox is writable once per Django connection, not per call.

    The bridge checks out a fresh SQLAlchemy connection record for every call (NullPool), so a
    cache kept on the record would repeat the check on every track(): a round trip each.
    """
    from relay.contrib.django._bridge import _engine  # noqa: PLC0415 - the bridge's own engine

    checks: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "to_regclass" in statement:
            checks.append(statement)

    engine = _engine("postgresql")
    connections["postgresql"].close()  # a new Django connection: nothing cached for it yet
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        with transaction.atomic(using="postgresql"):
            for n in range(3):
                assert track(
                    event=SURVEY_DELIVERED,
                    distinct_id=f"emp-{n}",
                    properties=survey_properties(),
                    using="postgresql",
                )
        with transaction.atomic(using="postgresql"):
            assert track(
                event=SURVEY_DELIVERED,
                distinct_id="emp-9",
                properties=survey_properties(),
                using="postgresql",
            )
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert len(checks) == 1
