"""Operators per destination: pause scope, the --destination filters, and relay reroute."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from relay import (
    MixpanelSuperEventPropertiesSchema,
    Route,
    SystemRole,
    register_event,
    set_router,
    track,
    update_group,
    update_profile,
)
from relay._store.profiles import profile_key
from relay._tables import RowKind, audit, outbox, pause
from relay.cli import main

EVENT = "svc.tests.widget_moved"
MOVING = "org-moving"  # routed to us, moves to eu
STAYING = "org-staying"  # routed to us, stays
EUROPEAN = "org-european"  # routed to eu
DESTINATIONS = {"us": {"region": "us"}, "eu": {"region": "eu"}}
REGION = {MOVING: "us", STAYING: "us", EUROPEAN: "eu"}


class WidgetMovedSchema(MixpanelSuperEventPropertiesSchema):
    """Test event: a widget moved."""

    widget_id: str


register_event(EVENT, WidgetMovedSchema)


def props(org: str) -> dict[str, Any]:
    return {
        "employee_id": "emp-1",
        "organization_id": org,
        "organization_name": "Acme",
        "role": SystemRole.MANAGER,
        "impersonation": False,
        "widget_id": "w-1",
    }


def by_region(route: Route) -> str:
    return REGION.get(route.organization_id or "", "default")


@pytest.fixture(autouse=True)
def router() -> Iterator[None]:
    set_router(by_region, destinations=["default", "us", "eu"])
    yield
    set_router(None, destinations=["default"])


def relay_cli(engine: Engine, *args: str) -> Result:
    url = engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(
        main,
        ["--database-url", url, *args],
        obj={"destinations": DESTINATIONS},
        catch_exceptions=False,
    )


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


def seed(engine: Engine) -> None:
    """Per organization: 3 events (one to be delivered, one dead, one pending), a user $set
    naming the organization, and a group update; plus a user update naming none."""
    with Session(engine) as session, session.begin():
        for org in (MOVING, STAYING, EUROPEAN):
            for n in range(3):
                track(
                    session,
                    event=EVENT,
                    distinct_id=f"{org}-e{n}",
                    properties=props(org),
                    strict=True,
                )
            update_profile(
                session,
                distinct_id=f"{org}-user",
                operation="$set",
                properties={"organization_id": org},
                strict=True,
            )
            update_group(
                session,
                group_key="organization_id",
                group_id=org,
                operation="$set",
                properties={"plan": "pro"},
                strict=True,
            )
        update_profile(
            session, distinct_id="nobody", operation="$set", properties={"a": 1}, strict=True
        )
    now = dt.datetime.now(dt.UTC)
    old = now - dt.timedelta(days=2)
    with engine.begin() as conn:
        for org in (MOVING, STAYING, EUROPEAN):
            conn.execute(
                sa.update(outbox)
                .where(outbox.c.distinct_id == f"{org}-e0")
                .values(state="delivered", finished_at=old)
            )
            conn.execute(
                sa.update(outbox)
                .where(outbox.c.distinct_id == f"{org}-e1")
                .values(state="dead", finished_at=old, last_error="refused")
            )


def snapshot(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(
                    outbox.c.id,
                    outbox.c.distinct_id,
                    outbox.c.state,
                    outbox.c.destination,
                    outbox.c.profile_key,
                    outbox.c.attempts,
                ).order_by(outbox.c.id)
            )
        ]


def audits(engine: Engine) -> list[sa.Row[Any]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(audit).order_by(audit.c.id)))


def where_is(engine: Engine) -> dict[str, tuple[str, str]]:
    return {d: (state, dest) for _, d, state, dest, _, _ in snapshot(engine)}


# --- pause per destination -------------------------------------------------------------------


def test_pause_destination_writes_its_scope_and_is_listed_and_audited(engine: Engine) -> None:
    """relay pause --destination eu: scope '@eu', in stats, audited; resume lifts it alone."""
    assert relay_cli(engine, "pause", "--reason", "everything").exit_code == 0
    done = as_json(
        relay_cli(engine, "pause", "--destination", "eu", "--reason", "eu outage", "--json")
    )
    assert done["changed"] is True
    assert done["destination"] == "eu"
    with engine.connect() as conn:
        assert set(conn.execute(sa.select(pause.c.scope)).scalars()) == {"*", "@eu"}
    paused = as_json(relay_cli(engine, "stats", "--json"))["paused"]
    assert [(p["event"], p["destination"]) for p in paused] == [(None, None), (None, "eu")]
    text = relay_cli(engine, "stats").stdout
    assert "destination eu" in text
    assert relay_cli(engine, "resume", "--destination", "eu").exit_code == 0
    with engine.connect() as conn:
        assert set(conn.execute(sa.select(pause.c.scope)).scalars()) == {"*"}
    entries = [(e.action, e.filter) for e in audits(engine)]
    assert entries[1:] == [("pause", {"destination": "eu"}), ("resume", {"destination": "eu"})]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["pause", "--destination", "mars", "--reason", "x"], "unknown destination 'mars'"),
        (["pause", "--destination", "EU", "--reason", "x"], "not a destination name"),
        (
            ["pause", "--destination", "eu", "--event", EVENT, "--reason", "x"],
            "exclude each other",
        ),
    ],
)
def test_bad_destination_pause_exits_2_and_writes_nothing(
    engine: Engine, args: list[str], named: str
) -> None:
    """An unknown or malformed destination is one line, exit 2, no pause, no audit."""
    result = relay_cli(engine, *args)
    assert result.exit_code == 2
    assert named in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(pause)).scalar_one() == 0
    assert audits(engine) == []


# --- filters ---------------------------------------------------------------------------------


def test_stats_per_destination_and_the_breakdown(engine: Engine) -> None:
    """stats --destination counts only that destination; the breakdown lists each one."""
    seed(engine)
    eu = as_json(relay_cli(engine, "stats", "--destination", "eu", "--json"))
    # eu: european's pending event, user and group updates; one dead
    assert (eu["destination"], eu["pending"], eu["dead"]) == ("eu", 3, 1)
    assert eu["by_destination"] == []
    everything = as_json(relay_cli(engine, "stats", "--json"))
    per = {d["destination"]: (d["pending"], d["dead"]) for d in everything["by_destination"]}
    assert per == {"us": (6, 2), "eu": (3, 1), "default": (1, 0)}
    assert everything["pending"] == 10
    assert "by destination" in relay_cli(engine, "stats").stdout


def test_filters_select_exactly_their_destination(engine: Engine) -> None:
    """export, replay, dead-letters and purge with --destination see that destination only."""
    seed(engine)
    exported = relay_cli(engine, "export", "--destination", "eu").stdout.splitlines()
    assert sorted(orjson.loads(line)["properties"]["distinct_id"] for line in exported) == [
        f"{EUROPEAN}-e{n}" for n in range(3)
    ]
    preview = as_json(relay_cli(engine, "replay", "--destination", "us", "--json"))
    assert preview["count"] == 10  # 6 events, 4 profile updates of the two us organizations
    groups = as_json(relay_cli(engine, "dead-letters", "list", "--destination", "eu", "--json"))
    assert [(g["reason"], g["count"]) for g in groups] == [("refused", 1)]
    requeued = as_json(
        relay_cli(engine, "dead-letters", "requeue", "--destination", "eu", "--yes", "--json")
    )
    assert requeued["requeued"] == 1
    assert where_is(engine)[f"{EUROPEAN}-e1"] == ("pending", "eu")
    assert where_is(engine)[f"{MOVING}-e1"] == ("dead", "us")
    purged = as_json(
        relay_cli(
            engine,
            "purge",
            "--destination",
            "us",
            "--delivered-older-than",
            "1d",
            "--json",
        )
    )
    assert purged["delivered"] == 2
    remaining = where_is(engine)
    assert f"{MOVING}-e0" not in remaining
    assert f"{STAYING}-e0" not in remaining
    assert remaining[f"{EUROPEAN}-e0"] == ("delivered", "eu")
    assert audits(engine)[-1].filter["destination"] == "us"


def test_a_malformed_destination_filter_exits_2(engine: Engine) -> None:
    """--destination takes a destination's name only: one line, exit 2."""
    result = relay_cli(engine, "replay", "--destination", "Bad Name")
    assert result.exit_code == 2
    assert "not a destination name" in result.stderr


