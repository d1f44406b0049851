"""Delivery per destination (data residency): a claim, a pause, a throttle and a refused secret
each concern one Mixpanel project, and never hold back or mix in another's rows."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from helpers.outbox import row_values
from sqlalchemy.engine import Engine

from relay import _store as store
from relay._config import RelaySettings
from relay._delivery.wiring import open_drainer
from relay._errors import ConfigurationError
from relay._store.lanes import claim_exclusion
from relay._store.pauses import list_pauses, set_pause
from relay._store.profiles import claim_profile_updates, profile_key
from relay._store.throttle import read_throttle, record_throttle, throttle_scope
from relay._tables import OutboxState, RowKind, outbox, pause
from relay.cli import main
from relay.testing.mixpanel_standin import MixpanelStandin

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
EVENT_TIME_MS = int((time.time() - 86_400) * 1000)


def _add(engine: Engine, destination: str, count: int, *, kind: RowKind = RowKind.EVENT) -> None:
    """``count`` due pending rows for ``destination`` (written with the column set directly)."""
    with store.transaction(engine) as conn:
        for n in range(count):
            values = row_values(
                at=NOW,
                time_ms=EVENT_TIME_MS,
                event="svc.test.thing_done" if kind is RowKind.EVENT else "$set",
                distinct_id=f"{destination}-user-{n}",
                properties={"organization_id": f"org-{destination}"},
                destination=destination,
            )
            if kind is not RowKind.EVENT:
                values["kind"] = kind.value
                values["profile_key"] = profile_key(kind, f"{destination}-user-{n}")
            store.insert_event(conn, values=values)


def _rows(engine: Engine) -> dict[str, list[tuple[str, int]]]:
    """(state, attempts) of every row, by destination, in id order."""
    found: dict[str, list[tuple[str, int]]] = {}
    with engine.connect() as conn:
        for destination, state, attempts in conn.execute(
            sa.select(outbox.c.destination, outbox.c.state, outbox.c.attempts).order_by(outbox.c.id)
        ):
            found.setdefault(destination, []).append((str(state), int(attempts)))
    return found


def _claim(engine: Engine, destination: str, *, limit: int = 100) -> store.Claim:
    with store.transaction(engine, write=True) as conn:
        return store.claim(conn, now=NOW, limit=limit, lease_seconds=60, destination=destination)


def _destinations_of(engine: Engine, ids: list[int]) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(sa.select(outbox.c.destination).where(outbox.c.id.in_(ids))).scalars()
        )


def test_a_claim_takes_only_its_destinations_rows(engine: Engine) -> None:
    """Each destination's claim leases its own rows and none of another's, default included."""
    _add(engine, "default", 3)
    _add(engine, "eu", 4)
    _add(engine, "us", 2)

    eu = _claim(engine, "eu")
    default = _claim(engine, "default")
    nothing = _claim(engine, "in")

    assert len(eu.events) == 4
    assert _destinations_of(engine, [e.id for e in eu.events]) == {"eu"}
    assert len(default.events) == 3
    assert _destinations_of(engine, [e.id for e in default.events]) == {"default"}
    assert nothing.events == []
    assert _claim(engine, "eu").events == []  # all leased
    assert len(_claim(engine, "us").events) == 2


def test_a_destination_pause_stops_only_that_destination(engine: Engine) -> None:
    """Scope "@eu" empties EU's claims (events and profile updates) and leaves US's alone."""
    _add(engine, "eu", 3)
    _add(engine, "us", 3)
    _add(engine, "eu", 2, kind=RowKind.USER)
    with store.transaction(engine, write=True) as conn:
        set_pause(
            conn, event=None, destination="eu", reason="EU project moving", actor="ops", now=NOW
        )

    with store.transaction(engine, write=True) as conn:
        assert claim_exclusion(conn, destination="eu").everything
        assert not claim_exclusion(conn, destination="us").everything
        assert claim_exclusion(conn, destination="us").events == ()
        profiles = claim_profile_updates(
            conn, now=NOW, limit=10, lease_seconds=60, destination="eu"
        )
    assert profiles.claim.events == []
    assert _claim(engine, "eu").events == []
    assert len(_claim(engine, "us").events) == 3
    assert _rows(engine)["eu"] == [("pending", 0)] * 5

    with store.transaction(engine, write=True) as conn:
        conn.execute(sa.delete(pause).where(pause.c.scope == "@eu"))
    assert len(_claim(engine, "eu").events) == 3


def test_an_event_pause_covers_every_destination(engine: Engine) -> None:
    """Pausing an event name holds its rows whatever their destination."""
    _add(engine, "eu", 2)
    _add(engine, "us", 2)
    with store.transaction(engine, write=True) as conn:
        set_pause(conn, event="svc.test.thing_done", reason="bad", actor="ops", now=NOW)
    assert _claim(engine, "eu").events == []
    assert _claim(engine, "us").events == []


def test_profile_updates_are_claimed_per_destination(engine: Engine) -> None:
    """A profile claim for one destination leases only that destination's updates."""
    _add(engine, "eu", 2, kind=RowKind.USER)
    _add(engine, "us", 3, kind=RowKind.USER)
    with store.transaction(engine, write=True) as conn:
        eu = claim_profile_updates(conn, now=NOW, limit=10, lease_seconds=60, destination="eu")
    assert len(eu.claim.events) == 2
    assert _destinations_of(engine, [e.id for e in eu.claim.events]) == {"eu"}
    assert not eu.more  # US's queued updates are not EU's


