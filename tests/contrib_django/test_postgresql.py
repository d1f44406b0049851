"""PostgreSQL specifics through Django: NOTIFY at commit, never before, never after rollback."""

from __future__ import annotations

import select

import psycopg
import pytest
import sqlalchemy as sa
from conftest import SURVEY_DELIVERED, rolled_back, survey_properties
from django.db import connections, transaction

from relay._config import NOTIFY_CHANNEL
from relay.contrib.django import database_url, track

pytestmark = pytest.mark.django_db(transaction=True, databases=["postgresql"])


def _listener() -> psycopg.Connection:
    url = database_url("postgresql").replace("postgresql+psycopg2://", "postgresql://")
    url = url.replace("postgresql+psycopg://", "postgresql://")
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
    return conn


def _notified(conn: psycopg.Connection, timeout: float) -> bool:
    select.select([conn.fileno()], [], [], timeout)
    return any(True for _ in conn.notifies(timeout=0.01, stop_after=1))


def test_notify_is_delivered_at_commit_only() -> None:
    """Relays LISTENing are woken when the block commits, not when track() runs."""
    listener = _listener()
    try:
        with transaction.atomic(using="postgresql"):
            track(
                event=SURVEY_DELIVERED,
                distinct_id="emp-1",
                properties=survey_properties(),
                using="postgresql",
            )
            assert not _notified(listener, 0.2)
        assert _notified(listener, 5)
        with rolled_back("postgresql"):
            track(
                event=SURVEY_DELIVERED,
                distinct_id="emp-1",
                properties=survey_properties(),
                using="postgresql",
            )
        assert not _notified(listener, 0.3)
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
