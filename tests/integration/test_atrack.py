"""atrack() and atrack_many() on SQLAlchemy's asyncio API: psycopg async, asyncpg, aiosqlite."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from relay import (
    EventValidationError,
    MixpanelSuperEventPropertiesSchema,
    SystemRole,
    atrack,
    atrack_many,
    aupdate_group,
    aupdate_profile,
    configure_sqlite,
    cron_run,
    register_event,
    strict_tracking,
)
from relay._tables import metadata, outbox

pytestmark = pytest.mark.anyio

EVENT = "svc.tests.widget_awaited"


class WidgetAwaitedSchema(MixpanelSuperEventPropertiesSchema):
    """Test event: a widget was awaited."""

    widget_id: str
    n: int = 0


register_event(EVENT, WidgetAwaitedSchema)

business = sa.MetaData()
orders = sa.Table("test_async_orders", business, sa.Column("id", sa.Integer, primary_key=True))
USER = "6f1c7a0e-1b2c-4d5e-8f90-123456789abc"


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


ASYNC_DRIVERS = {
    "psycopg_async": ("postgresql_url", "postgresql+psycopg"),
    "asyncpg": ("postgresql_url", "postgresql+asyncpg"),
    "aiosqlite": ("sqlite_url", "sqlite+aiosqlite"),
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=sorted(ASYNC_DRIVERS))
def driver(request: pytest.FixtureRequest) -> str:
    """Each async driver relay supports."""
    return str(request.param)


@pytest.fixture
def sync_engine(request: pytest.FixtureRequest, driver: str) -> Any:
    """A sync engine on the database behind the driver, with fresh relay tables."""
    fixture, _ = ASYNC_DRIVERS[driver]
    url = sa.make_url(request.getfixturevalue(fixture))
    engine = sa.create_engine(url)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    business.drop_all(engine)
    business.create_all(engine)
    yield engine
    business.drop_all(engine)
    engine.dispose()


@pytest.fixture
async def aengine(sync_engine: Engine, driver: str) -> AsyncIterator[AsyncEngine]:
    """The async engine of the driver under test."""
    _, drivername = ASYNC_DRIVERS[driver]
    engine = create_async_engine(sync_engine.url.set(drivername=drivername))
    if drivername.startswith("sqlite"):
        configure_sqlite(engine.sync_engine)
    yield engine
    await engine.dispose()


def stored(engine: Engine) -> list[sa.Row[Any]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(outbox).order_by(outbox.c.id)).all())


def order_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar_one()


async def test_atrack_on_a_session_commits_with_the_callers_transaction(
    aengine: AsyncEngine, sync_engine: Engine
) -> None:
    """The event is stored when the AsyncSession commits, with the returned insert id."""
    async with AsyncSession(aengine) as session, session.begin():
        await session.execute(sa.insert(orders).values(id=1))
        insert_id = await atrack(session, event=EVENT, distinct_id=USER, properties=props(n=3))
    rows = stored(sync_engine)
    assert [(r.insert_id, r.properties["n"]) for r in rows] == [(insert_id, 3)]
    assert order_count(sync_engine) == 1


async def test_atrack_on_a_connection_rolled_back_leaves_nothing(
    aengine: AsyncEngine, sync_engine: Engine
) -> None:
    """An AsyncConnection works like an AsyncSession; its rollback takes the event along."""
    async with aengine.connect() as conn:
        tx = await conn.begin()
        assert await atrack(conn, event=EVENT, distinct_id=USER, properties=props())
        await tx.rollback()
    assert stored(sync_engine) == []


async def test_a_bad_event_or_duplicate_never_aborts_the_callers_transaction(
    aengine: AsyncEngine, sync_engine: Engine
) -> None:
    """Default mode: an invalid event and a duplicate id come back None; the caller's
    transaction goes on and commits its own rows."""
    async with aengine.begin() as conn:
        await conn.execute(sa.insert(orders).values(id=1))
        assert await atrack(conn, event=EVENT, distinct_id=USER, properties=props(n="x")) is None
        first = await atrack(conn, event=EVENT, distinct_id=USER, properties=props(), insert_id="d")
        again = await atrack(conn, event=EVENT, distinct_id=USER, properties=props(), insert_id="d")
        await conn.execute(sa.insert(orders).values(id=2))
    assert (first, again) == ("d", None)
    assert order_count(sync_engine) == 2
    assert [r.insert_id for r in stored(sync_engine)] == ["d"]


async def test_strict_mode_and_cron_run_reach_across_the_bridge(
    aengine: AsyncEngine, sync_engine: Engine
) -> None:
    """strict_tracking() and cron_run() set in the calling task hold inside atrack()."""
    run_at = dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC)
    async with aengine.begin() as conn:
        with strict_tracking(), pytest.raises(EventValidationError):
            await atrack(conn, event=EVENT, distinct_id=USER, properties=props(n="x"))
        with cron_run(run_at) as run_ms:
            await atrack(conn, event=EVENT, distinct_id=USER, properties=props(), strict=True)
    (row,) = stored(sync_engine)
    assert row.properties["cron_execution_timestamp"] == run_ms


async def test_atrack_many_writes_valid_items_and_strict_writes_nothing_on_a_bad_batch(
    aengine: AsyncEngine, sync_engine: Engine
) -> None:
    """atrack_many has track_many's results; strict mode raises before writing anything."""
    items = [{"event": EVENT, "distinct_id": USER, "properties": props(n=n)} for n in range(3)]
    bad = [*items, {"event": EVENT, "distinct_id": USER, "properties": props(n="x")}]
    async with AsyncSession(aengine) as session, session.begin():
        with pytest.raises(EventValidationError):
            await atrack_many(session, bad, strict=True)
        ids = await atrack_many(session, bad, strict=False)
    assert [i is not None for i in ids] == [True, True, True, False]
    assert [r.properties["n"] for r in stored(sync_engine)] == [0, 1, 2]


async def test_atrack_independent_keeps_the_event_when_the_session_rolls_back(
    aengine: AsyncEngine, sync_engine: Engine, driver: str
) -> None:
    """``atrack(independent=True)`` on PostgreSQL drivers commits on its own; SQLite refuses."""
    async with AsyncSession(aengine) as session:
        await session.begin()
        await session.execute(sa.insert(orders).values(id=1))
        kept = await atrack(
            session,
            event=EVENT,
            distinct_id=USER,
            properties=props(),
            independent=True,
            strict=False,
        )
        await session.rollback()
    if driver == "aiosqlite":
        assert kept is None  # inside the caller's transaction on SQLite: refused, logged
        assert stored(sync_engine) == []
    else:
        assert [r.insert_id for r in stored(sync_engine)] == [kept]
    assert order_count(sync_engine) == 0


async def test_aupdate_profile_and_group_commit_with_the_callers_transaction(
    aengine: AsyncEngine, sync_engine: Engine
) -> None:
    """``aupdate_profile``/``aupdate_group`` write ``user``/``group`` rows in the caller's tx."""
    async with AsyncSession(aengine) as session, session.begin():
        user = await aupdate_profile(
            session, distinct_id=USER, operation="$set", properties={"plan": "pro"}
        )
        group = await aupdate_group(
            session,
            group_key="organization_id",
            group_id="org-1",
            operation="$set",
            properties={"seats": 3},
        )
    async with AsyncSession(aengine) as session, session.begin():
        await aupdate_profile(session, distinct_id=USER, operation="$delete", properties=None)
        await session.rollback()
    assert [(r.insert_id, r.kind) for r in stored(sync_engine)] == [
        (user, "user"),
        (group, "group"),
    ]
