"""``relay forget --mixpanel`` with several destinations (data residency, issue 24).

Two Mixpanel stand-ins play a US and an EU project, each with its own tokens. The deletion is
filed with every destination (relay cannot know where delivered, since-purged rows went) and
each one's outcome is one line; a destination that refuses or does not answer is reported
and the exit code says so, while the others are still filed.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from relay import _store as store
from relay._config import RelaySettings
from relay._errors import ConfigurationError
from relay._mixpanel.gdpr import PACING
from relay._tables import audit, outbox
from relay.admin.forget import forget
from relay.cli import main
from relay.testing.mixpanel_standin import MixpanelStandin

PERSON = "person-resident-4b2e"
OTHER = "person-untouched"
KEY = "erasure-destinations-key"
RELAY_TOKEN = "r" * 32


@pytest.fixture
def us() -> Iterator[MixpanelStandin]:
    """The US project's stand-in."""
    with MixpanelStandin(project_token="us-token", oauth_token="us-oauth") as server:
        yield server


@pytest.fixture
def eu() -> Iterator[MixpanelStandin]:
    """The EU project's stand-in, with tokens of its own."""
    with MixpanelStandin(project_token="eu-token", oauth_token="eu-oauth") as server:
        yield server


def _destination(standin: MixpanelStandin, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "app_api_url": standin.app_api_url,
        "project_token": standin.project_token,
        "gdpr_token": standin.oauth_token,
    }
    values.update(overrides)
    return values


def _given(us: dict[str, Any], eu: dict[str, Any]) -> dict[str, Any]:
    """Host-given settings (as Django hands them over): two destinations, no default project."""
    return {"erasure_hash_key": KEY, "destinations": {"us": us, "eu": eu}}


