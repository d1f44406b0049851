"""Routing at track() time: every API stores the router's destination, or refuses the row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

import relay
from relay import (
    EventContractError,
    MixpanelSuperEventPropertiesSchema,
    Route,
    SystemRole,
    register_event,
    set_router,
    strict_tracking,
    track,
    track_many,
    update_group,
    update_profile,
)
from relay._errors import ConfigurationError
from relay._store.profiles import profile_key
from relay._tables import RowKind, outbox

EVENT = "svc.tests.widget_routed"
US_ORG = "0b6a8a4e-8f55-4f8e-9a53-3f1f4f1c2d10"
EU_ORG = "7d2b1f3c-5a4e-4c1d-9b8a-2e3f4a5b6c7d"
USER = "6f1c7a0e-1b2c-4d5e-8f90-123456789abc"
SECRET_VALUE = "w-zebra-quokka-4711"  # a property value that must never be logged


class WidgetRoutedSchema(MixpanelSuperEventPropertiesSchema):
    """Test event: a widget was routed."""

    widget_id: str


register_event(EVENT, WidgetRoutedSchema)


def props(org: str = US_ORG, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "employee_id": USER,
        "organization_id": org,
        "organization_name": "Acme",
        "role": SystemRole.MANAGER,
        "impersonation": False,
        "widget_id": SECRET_VALUE,
    }
    return base | overrides


REGIONS = {US_ORG: "us", EU_ORG: "eu"}
seen: list[Route] = []


def by_organization(route: Route) -> str:
    seen.append(route)
    return REGIONS.get(route.organization_id or "", "default")


@pytest.fixture(autouse=True)
def router() -> Iterator[None]:
    """The organization router, removed after each test."""
    seen.clear()
    set_router(by_organization, destinations=["default", "us", "eu"])
    yield
    set_router(None, destinations=["default"])


def destinations(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.distinct_id, outbox.c.destination).order_by(outbox.c.id)
        )
        return [(d, x) for d, x in rows]


def row_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()


def test_track_stores_the_routers_destination(engine: Engine) -> None:
    """Each event's row carries the destination its organization routes to."""
    with Session(engine) as session, session.begin():
        track(session, event=EVENT, distinct_id="u-us", properties=props(US_ORG), strict=True)
        track(session, event=EVENT, distinct_id="u-eu", properties=props(EU_ORG), strict=True)
    assert destinations(engine) == [("u-us", "us"), ("u-eu", "eu")]
    assert [(r.kind, r.event, r.organization_id) for r in seen] == [
        ("event", EVENT, US_ORG),
        ("event", EVENT, EU_ORG),
    ]


def test_route_properties_are_the_validated_ones_and_read_only(engine: Engine) -> None:
    """The router sees the stored properties and cannot change them."""
    with Session(engine) as session, session.begin():
        track(session, event=EVENT, distinct_id="u-1", properties=props(), strict=True)
    route = seen[0]
    assert route.properties["widget_id"] == SECRET_VALUE
    assert route.distinct_id == "u-1"
    with pytest.raises(TypeError):
        route.properties["widget_id"] = "other"  # type: ignore[index]


def test_track_many_routes_each_row_of_one_insert(engine: Engine) -> None:
    """One multi-row INSERT (PostgreSQL's recordset path too) stores each row's destination."""
    items = [
        {"event": EVENT, "distinct_id": f"u-{i}", "properties": props(org)}
        for i, org in enumerate([US_ORG, EU_ORG, "", EU_ORG, US_ORG])
    ]
    with Session(engine) as session, session.begin():
        ids = track_many(session, items, strict=True)
    assert all(ids)
    assert destinations(engine) == [
        ("u-0", "us"),
        ("u-1", "eu"),
        ("u-2", "default"),
        ("u-3", "eu"),
        ("u-4", "us"),
    ]


def test_no_router_stores_default(engine: Engine) -> None:
    """Without a router every row goes to default and the router is never called."""
    set_router(None, destinations=["default"])
    with Session(engine) as session, session.begin():
        track(session, event=EVENT, distinct_id="u-1", properties=props(EU_ORG), strict=True)
        track_many(session, [{"event": EVENT, "distinct_id": "u-2", "properties": props()}])
        update_profile(session, distinct_id="u-3", operation="$set", properties={"a": 1})
    assert destinations(engine) == [("u-1", "default"), ("u-2", "default"), ("u-3", "default")]
    assert seen == []


