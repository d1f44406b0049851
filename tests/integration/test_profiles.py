"""Profile updates through the outbox: written in the caller's transaction, sent to /engage
and /groups against the stand-in over loopback HTTP, in outbox order per profile."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from helpers.standin import standin_settings
from hr_catalog import OrganizationProfileHelper, StaticEmployeeDirectory
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import relay
from relay._config import RelaySettings
from relay._delivery.drain import Drainer, DrainResult
from relay._errors import ConfigurationError
from relay._mixpanel.client import MixpanelImportClient
from relay._mixpanel.profiles import require_profile_token
from relay._tables import OutboxState, RowKind, outbox
from relay.cli import main
from relay.testing.mixpanel_standin import MixpanelStandin
from relay.testing.plugin import EagerDrain, OutboxCapture

ORG = "organization_id"


@pytest.fixture
def settings(engine: Engine, standin: MixpanelStandin) -> RelaySettings:
    """Settings pointing at the test database and the stand-in, with the project token."""
    return standin_settings(standin, engine, mixpanel_project_token=standin.project_token)


@pytest.fixture
def drainer(engine: Engine, settings: RelaySettings) -> Iterator[Drainer]:
    """A drainer on the test database and the stand-in (acks stamped at the tick's now)."""
    with MixpanelImportClient(settings) as client:
        made = Drainer(engine, client, settings, rng=random.Random(1), monotonic=lambda: 0.0)
        yield made
        made.close()


def _write(engine: Engine, writer: Callable[[Session], object], *, commit: bool = True) -> None:
    with Session(engine) as session:
        writer(session)
        if commit:
            session.commit()
        else:
            session.rollback()


def _set(distinct_id: str, **properties: Any) -> Callable[[Session], object]:
    return lambda s: relay.update_profile(
        s, distinct_id=distinct_id, operation="$set", properties=properties, strict=True
    )


def _drain(drainer: Drainer, at: dt.datetime | None = None) -> DrainResult:
    when = at or dt.datetime.now(dt.UTC)
    return drainer.drain_until_idle(clock=lambda: when)


def _user(standin: MixpanelStandin, distinct_id: str) -> dict[str, Any] | None:
    return standin.profiles().get(("user", "", distinct_id))


def _states(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.kind, outbox.c.state).order_by(outbox.c.id))
        return [(str(k), str(s)) for k, s in rows]


def test_committed_update_is_applied_and_rolled_back_one_never(
    engine: Engine, standin: MixpanelStandin, drainer: Drainer
) -> None:
    """A committed $set reaches /engage with the token and $ip 0; a rolled-back one never does,
    and no profile update is ever sent to /import."""
    _write(engine, _set("u-1", plan="pro"))
    _write(engine, _set("u-2", plan="free"), commit=False)
    result = _drain(drainer)
    assert result.delivered == 1
    assert _user(standin, "u-1") == {"plan": "pro"}
    assert _user(standin, "u-2") is None
    assert standin.accepted_events() == []
    assert _states(engine) == [("user", "delivered")]
    (request,) = standin.profile_requests()
    assert (request.path, request.status, request.applied) == ("/engage", 200, 1)


def test_group_updates_go_to_groups_in_order_and_union_resent_applies_once(
    engine: Engine, standin: MixpanelStandin, drainer: Drainer
) -> None:
    """Three group updates in three transactions end at the last $set; a $union re-sent
    (its ack lost: the row pending again) leaves the list as one send left it."""
    for name in ("Acme", "Acme Ltd", "Acme Group"):
        _write(
            engine,
            lambda s, n=name: relay.update_group(
                s,
                group_key=ORG,
                group_id="org-1",
                operation="$set",
                properties={"organization_name": n},
                strict=True,
            ),
        )
    _write(
        engine,
        lambda s: relay.update_group(
            s,
            group_key=ORG,
            group_id="org-1",
            operation="$union",
            properties={"plans": ["pro"]},
            strict=True,
        ),
    )
    _drain(drainer)
    expected = {"organization_name": "Acme Group", "plans": ["pro"]}
    assert standin.profiles()[("group", ORG, "org-1")] == expected
    # Every request carried one update of this group: order within a request never matters.
    assert [r.applied for r in standin.profile_requests()] == [1, 1, 1, 1]
    with engine.begin() as conn:
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.event == "$union")
            .values(
                state=OutboxState.PENDING.value,
                next_attempt_at=dt.datetime.now(dt.UTC),
                finished_at=None,
            )
        )
    assert _drain(drainer).delivered == 1
    assert standin.profiles()[("group", ORG, "org-1")] == expected