# --- --organization ---------------------------------------------------------------------------


def test_export_with_organization_writes_only_that_organizations_events(engine: Engine) -> None:
    """export --organization (repeatable, with a --created-after bound as the guide advises)
    writes the events of those organizations only, in every state, whatever their destination."""
    seed(engine)
    exported = relay_cli(
        engine,
        "export",
        "--organization",
        MOVING,
        "--organization",
        EUROPEAN,
        "--created-after",
        "1d",
    ).stdout.splitlines()
    assert sorted(orjson.loads(line)["properties"]["distinct_id"] for line in exported) == [
        f"{org}-e{n}" for org in (EUROPEAN, MOVING) for n in range(3)
    ]


def test_replay_with_organization_selects_only_that_organizations_rows(engine: Engine) -> None:
    """replay --organization: the dry run counts the organization's events and profile updates
    (as reroute knows them) and nothing else; --yes replays only its dead event, audited."""
    seed(engine)
    preview = as_json(relay_cli(engine, "replay", "--organization", STAYING, "--json"))
    assert (preview["count"], preview["events"], preview["profile_updates"]) == (5, 3, 2)
    assert {r["distinct_id"] for r in preview["sample"]} == {
        *(f"{STAYING}-e{n}" for n in range(3)),
        f"{STAYING}-user",
        STAYING,
    }
    before = where_is(engine)
    done = as_json(
        relay_cli(engine, "replay", "--organization", STAYING, "--state", "dead", "--yes", "--json")
    )
    assert done["replayed"] == 1
    after = where_is(engine)
    assert after[f"{STAYING}-e1"] == ("pending", "us")
    assert {k: v for k, v in after.items() if k != f"{STAYING}-e1"} == {
        k: v for k, v in before.items() if k != f"{STAYING}-e1"
    }
    assert audits(engine)[-1].filter["organizations"] == [STAYING]