def test_profile_updates_are_routed_with_a_key_per_destination(engine: Engine) -> None:
    """User and group updates store their destination; only non-default keys change."""
    with Session(engine) as session, session.begin():
        update_profile(
            session,
            distinct_id="u-eu",
            operation="$set",
            properties={"organization_id": EU_ORG, "seniority": 3},
            strict=True,
        )
        update_profile(
            session, distinct_id="u-x", operation="$set", properties={"a": 1}, strict=True
        )
        update_group(
            session,
            group_key="organization_id",
            group_id=US_ORG,
            operation="$set",
            properties={"plan": "pro"},
            strict=True,
        )
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.distinct_id, outbox.c.destination, outbox.c.profile_key).order_by(
                outbox.c.id
            )
        ).all()
    assert [(d, x) for d, x, _ in rows] == [("u-eu", "eu"), ("u-x", "default"), (US_ORG, "us")]
    assert rows[0][2] == profile_key(RowKind.USER, "u-eu", destination="eu")
    assert rows[0][2] != profile_key(RowKind.USER, "u-eu")
    # default keeps the key rows had before destinations existed
    assert rows[1][2] == profile_key(RowKind.USER, "u-x")
    assert rows[2][2] == profile_key(RowKind.GROUP, "organization_id", US_ORG, destination="us")
    user, _, group = seen
    assert (user.kind, user.event, user.organization_id) == ("user", "$set", EU_ORG)
    assert (group.kind, group.organization_id, group.group_key) == (
        "group",
        US_ORG,
        "organization_id",
    )


def test_a_group_that_is_no_organization_has_no_organization_id(engine: Engine) -> None:
    """A team group's id is not taken for an organization."""
    with Session(engine) as session, session.begin():
        update_group(
            session,
            group_key="team_id",
            group_id=EU_ORG,
            operation="$set",
            properties={"size": 4},
            strict=True,
        )
    assert seen[0].organization_id is None
    assert destinations(engine) == [(EU_ORG, "default")]


def unknown(route: Route) -> str:
    return "mars"


def raising(route: Route) -> str:
    raise KeyError(route.properties["widget_id"])


def not_a_string(route: Route) -> str:
    return None  # type: ignore[return-value]


BAD_ROUTERS = {
    "unknown": (unknown, "returned 'mars', which is not a configured destination"),
    "raising": (raising, "the router raised KeyError at "),
    "not_a_string": (not_a_string, "returned a NoneType, not a destination name"),
}


@pytest.mark.parametrize("bad", sorted(BAD_ROUTERS))
def test_a_bad_route_is_refused_in_strict_mode_and_nothing_is_written(
    engine: Engine, bad: str
) -> None:
    """track(), track_many() and the profile updates raise and write nothing."""
    router_fn, message = BAD_ROUTERS[bad]
    set_router(router_fn, destinations=["default", "us", "eu"])
    with Session(engine) as session, session.begin(), strict_tracking():
        with pytest.raises(EventContractError) as raised:
            track(session, event=EVENT, distinct_id="u-1", properties=props())
        assert message in str(raised.value)
        assert EVENT in str(raised.value)
        assert SECRET_VALUE not in str(raised.value)
        assert raised.value.__cause__ is None
        good = {"event": EVENT, "distinct_id": "u-2", "properties": props()}
        with pytest.raises(EventContractError):
            track_many(session, [good, good])
        with pytest.raises(EventContractError, match="user profile"):
            update_profile(session, distinct_id="u-3", operation="$set", properties={"a": 1})
    assert row_count(engine) == 0


@pytest.mark.parametrize("bad", sorted(BAD_ROUTERS))
def test_a_bad_route_is_logged_without_values_when_not_strict(engine: Engine, bad: str) -> None:
    """Fire-and-forget: None returned, one log line naming the event, no property value."""
    set_router(BAD_ROUTERS[bad][0], destinations=["default", "us", "eu"])
    with capture_logs() as logged, Session(engine) as session, session.begin():
        assert track(session, event=EVENT, distinct_id="u-1", properties=props()) is None
        assert track_many(
            session, [{"event": EVENT, "distinct_id": "u-2", "properties": props()}]
        ) == [None]
        assert (
            update_group(
                session,
                group_key="organization_id",
                group_id=US_ORG,
                operation="$set",
                properties={"plan": SECRET_VALUE},
            )
            is None
        )
    assert row_count(engine) == 0
    assert len(logged) == 3
    assert all(entry["field"] == "destination" for entry in logged)
    assert logged[0]["event_name"] == EVENT
    assert SECRET_VALUE not in repr(logged)
    assert US_ORG not in repr(logged)