def test_three_sets_end_at_the_last_value_through_failures_and_retries(
    engine: Engine, standin: MixpanelStandin, drainer: Drainer
) -> None:
    """While the first $set waits for its retry, the later ones of the same profile are not
    sent (another profile's update goes on); once it is delivered they follow in order."""
    for value in ("v1", "v2", "v3"):
        _write(engine, _set("u-1", plan=value))
    _write(engine, _set("u-9", plan="other"))
    standin.fail_next(503)
    first = _drain(drainer)
    assert first.retried == 2  # u-1's head and u-9's update shared the failed request
    assert _user(standin, "u-1") is None
    # Due again only later: at NOW nothing of u-1 may be sent, not even v2.
    assert _drain(drainer).claimed == 0
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    standin.fail_next(500)
    _drain(drainer, later)
    assert _user(standin, "u-1") is None
    _drain(drainer, later + dt.timedelta(hours=1))
    assert _user(standin, "u-1") == {"plan": "v3"}
    assert _user(standin, "u-9") == {"plan": "other"}
    assert [s for _, s in _states(engine)] == ["delivered"] * 4


def test_a_record_mixpanel_refuses_is_dead_lettered_alone(
    engine: Engine, standin: MixpanelStandin, drainer: Drainer
) -> None:
    """A 400 naming one record of the request dead-letters that update only; the other
    profile's update is delivered, and the refused profile's next update then goes out."""
    _write(engine, _set("u-1", plan="a"))
    _write(engine, _set("u-2", plan="b"))
    _write(engine, _set("u-2", plan="c"))
    standin.fail_next(
        400,
        body={
            "code": 400,
            "error": "some data points in the request failed validation",
            "num_records_imported": 1,
            "status": "Bad Request",
            "failed_records": [{"index": 1, "field": "$set", "message": "refused"}],
        },
    )
    result = _drain(drainer)
    assert result.rejected == 1
    assert _states(engine) == [("user", "delivered"), ("user", "dead"), ("user", "delivered")]
    assert _user(standin, "u-2") == {"plan": "c"}


def test_no_project_token_with_updates_waiting_is_a_configuration_error(
    engine: Engine, settings: RelaySettings
) -> None:
    """At start, pending profile updates without RELAY_MIXPANEL_PROJECT_TOKEN are refused
    with a message naming the setting; with none waiting, no token is needed."""
    no_token = settings.model_copy(update={"mixpanel_project_token": None})
    require_profile_token(engine, no_token)
    _write(engine, _set("u-1", plan="a"))
    with pytest.raises(ConfigurationError, match="RELAY_MIXPANEL_PROJECT_TOKEN"):
        require_profile_token(engine, no_token)
    require_profile_token(engine, settings)


def test_refused_updates_write_nothing(engine: Engine) -> None:
    """$add, $append, personal data in names or values, an unknown operation: strict raises
    naming the problem, fire-and-forget returns None; the outbox stays empty."""
    cases: list[dict[str, Any]] = [
        {"operation": "$add", "properties": {"logins": 1}},
        {"operation": "$append", "properties": {"tags": "x"}},
        {"operation": "$set", "properties": {"$email": "x"}},
        {"operation": "$set", "properties": {"$name": "x"}},
        {"operation": "$set", "properties": {"contact": "someone@example.com"}},
        {"operation": "$set", "properties": {"$ip": "1.2.3.4"}},
        {"operation": "$increment", "properties": {"a": 1}},
        {"operation": "$unset", "properties": []},
        {"operation": "$union", "properties": {"plans": "pro"}},
        {"operation": "$delete", "properties": {"a": 1}},
    ]
    with Session(engine) as session:
        for case in cases:
            with pytest.raises(relay.ProfileUpdateError) as caught:
                relay.update_profile(session, distinct_id="u-1", strict=True, **case)
            assert "someone@example.com" not in str(caught.value)
            assert relay.update_profile(session, distinct_id="u-1", strict=False, **case) is None
        with pytest.raises(relay.ProfileUpdateError, match=r"\$add is refused"):
            relay.update_profile(
                session, distinct_id="u-1", operation="$add", properties={"n": 1}, strict=True
            )
        session.commit()
    assert _states(engine) == []


def test_unset_remove_delete_apply_as_mixpanel_applies_them(
    engine: Engine, standin: MixpanelStandin, drainer: Drainer
) -> None:
    """$set_once, $union, $remove, $unset and $delete are stored and sent in Mixpanel's shapes."""
    steps: list[tuple[str, Any]] = [
        ("$set", {"plan": "pro", "seats": 3}),
        ("$set_once", {"plan": "free", "first_seen": "2026-01-01"}),
        ("$union", {"roles": ["admin", "owner"]}),
        ("$remove", {"roles": "owner"}),
        ("$unset", ["seats"]),
    ]
    for operation, properties in steps:
        _write(
            engine,
            lambda s, o=operation, p=properties: relay.update_profile(
                s, distinct_id="u-1", operation=o, properties=p, strict=True
            ),
        )
    _drain(drainer)
    assert _user(standin, "u-1") == {"plan": "pro", "first_seen": "2026-01-01", "roles": ["admin"]}
    _write(
        engine,
        lambda s: relay.update_profile(
            s, distinct_id="u-1", operation="$delete", properties=None, strict=True
        ),
    )
    _drain(drainer)
    assert _user(standin, "u-1") is None
    assert {k for k, _ in _states(engine)} == {RowKind.USER.value}