def test_dead_letters_requeue_and_discard_with_organization_touch_only_its_rows(
    engine: Engine,
) -> None:
    """dead-letters requeue --organization revives that organization's dead letters only;
    discard --organization deletes only its own."""
    seed(engine)
    requeued = as_json(
        relay_cli(engine, "dead-letters", "requeue", "--organization", MOVING, "--yes", "--json")
    )
    assert requeued["requeued"] == 1
    assert where_is(engine)[f"{MOVING}-e1"] == ("pending", "us")
    assert where_is(engine)[f"{STAYING}-e1"] == ("dead", "us")
    assert where_is(engine)[f"{EUROPEAN}-e1"] == ("dead", "eu")

    discarded = as_json(
        relay_cli(
            engine,
            "dead-letters",
            "discard",
            "--organization",
            EUROPEAN,
            "--reason",
            "ticket OPS-7",
            "--yes",
            "--json",
        )
    )
    assert discarded["discarded"] == 1
    remaining = where_is(engine)
    assert f"{EUROPEAN}-e1" not in remaining
    assert remaining[f"{STAYING}-e1"] == ("dead", "us")
    assert [e.filter.get("organizations") for e in audits(engine)] == [[MOVING], [EUROPEAN]]


@pytest.mark.parametrize(
    "command", [["replay", "--yes"], ["export"], ["dead-letters", "requeue", "--yes"]]
)
def test_an_empty_organization_filter_exits_2_and_changes_nothing(
    engine: Engine, command: list[str]
) -> None:
    """--organization takes an organization's id: a blank one is refused, exit 2."""
    seed(engine)
    before = snapshot(engine)
    result = relay_cli(engine, *command, "--organization", " ")
    assert result.exit_code == 2
    assert "--organization must not be empty" in result.stderr
    assert snapshot(engine) == before
    assert audits(engine) == []


# --- reroute ---------------------------------------------------------------------------------


