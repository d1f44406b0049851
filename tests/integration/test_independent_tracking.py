"""``independent=True``: a failure event survives the rollback of the transaction it reports."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from helpers.standin import standin_settings
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from relay._delivery.drain import Drainer
from relay._errors import StoreError
from relay._event.properties import MixpanelSuperEventPropertiesSchema
from relay._event.registry import register_event
from relay._mixpanel.client import MixpanelImportClient
from relay._tables import outbox
from relay._tracking import strict_tracking, track, track_many
from relay.testing.mixpanel_standin import MixpanelStandin
from relay.testing.scratch import fresh_tables

DONE = "svc.tests_independent.import.completed"
FAILED = "svc.tests_independent.import.completed.error"


class ImportSchema(MixpanelSuperEventPropertiesSchema):
    """Test event: an import ran (or failed)."""

    import_id: str


register_event(DONE, ImportSchema)
register_event(FAILED, ImportSchema)

business = sa.MetaData()
imports = sa.Table("test_imports", business, sa.Column("id", sa.Integer, primary_key=True))


class ImportFailedError(Exception):
    """The business operation failed: its transaction rolls back."""


def props() -> dict[str, Any]:
    return {
        "employee_id": "emp-1",
        "organization_id": "org-1",
        "organization_name": "Acme",
        "role": None,
        "impersonation": False,
        "import_id": "imp-1",
    }


@pytest.fixture(params=["postgresql", "mariadb"])
def server_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Empty relay tables and a business table on PostgreSQL and MariaDB."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    with fresh_tables(url) as engine:
        business.drop_all(engine)
        business.create_all(engine)
        yield engine
        business.drop_all(engine)


def _events(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(outbox.c.event).order_by(outbox.c.id)).scalars())


def _delivered(engine: Engine) -> list[str]:
    with MixpanelStandin() as standin:
        settings = standin_settings(standin, engine)
        client = MixpanelImportClient(settings)
        try:
            Drainer(engine, client, settings).drain_once(now=dt.datetime.now(dt.UTC))
        finally:
            client.close()
        return [record.event["event"] for record in standin.ingested()]


def test_independent_error_event_is_delivered_after_the_session_rolls_back(
    server_engine: Engine,
) -> None:
    """In a rolled-back Session, the independent ``.error`` event is delivered, the other not."""
    with (
        strict_tracking(),
        contextlib.suppress(ImportFailedError),
        Session(server_engine) as s,
        s.begin(),
    ):
        s.execute(imports.insert().values(id=1))
        assert track(s, event=DONE, distinct_id="emp-1", properties=props())
        try:
            raise ImportFailedError  # the business operation fails ...
        except ImportFailedError:
            kept = track(s, event=FAILED, distinct_id="emp-1", properties=props(), independent=True)
            assert kept is not None
            raise  # ... and its transaction rolls back
    with server_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(imports)).scalar() == 0
    assert _events(server_engine) == [FAILED]
    assert _delivered(server_engine) == [FAILED]


def test_independent_event_on_a_connection_is_committed_before_track_returns(
    server_engine: Engine,
) -> None:
    """On a ``Connection`` whose transaction is still open, another session already sees it."""
    with server_engine.connect() as conn, conn.begin():
        track(conn, event=FAILED, distinct_id="emp-1", properties=props(), independent=True)
        track(conn, event=DONE, distinct_id="emp-1", properties=props())
        assert _events(server_engine) == [FAILED]  # read on another connection
        conn.rollback()
    assert _events(server_engine) == [FAILED]


def test_track_many_independent_keeps_every_row_after_the_rollback(server_engine: Engine) -> None:
    """``track_many(independent=True)`` commits its rows on their own, all of them."""
    items = [{"event": FAILED, "distinct_id": f"emp-{i}", "properties": props()} for i in range(3)]
    with strict_tracking(), Session(server_engine) as s, s.begin():
        ids = track_many(s, items, independent=True)
        assert None not in ids
        s.rollback()
    assert _events(server_engine) == [FAILED] * 3


def test_independent_is_refused_where_it_would_share_the_callers_connection() -> None:
    """SQLite in memory (one shared connection): refused, nothing committed for the caller."""
    engine = sa.create_engine("sqlite://")
    try:
        with engine.connect() as conn, strict_tracking(), pytest.raises(StoreError, match="second"):
            track(conn, event=FAILED, distinct_id="emp-1", properties=props(), independent=True)
    finally:
        engine.dispose()


def test_independent_inside_an_open_sqlite_transaction_fails_at_once_and_is_logged(
    sqlite_engine: Engine,
) -> None:
    """SQLite (one writer): refused at once inside the caller's transaction, never a hang."""
    with sqlite_engine.connect() as conn, conn.begin():
        conn.execute(outbox.select().limit(1))
        result = track(
            conn, event=FAILED, distinct_id="emp-1", properties=props(), independent=True
        )
        assert result is None
        with strict_tracking(), pytest.raises(StoreError, match="SQLite"):
            track(conn, event=FAILED, distinct_id="emp-1", properties=props(), independent=True)
    with sqlite_engine.connect() as idle:  # no transaction open: allowed
        kept = track(idle, event=FAILED, distinct_id="emp-1", properties=props(), independent=True)
    assert kept is not None
    assert _events(sqlite_engine) == [FAILED]