def test_a_route_outside_the_destinations_given_is_refused_even_if_plausible(
    engine: Engine,
) -> None:
    """'default' is refused when the host did not list it: never a silent default."""
    set_router(lambda route: "default", destinations=["us", "eu"])
    refusal = r"not a configured destination \(eu, us\)"
    with (
        Session(engine) as session,
        session.begin(),
        pytest.raises(EventContractError, match=refusal),
    ):
        track(session, event=EVENT, distinct_id="u-1", properties=props(), strict=True)
    assert row_count(engine) == 0


@pytest.mark.parametrize(
    ("router_fn", "names", "message"),
    [
        (by_organization, "eu", "must be a list of destination names, not str"),
        (by_organization, [], "at least one destination"),
        (by_organization, ["EU"], "destination name 'EU' must match"),
        (by_organization, ["eu", 3], "destination name int must match"),
        (by_organization, ["x" * 65], "must match"),
        ("eu", ["eu"], "the router must be callable, not str"),
    ],
)
def test_set_router_refuses_bad_arguments_and_keeps_the_previous_router(
    engine: Engine, router_fn: Any, names: Any, message: str
) -> None:
    """A bad registration raises ConfigurationError; the router in place stays."""
    with pytest.raises(ConfigurationError, match=message):
        set_router(router_fn, destinations=names)
    with Session(engine) as session, session.begin():
        track(session, event=EVENT, distinct_id="u-eu", properties=props(EU_ORG), strict=True)
    assert destinations(engine) == [("u-eu", "eu")]


def test_route_and_set_router_are_public() -> None:
    """relay exports Route and set_router."""
    assert "Route" in relay.__all__
    assert "set_router" in relay.__all__
    assert relay.set_router is set_router


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize("drivername", ["postgresql+psycopg", "sqlite+aiosqlite"])
async def test_asyncio_apis_store_the_routers_destination(
    request: pytest.FixtureRequest, drivername: str
) -> None:
    """atrack(), atrack_many(), aupdate_profile() and aupdate_group() route as track() does."""
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine  # noqa: PLC0415

    from relay._tables import metadata  # noqa: PLC0415

    fixture = "postgresql_url" if drivername.startswith("postgresql") else "sqlite_url"
    url = sa.make_url(request.getfixturevalue(fixture))
    sync_engine = sa.create_engine(url)
    metadata.drop_all(sync_engine)
    metadata.create_all(sync_engine)
    aengine = create_async_engine(url.set(drivername=drivername))
    if drivername.startswith("sqlite"):
        relay.configure_sqlite(aengine.sync_engine)
    try:
        async with AsyncSession(aengine) as session, session.begin():
            await relay.atrack(
                session, event=EVENT, distinct_id="a-eu", properties=props(EU_ORG), strict=True
            )
            await relay.atrack_many(
                session,
                [
                    {"event": EVENT, "distinct_id": "a-us", "properties": props(US_ORG)},
                    {"event": EVENT, "distinct_id": "a-eu2", "properties": props(EU_ORG)},
                ],
                strict=True,
            )
            await relay.aupdate_profile(
                session,
                distinct_id="a-p",
                operation="$set_once",
                properties={"organization_id": EU_ORG},
                strict=True,
            )
            await relay.aupdate_group(
                session,
                group_key="organization_id",
                group_id=US_ORG,
                operation="$unset",
                properties=["plan"],
                strict=True,
            )
            set_router(unknown, destinations=["default", "us", "eu"])
            with pytest.raises(EventContractError, match="'mars'"):
                await relay.atrack(
                    session, event=EVENT, distinct_id="a-x", properties=props(), strict=True
                )
        assert destinations(sync_engine) == [
            ("a-eu", "eu"),
            ("a-us", "us"),
            ("a-eu2", "eu"),
            ("a-p", "eu"),
            (US_ORG, "us"),
        ]
    finally:
        await aengine.dispose()
        metadata.drop_all(sync_engine)
        sync_engine.dispose()