def test_each_destination_has_its_own_throttle_row(engine: Engine) -> None:
    """A 429 booked for EU is the row *throttle@eu: default's and US's throttles stay clear."""
    with store.transaction(engine, write=True) as conn:
        booked = record_throttle(conn, now=NOW, delay=lambda _: 10.0, actor="t", destination="eu")
        again = record_throttle(
            conn,
            now=NOW + dt.timedelta(seconds=20),
            delay=lambda _: 10.0,
            actor="t",
            destination="eu",
        )
    with engine.connect() as conn:
        scopes = set(conn.execute(sa.select(pause.c.scope)).scalars())
        assert scopes == {"*throttle@eu"}
        assert read_throttle(conn) is None
        assert read_throttle(conn, destination="us") is None
        eu = read_throttle(conn, destination="eu")
        assert list_pauses(conn) == []  # no operator's pause
        assert not claim_exclusion(conn, destination="us").everything
        assert claim_exclusion(conn, destination="eu").events == ()
    assert booked.level == 1
    assert eu == again
    assert eu is not None
    assert eu.level == 2
    assert throttle_scope("default") == "*throttle"
    assert throttle_scope("eu") == "*throttle@eu"


@pytest.fixture
def us() -> Iterator[MixpanelStandin]:
    """The US project's stand-in."""
    with MixpanelStandin(project_id="us-project", username="us-sa", secret="us-secret") as s:
        yield s


@pytest.fixture
def eu() -> Iterator[MixpanelStandin]:
    """The EU project's stand-in."""
    with MixpanelStandin(project_id="eu-project", username="eu-sa", secret="eu-secret") as s:
        yield s


def _settings(engine: Engine, us: MixpanelStandin, eu: MixpanelStandin) -> RelaySettings:
    """``us`` as the default destination (RELAY_MIXPANEL_*), ``eu`` as destination "eu"."""
    return RelaySettings(
        database_url=engine.url.render_as_string(hide_password=False),
        mixpanel_api_url=us.url,
        mixpanel_project_id=us.project_id,
        mixpanel_service_account_username=us.username,
        mixpanel_service_account_secret=us.secret,
        read_timeout_seconds=5.0,
        destinations={
            "eu": {
                "region": "eu",
                "api_url": eu.url,
                "project_id": eu.project_id,
                "service_account_username": eu.username,
                "service_account_secret": eu.secret,
            }
        },
    )


def _distinct_ids(standin: MixpanelStandin) -> set[str]:
    return {str(e.event["properties"]["distinct_id"]) for e in standin.ingested()}