def test_reroute_dry_run_counts_by_kind_state_and_origin_and_changes_nothing(
    engine: Engine,
) -> None:
    """Without --yes: the counts, nothing changed, nothing audited."""
    seed(engine)
    before = snapshot(engine)
    p = as_json(relay_cli(engine, "reroute", "--organization", MOVING, "--to", "eu", "--json"))
    assert p["dry_run"] is True
    assert p["count"] == 4
    assert sorted(
        (g["kind"], g["state"], g["from_destination"], g["count"]) for g in p["breakdown"]
    ) == [
        ("event", "dead", "us", 1),
        ("event", "pending", "us", 1),
        ("group", "pending", "us", 1),
        ("user", "pending", "us", 1),
    ]
    text = relay_cli(engine, "reroute", "--organization", MOVING, "--to", "eu").stdout
    assert "would move to eu" in text
    assert snapshot(engine) == before
    assert audits(engine) == []


def test_reroute_moves_exactly_the_organizations_undelivered_rows_and_is_audited(
    engine: Engine,
) -> None:
    """--yes moves pending and dead rows of the organization, new profile keys; nothing else."""
    seed(engine)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:  # a relay is sending the moving organization's user update
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.distinct_id == f"{MOVING}-user")
            .values(lease_token="t" * 32, lease_expires_at=now + dt.timedelta(minutes=5))
        )
    before = {row[1]: row for row in snapshot(engine)}
    done = as_json(
        relay_cli(
            engine,
            "reroute",
            "--organization",
            MOVING,
            "--to",
            "eu",
            "--yes",
            "--actor",
            "ops",
            "--json",
        )
    )
    assert (done["moved"], done["skipped"]) == (3, 1)
    after = {row[1]: row for row in snapshot(engine)}
    moved = {f"{MOVING}-e1", f"{MOVING}-e2", MOVING}
    for distinct_id, row in after.items():
        old = before[distinct_id]
        if distinct_id in moved:
            assert row[3] == "eu", distinct_id
            assert row[2] == old[2]  # state kept: dead stays dead, pending stays pending
        else:
            assert row == old, distinct_id  # delivered, leased, other organizations: untouched
    assert after[MOVING][4] == profile_key(
        RowKind.GROUP, "organization_id", MOVING, destination="eu"
    )
    assert after[f"{MOVING}-e0"][2:4] == ("delivered", "us")
    (entry,) = audits(engine)
    assert (entry.action, entry.actor, entry.count) == ("reroute", "ops", 3)
    assert entry.filter["organizations"] == [MOVING]
    assert entry.filter["not_destinations"] == ["eu"]
    again = as_json(relay_cli(engine, "reroute", "--organization", MOVING, "--to", "eu", "--json"))
    assert again["count"] == 1  # only the leased row is left to move
    assert again["leased"] == 1


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--organization", MOVING, "--to", "mars"], "--to: unknown destination 'mars'"),
        (["--organization", MOVING, "--to", "Mars"], "--to: 'Mars' is not a destination name"),
        (["--organization", " ", "--to", "eu"], "--organization must not be empty"),
    ],
)
def test_reroute_bad_input_exits_2_and_changes_nothing(
    engine: Engine, args: list[str], named: str
) -> None:
    """An unconfigured destination or an empty organization: one line, exit 2, no change."""
    seed(engine)
    before = snapshot(engine)
    result = relay_cli(engine, "reroute", *args, "--yes")
    assert result.exit_code == 2
    assert named in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(engine) == before
    assert audits(engine) == []


def test_inspect_and_dry_run_samples_show_the_destination(engine: Engine) -> None:
    """relay inspect --json and a dry run's sample name each row's destination."""
    seed(engine)
    with engine.connect() as conn:
        row_id = conn.execute(
            sa.select(outbox.c.id).where(outbox.c.distinct_id == f"{EUROPEAN}-e2")
        ).scalar_one()
    detail = as_json(relay_cli(engine, "inspect", str(row_id), "--json"))
    assert detail["destination"] == "eu"
    sample = as_json(relay_cli(engine, "replay", "--destination", "eu", "--json"))["sample"]
    assert {r["destination"] for r in sample} == {"eu"}