def _cli(engine: Engine, *args: str) -> Result:
    url = engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(main, ["--database-url", url, *args], catch_exceptions=False)


def test_dead_profile_update_is_requeued_and_export_leaves_profiles_out(
    engine: Engine, standin: MixpanelStandin, drainer: Drainer
) -> None:
    """A dead-lettered update shows in dead letters, `relay dead-letters requeue --id` sends it
    again; `relay export --all` writes /import events only, never a profile update; `relay
    inspect` shows the stored update and says it is not an /import event."""
    _write(engine, _set("u-1", plan="a"))
    standin.fail_next(200, body={"status": 0, "error": "refused whole"})
    assert _drain(drainer).rejected == 1
    with engine.connect() as conn:
        (row_id,) = conn.execute(sa.select(outbox.c.id)).scalars()
    listed = _cli(engine, "dead-letters", "list", "--json")
    assert listed.exit_code == 0
    assert "refused whole" in listed.output
    requeued = _cli(engine, "dead-letters", "requeue", "--id", str(row_id), "--yes")
    assert requeued.exit_code == 0, requeued.output
    assert _drain(drainer).delivered == 1
    assert _user(standin, "u-1") == {"plan": "a"}
    exported = _cli(engine, "export", "--all")
    assert exported.exit_code == 0, exported.output
    assert exported.output == ""
    inspected = _cli(engine, "inspect", f"id:{row_id}", "--json")
    assert inspected.exit_code == 0, inspected.output
    assert "a profile update ($set)" in inspected.output
    assert '"$distinct_id"' in inspected.output


def test_catalog_keeps_the_organization_group_profile_in_step(
    engine: Engine, standin: MixpanelStandin, drainer: Drainer
) -> None:
    """OrganizationProfileHelper sets the organization_id group's organization_name from the
    directory, follows a rename in order, writes nothing for an unknown organization, and
    deletes the profile on request."""
    for name in ("Acme", "Acme Renamed"):
        directory = StaticEmployeeDirectory({}, organizations={"org-1": name})
        _write(
            engine,
            lambda s, d=directory: OrganizationProfileHelper.sync_organization(
                s, organization_id="org-1", directory=d, strict=True
            ),
        )
    with Session(engine) as session:
        unknown = OrganizationProfileHelper.sync_organization(
            session, organization_id="org-404", directory=StaticEmployeeDirectory({})
        )
        session.commit()
    assert unknown is None
    _drain(drainer)
    assert standin.profiles() == {
        ("group", "organization_id", "org-1"): {"organization_name": "Acme Renamed"}
    }
    _write(
        engine,
        lambda s: OrganizationProfileHelper.delete_organization(
            s, organization_id="org-1", strict=True
        ),
    )
    _drain(drainer)
    assert standin.profiles() == {}


def test_a_wrong_project_token_pauses_delivery_instead_of_dead_lettering(
    engine: Engine, standin: MixpanelStandin, settings: RelaySettings
) -> None:
    """Mixpanel refusing every update's $token is a configuration error: the updates go back
    unsent (attempt returned) with an auth error naming the setting, none is dead-lettered."""
    _write(engine, _set("u-1", plan="a"))
    wrong = settings.model_copy(update={"mixpanel_project_token": SecretStr("not-the-token")})
    with MixpanelImportClient(wrong) as client:
        drainer = Drainer(engine, client, wrong, monotonic=lambda: 0.0)
        result = _drain(drainer)
        drainer.close()
    assert result.released == 1
    assert result.auth_error is not None
    assert "RELAY_MIXPANEL_PROJECT_TOKEN" in result.auth_error
    with engine.connect() as conn:
        state, attempts = conn.execute(sa.select(outbox.c.state, outbox.c.attempts)).one()
    assert (state, attempts) == ("pending", 0)


def test_the_test_plugin_drains_profiles_and_captures_events_only(
    engine: Engine, standin: MixpanelStandin
) -> None:
    """The plugin's `relay_drain` delivers profile updates to the stand-in too, and its
    `relay_outbox.events()` lists events only, never a profile update."""
    _write(engine, _set("u-1", plan="pro"))
    assert OutboxCapture().events(engine) == []
    assert EagerDrain(standin)(engine).delivered == 1
    assert _user(standin, "u-1") == {"plan": "pro"}