def test_each_destinations_drainer_delivers_to_its_own_project_only(
    engine: Engine, us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """open_drainer(destination=...) sends that destination's rows with its own credentials."""
    _add(engine, "default", 3)
    _add(engine, "eu", 4)
    settings = _settings(engine, us, eu)

    with open_drainer(engine, settings, destination="eu", paced=False) as drainer:
        eu_result = drainer.drain_until_idle()
    with open_drainer(engine, settings, paced=False) as drainer:
        us_result = drainer.drain_until_idle()

    assert (eu_result.delivered, us_result.delivered) == (4, 3)
    assert _distinct_ids(eu) == {f"eu-user-{n}" for n in range(4)}
    assert _distinct_ids(us) == {f"default-user-{n}" for n in range(3)}
    assert _rows(engine) == {"default": [("delivered", 1)] * 3, "eu": [("delivered", 1)] * 4}


def test_an_unknown_destination_is_refused_before_anything_opens(
    engine: Engine, us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """open_drainer for a name that is not configured is a ConfigurationError naming it."""
    settings = _settings(engine, us, eu)
    with (
        pytest.raises(ConfigurationError, match="unknown destination 'in'"),
        open_drainer(engine, settings, destination="in"),
    ):
        pass


def test_a_refused_eu_secret_leaves_eu_rows_untouched_and_us_rows_delivered(
    engine: Engine, us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """EU's 401 stops only EU: its rows stay pending, attempts unchanged; US delivers all."""
    _add(engine, "eu", 5)
    _add(engine, "default", 5)
    settings = _settings(engine, us, eu)
    eu.secret = "rotated-in-mixpanel"  # the EU project no longer accepts the configured secret

    with (
        open_drainer(engine, settings, destination="eu") as eu_drainer,
        open_drainer(engine, settings) as us_drainer,
    ):
        refused = eu_drainer.drain_until_idle()
        delivered = us_drainer.drain_until_idle()

        assert refused.auth_failing
        assert (refused.delivered, refused.retried, refused.rejected) == (0, 0, 0)
        assert delivered.delivered == 5
        assert not delivered.auth_failing
        rows = _rows(engine)
        assert rows["eu"] == [("pending", 0)] * 5
        assert rows["default"] == [("delivered", 1)] * 5
        assert eu.stats().unique == 0
        assert _distinct_ids(us) == {f"default-user-{n}" for n in range(5)}

        eu.secret = "eu-secret"  # fixed: EU resumes where it stopped
        resumed = eu_drainer.drain_until_idle()
    assert resumed.delivered == 5
    assert _rows(engine)["eu"] == [("delivered", 1)] * 5
    assert _distinct_ids(eu) == {f"eu-user-{n}" for n in range(5)}
    assert not _distinct_ids(eu) & _distinct_ids(us)


def test_an_eu_429_throttles_only_eu(
    engine: Engine, us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """A 429 from the EU project books EU's throttle; US's drain is not slowed by it."""
    _add(engine, "eu", 3)
    _add(engine, "default", 3)
    settings = _settings(engine, us, eu)
    eu.set_outage(429, None)

    with (
        open_drainer(engine, settings, destination="eu", paced=False) as eu_drainer,
        open_drainer(engine, settings, paced=False) as us_drainer,
    ):
        throttled = eu_drainer.drain_once(now=NOW)
        delivered = us_drainer.drain_once(now=NOW)

    assert throttled.throttled == 3
    assert throttled.throttle_seconds > 0
    assert delivered.delivered == 3
    assert delivered.throttle_seconds == 0
    with engine.connect() as conn:
        assert read_throttle(conn) is None
        assert read_throttle(conn, destination="eu") is not None
    assert _rows(engine)["eu"] == [(OutboxState.PENDING.value, 0)] * 3


def _cli_env(
    monkeypatch: pytest.MonkeyPatch, us: MixpanelStandin, eu: MixpanelStandin, directory: Path
) -> CliRunner:
    """A CLI runner whose environment has ``us`` as default and ``eu`` as destination "eu"
    (its table in ``RELAY_DESTINATIONS_FILE``, its secret in the environment)."""
    for key in list(os.environ):
        if key.startswith("RELAY_"):
            monkeypatch.delenv(key)
    for key, value in us.settings_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RELAY_LOG_LEVEL", "WARNING")
    path = directory / "destinations.toml"
    path.write_text(
        "[destinations.eu]\n"
        'region = "eu"\n'
        f'api_url = "{eu.url}"\n'
        f'project_id = "{eu.project_id}"\n'
        f'service_account_username = "{eu.username}"\n'
    )
    monkeypatch.setenv("RELAY_DESTINATIONS_FILE", str(path))
    monkeypatch.setenv("RELAY_DESTINATION_EU_SERVICE_ACCOUNT_SECRET", eu.secret)
    return CliRunner()


@pytest.mark.usefixtures("restored_logging")
def test_relay_drain_drains_every_destination_and_reports_each(
    engine: Engine,
    db_url: str,
    us: MixpanelStandin,
    eu: MixpanelStandin,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """`relay drain` delivers each destination's rows to its project, one line each; EU's 401
    exits 3 naming EU after US was delivered; `--destination eu` then drains EU alone."""
    _add(engine, "default", 3)
    _add(engine, "eu", 2)
    runner = _cli_env(monkeypatch, us, eu, tmp_path)
    eu.secret = "rotated-in-mixpanel"

    refused = runner.invoke(main, ["--database-url", db_url, "drain"])

    assert refused.exit_code == 3, refused.output
    assert "default: delivered 3, dead 0" in refused.stdout
    assert "eu: delivered 0, dead 0" in refused.stdout
    assert "eu: HTTP 401" in refused.stderr
    assert _rows(engine) == {"default": [("delivered", 1)] * 3, "eu": [("pending", 0)] * 2}

    eu.secret = "eu-secret"
    _add(engine, "default", 1)
    only_eu = runner.invoke(
        main, ["--database-url", db_url, "drain", "--destination", "eu", "--json"]
    )

    assert only_eu.exit_code == 0, only_eu.output
    report = orjson.loads(only_eu.stdout.strip().splitlines()[-1])
    assert report["delivered"] == 2
    assert list(report["destinations"]) == ["eu"]
    assert _rows(engine)["eu"] == [("delivered", 1)] * 2
    assert _rows(engine)["default"][-1] == ("pending", 0)  # not drained by --destination eu
    assert _distinct_ids(eu) == {"eu-user-0", "eu-user-1"}

    unknown = runner.invoke(main, ["--database-url", db_url, "drain", "--destination", "in"])
    assert unknown.exit_code == 3
    assert "unknown destination 'in'" in unknown.stderr