def _event(destination: str, distinct_id: str = PERSON, state: str = "pending") -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {
        "insert_id": str(uuid.uuid4()),
        "event": "svc.test.thing_done",
        "distinct_id": distinct_id,
        "time_ms": int((time.time() - 60) * 1000),
        "properties": {"organization_id": f"org-{destination}"},
        "state": state,
        "destination": destination,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def _seed(engine: Engine) -> None:
    """The person has rows bound for both projects (a customer who moved region), and a
    delivered one in the US; someone else has a row too."""
    with store.transaction(engine) as conn:
        store.insert_event(conn, values=_event("us"))
        store.insert_event(conn, values=_event("us", state="delivered"))
        store.insert_event(conn, values=_event("eu"))
        store.insert_event(conn, values=_event("eu", distinct_id=OTHER))


def _rows(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        query = sa.select(outbox.c.distinct_id, outbox.c.destination).order_by(outbox.c.id)
        return [(str(d), str(n)) for d, n in conn.execute(query)]


def _forget_detail(engine: Engine) -> str:
    with engine.connect() as conn:
        query = sa.select(audit.c.detail).where(audit.c.action == "forget")
        return str(conn.execute(query).scalar_one())


def _forget(engine: Engine, given: dict[str, Any], *args: str) -> Result:
    url = engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(
        main,
        ["--database-url", url, "forget", "--distinct-id", PERSON, "--yes", "--mixpanel", *args],
        obj=given,
        catch_exceptions=False,
    )


def _deleted_ids(standin: MixpanelStandin) -> list[tuple[str, ...]]:
    return [job.distinct_ids for job in standin.gdpr_jobs() if job.kind == "deletion"]


def test_the_deletion_is_filed_with_every_destination_and_each_is_reported(
    sqlite_engine: Engine, us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """Each project receives one GDPR deletion of the person, with its own tokens; one line per
    destination names its task id; the audit entry keeps both task ids, never the id."""
    _seed(sqlite_engine)
    result = _forget(sqlite_engine, _given(_destination(us), _destination(eu)))
    assert result.exit_code == 0, result.output
    assert _deleted_ids(us) == [(PERSON,)]
    assert _deleted_ids(eu) == [(PERSON,)]
    (us_job,), (eu_job,) = us.gdpr_jobs(), eu.gdpr_jobs()
    lines = result.output.splitlines()
    assert f"destination us: Mixpanel GDPR deletion task: {us_job.task_id}" in lines
    assert f"destination eu: Mixpanel GDPR deletion task: {eu_job.task_id}" in lines
    assert "destination default: skipped: no Mixpanel project configured" in lines
    assert PERSON not in result.output
    assert _rows(sqlite_engine) == [(OTHER, "eu")]
    detail = _forget_detail(sqlite_engine)
    assert f"task {us_job.task_id} (us)" in detail
    assert f"task {eu_job.task_id} (eu)" in detail
    assert PERSON not in detail


def test_a_destination_refusing_its_token_is_reported_and_the_other_still_filed(
    sqlite_engine: Engine, us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """The EU project refuses its GDPR token (401): its line says refused and names the EU
    settings, the US deletion is filed, the rows are erased (left, a relay would deliver them
    to the US after its deletion) and the exit code is 3, as for any refused credential."""
    _seed(sqlite_engine)
    given = _given(_destination(us), _destination(eu, gdpr_token="stale-eu-oauth"))
    result = _forget(sqlite_engine, given)
    assert result.exit_code == 3, result.output
    assert _deleted_ids(us) == [(PERSON,)]
    assert eu.gdpr_jobs() == []
    (line,) = [x for x in result.output.splitlines() if x.startswith("destination eu:")]
    assert line.startswith("destination eu: refused: ")
    assert "HTTP 401" in line
    assert "RELAY_DESTINATION_EU_GDPR_TOKEN" in line
    assert "filed with some destinations, not all" in result.output
    assert "stale-eu-oauth" not in result.output
    assert PERSON not in result.output
    assert _rows(sqlite_engine) == [(OTHER, "eu")]
    assert "deletion refused (eu)" in _forget_detail(sqlite_engine)


def test_an_unreachable_destination_is_reported_failed_with_exit_1(
    sqlite_engine: Engine, us: MixpanelStandin
) -> None:
    """An EU host that does not answer is a runtime failure (exit 1), reported on its own line;
    the US deletion is filed all the same."""
    with MixpanelStandin(project_token="eu-token", oauth_token="eu-oauth") as gone:
        eu_settings = _destination(gone)
    _seed(sqlite_engine)
    result = _forget(sqlite_engine, _given(_destination(us), eu_settings))
    assert result.exit_code == 1, result.output
    assert _deleted_ids(us) == [(PERSON,)]
    assert any(x.startswith("destination eu: failed: ") for x in result.output.splitlines())
    assert PERSON not in result.output


def test_when_no_destination_files_nothing_is_erased_and_each_is_named(
    sqlite_engine: Engine, us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """Both projects refuse: nothing was filed anywhere, so nothing is erased (the command can
    simply be run again) and the one error line names both destinations."""
    _seed(sqlite_engine)
    before = _rows(sqlite_engine)
    given = _given(_destination(us, gdpr_token="bad"), _destination(eu, gdpr_token="bad"))
    result = _forget(sqlite_engine, given)
    assert result.exit_code == 3, result.output
    assert "destination us: refused" in result.output
    assert "destination eu: refused" in result.output
    assert "nothing was erased" in result.output
    assert _rows(sqlite_engine) == before
    assert us.gdpr_jobs() == []
    assert eu.gdpr_jobs() == []


def test_a_destination_without_a_gdpr_token_stops_everything_before_any_request(
    sqlite_engine: Engine, us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """An EU destination with no GDPR token is a configuration error naming its variable,
    found before anything is filed anywhere or erased (a silently missed region would make the
    erasure look complete)."""
    _seed(sqlite_engine)
    before = _rows(sqlite_engine)
    result = _forget(sqlite_engine, _given(_destination(us), _destination(eu, gdpr_token=None)))
    assert result.exit_code == 3
    assert "RELAY_DESTINATION_EU_GDPR_TOKEN" in result.output
    assert us.gdpr_jobs() == []
    assert _rows(sqlite_engine) == before


def test_json_reports_each_destination(
    sqlite_engine: Engine, us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """--json lists every destination's outcome, task id and problem."""
    _seed(sqlite_engine)
    result = _forget(sqlite_engine, _given(_destination(us), _destination(eu)), "--json")
    assert result.exit_code == 0, result.output
    import json  # noqa: PLC0415 - only this test reads JSON

    gdpr = json.loads(result.output)["gdpr"]
    assert [(g["destination"], g["outcome"]) for g in gdpr] == [
        ("default", "skipped"),
        ("us", "filed"),
        ("eu", "filed"),
    ]
    assert gdpr[2]["task_id"] == eu.gdpr_jobs()[0].task_id


def test_the_fence_holds_every_destination_until_a_row_in_flight_to_one_is_acked(
    engine: Engine, us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """While a relay sends the person's EU row, no deletion is filed with *either* project (a US
    deletion first would still race nothing, but the EU one would be overtaken by the row) and
    the person's US row is fenced; once the relay acks, both are filed and all rows erased."""
    _seed(engine)
    with engine.begin() as conn:
        eu_row = conn.execute(
            sa.select(outbox.c.id).where(
                outbox.c.distinct_id == PERSON, outbox.c.destination == "eu"
            )
        ).scalar_one()
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.id == eu_row)
            .values(
                lease_token=RELAY_TOKEN,
                lease_expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60),
                attempts=1,
            )
        )
    seen: list[tuple[int, int, str | None]] = []
    fenced_until: list[dt.datetime] = []

    def relay_acks() -> None:
        with engine.begin() as conn:
            us_lease, us_until = conn.execute(
                sa.select(outbox.c.lease_token, outbox.c.lease_expires_at).where(
                    outbox.c.distinct_id == PERSON,
                    outbox.c.destination == "us",
                    outbox.c.state == "pending",
                )
            ).one()
            seen.append((len(us.gdpr_jobs()), len(eu.gdpr_jobs()), us_lease))
            fenced_until.append(us_until)
            conn.execute(
                sa.update(outbox)
                .where(outbox.c.lease_token == RELAY_TOKEN)
                .values(state="delivered", lease_token=None, lease_expires_at=None)
            )

    settings = RelaySettings(
        database_url=engine.url.render_as_string(hide_password=False),
        erasure_hash_key=SecretStr(KEY),
        destinations={"us": _destination(us), "eu": _destination(eu)},  # type: ignore[dict-item]
    )
    started = dt.datetime.now(dt.UTC)
    result = forget(
        engine, settings, distinct_id=PERSON, dry_run=False, mixpanel=True, pause=relay_acks
    )
    ((us_jobs, eu_jobs, us_lease),) = seen
    assert (us_jobs, eu_jobs) == (0, 0)
    assert us_lease is not None
    assert us_lease != RELAY_TOKEN  # fenced by the erasure
    # The fence outlasts both filings at their slowest (every retry), not one request.
    until = fenced_until[0]
    until = until if until.tzinfo else until.replace(tzinfo=dt.UTC)
    two_filings = dt.timedelta(seconds=2 * PACING.bound(settings.request_deadline_seconds))
    assert until - started > two_filings
    assert [f.outcome for f in result.gdpr] == ["skipped", "filed", "filed"]
    assert result.waited_for == 1
    assert _rows(engine) == [(OTHER, "eu")]


def test_the_api_raises_when_no_destination_files(
    sqlite_engine: Engine, us: MixpanelStandin
) -> None:
    """Called from Python with a lone US destination refusing its token, forget raises the
    configuration error and lifts its fence: the rows are claimable again."""
    _seed(sqlite_engine)
    settings = RelaySettings(
        database_url=sqlite_engine.url.render_as_string(hide_password=False),
        erasure_hash_key=SecretStr(KEY),
        destinations={"us": _destination(us, gdpr_token="bad")},  # type: ignore[dict-item]
    )
    with pytest.raises(ConfigurationError, match="nothing was erased"):
        forget(sqlite_engine, settings, distinct_id=PERSON, dry_run=False, mixpanel=True)
    with sqlite_engine.connect() as conn:
        leases = conn.execute(sa.select(outbox.c.lease_token)).scalars().all()
    assert leases == [None, None, None, None]
    assert len(_rows(sqlite_engine)) == 4


def test_a_dry_run_with_mixpanel_needs_no_token_and_files_nothing(
    sqlite_engine: Engine, us: MixpanelStandin, eu: MixpanelStandin
) -> None:
    """Without --yes, --mixpanel only counts: a destination lacking its GDPR token does not
    stop the count, and no project receives anything."""
    _seed(sqlite_engine)
    url = sqlite_engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        main,
        ["--database-url", url, "forget", "--distinct-id", PERSON, "--mixpanel"],
        obj=_given(_destination(us), _destination(eu, gdpr_token=None)),
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "would erase 3 row(s)" in result.output
    assert "and file the GDPR deletion with destination(s): us, eu" in result.output
    assert us.gdpr_jobs() == []
    assert eu.gdpr_jobs() == []
