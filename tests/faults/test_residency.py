"""Data residency under faults: two projects (US and EU stand-ins), relays SIGKILLed, EU refusing.

A producer tracks for organizations of both regions through ``track()``, with a router
(``relay.set_router``) sending each organization's events to its region's destination
(``default`` for the US, ``eu``); the ledger books each event under the region the test gave
its organization, not under what the router said. Relays (``relay run``,
configured through ``RELAY_*`` only: the EU destination in ``RELAY_DESTINATIONS_FILE``, its secret
in ``RELAY_DESTINATION_EU_SERVICE_ACCOUNT_SECRET``) deliver both destinations; meanwhile relays
are SIGKILLed and the EU project refuses the relays' secret for a while (the stand-in's
``refuse_credentials``, as Mixpanel answers a revoked secret; a relay started meanwhile finds it
in its check before EU's first delivery). Afterwards:

* every committed event reached exactly its organization's project, none the other (each
  project's ledger balances: an event in the wrong project would be a phantom in one ledger
  and lost in the other), and none was lost or doubled;
* US delivery never waited for the EU outage: US events committed during the refusal window
  were delivered while the EU project still refused, and the EU project accepted nothing.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from ledger import Ledger
from rig import RelayLauncher, SurveyEvents, pending_count, state_counts, wait_until
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from relay import Route, set_router, track
from relay._tables import DEFAULT_DESTINATION, OutboxState, outbox
from relay.testing.mixpanel_standin import MixpanelStandin

EU = "eu"
#: How often the producer commits a transaction, and how many events each one carries.
PRODUCE_EVERY_SECONDS = 0.1
EVENTS_PER_TRANSACTION = 10


@pytest.fixture
def eu() -> Iterator[MixpanelStandin]:
    """The EU project's stand-in (its own project id and service account)."""
    with MixpanelStandin(
        retain_events=True, project_id="2002", username="eu-sa", secret="eu-secret", region="eu"
    ) as server:
        yield server


def destinations_settings(eu: MixpanelStandin, directory: Path) -> dict[str, str]:
    """The EU destination for ``relay run``: its table in a destinations file, its secret in
    the environment (settings by field name, as ``RelayLauncher.start`` takes them)."""
    path = directory / "destinations.toml"
    path.write_text(
        f"[destinations.{EU}]\n"
        'region = "eu"\n'
        f'api_url = "{eu.url}"\n'
        f'app_api_url = "{eu.app_api_url}"\n'
        f'project_id = "{eu.project_id}"\n'
        f'service_account_username = "{eu.username}"\n'
    )
    return {
        "destinations_file": str(path),
        f"destination_{EU}_service_account_secret": eu.secret,
        "auth_failure_pause_seconds": "1",
    }


class Producer:
    """Tracks events of US and EU organizations on a thread, routed by organization."""

    def __init__(self, engine: Engine, ledgers: dict[str, Ledger], seed: int) -> None:
        self._engine = engine
        self._ledgers = ledgers
        self._rng = random.Random(seed)
        # Three organizations per region; each SurveyEvents is one organization.
        self._orgs = [(DEFAULT_DESTINATION, SurveyEvents()) for _ in range(3)]
        self._orgs += [(EU, SurveyEvents()) for _ in range(3)]
        region_of = {
            str(org.next().properties["organization_id"]): region for region, org in self._orgs
        }

        def router(route: Route) -> str:
            return region_of[str(route.organization_id)]

        set_router(router, destinations=(DEFAULT_DESTINATION, EU))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="producer", daemon=True)
        self.error: BaseException | None = None
        #: (monotonic time of the commit, destination, insert ids) of every transaction.
        self.commits: list[tuple[float, str, list[str]]] = []

    def __enter__(self) -> Producer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        set_router(None, destinations=(DEFAULT_DESTINATION, EU))
        self._stop.set()
        self._thread.join(timeout=30)
        if self.error is not None:
            raise AssertionError(f"the producer failed: {self.error!r}")

    def commit_once(self, region: str) -> None:
        """Commit one more transaction for an organization of ``region`` (thread stopped)."""
        self._stop.set()
        self._thread.join(timeout=30)
        self._commit_one(region)

    def _run(self) -> None:
        try:
            while not self._stop.wait(PRODUCE_EVERY_SECONDS):
                self._commit_one()
        except BaseException as exc:  # noqa: BLE001 - reported by stop(), on the test's thread
            self.error = exc

    def _commit_one(self, region: str | None = None) -> None:
        destination, organization = self._rng.choice(
            [o for o in self._orgs if region in (None, o[0])]
        )
        committed: list[tuple[str, Any]] = []
        with Session(self._engine) as session, session.begin():
            for _ in range(EVENTS_PER_TRANSACTION):
                call = organization.next()
                insert_id = track(
                    session,
                    event=call.event,
                    distinct_id=call.distinct_id,
                    properties=call.properties,
                    occurred_at=call.occurred_at,
                    strict=True,
                )
                assert insert_id is not None
                committed.append((insert_id, call))
        for insert_id, call in committed:  # the commit returned: these exist
            self._ledgers[destination].record_committed(
                insert_id, event=call.event, distinct_id=call.distinct_id, time_ms=call.time_ms
            )
        self.commits.append((time.monotonic(), destination, [i for i, _ in committed]))


def _undelivered(engine: Engine, insert_ids: list[str]) -> int:
    """How many of ``insert_ids`` are not delivered yet."""
    if not insert_ids:
        return 0
    with engine.connect() as conn:
        delivered = conn.execute(
            sa.select(sa.func.count()).where(
                outbox.c.insert_id.in_(insert_ids),
                outbox.c.state == OutboxState.DELIVERED.value,
            )
        ).scalar_one()
    return len(insert_ids) - int(delivered)


def run_residency_scenario(
    engine: Engine,
    us: MixpanelStandin,
    eu: MixpanelStandin,
    relays: RelayLauncher,
    *,
    kills: int,
    refusal_seconds: float,
) -> dict[str, object]:
    """The scenario of the module docstring; returns what it measured."""
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    ledgers = {
        DEFAULT_DESTINATION: Ledger(f"residency US, seed {seed}"),
        EU: Ledger(f"residency EU, seed {seed}"),
    }
    settings = destinations_settings(eu, relays.log_dir)
    running = [relays.start(**settings), relays.start(**settings)]
    with Producer(engine, ledgers, seed) as producer:
        wait_until(
            lambda: eu.stats().unique > 0 and us.stats().unique > 0,
            timeout=60,
            what="both projects to receive events",
            context=relays.diagnosis,
        )
        # The EU project refuses the relays' secret from here on.
        eu.refuse_credentials()
        window_start = time.monotonic()
        time.sleep(1.0)  # a request authorized just before the switch may still complete
        eu_accepted_at_start = eu.stats().unique
        for _kill in range(kills):
            time.sleep(rng.uniform(0.5, refusal_seconds / max(kills, 1)))
            victim = running.pop(rng.randrange(len(running)))
            victim.kill()
            running.append(relays.start(**settings))
        time.sleep(max(0.0, window_start + refusal_seconds - time.monotonic()))
        # US events committed during the window so far must reach the US project while the
        # EU project still refuses: US delivery does not wait for the EU outage.
        checkpoint = time.monotonic()
        us_in_window = [
            i
            for at, dest, ids in list(producer.commits)
            if window_start <= at <= checkpoint and dest == DEFAULT_DESTINATION
            for i in ids
        ]
        eu_in_window = [
            i
            for at, dest, ids in list(producer.commits)
            if window_start <= at <= checkpoint and dest == EU
            for i in ids
        ]
        wait_until(
            lambda: _undelivered(engine, us_in_window) == 0,
            timeout=60,
            what="US events committed during the EU refusal to be delivered",
            context=relays.diagnosis,
        )
        us_caught_up = time.monotonic() - checkpoint
        eu_accepted_at_end = eu.stats().unique
        eu_waiting = _undelivered(engine, eu_in_window)
        refused = eu.stats().by_status.get(401, 0)
        window = time.monotonic() - window_start
        eu.refuse_credentials(False)  # the operator restores the EU service account
        time.sleep(2.0)
        # One more crash: the last relay takes over the rows the others held, and delivers
        # what is committed after it (so it surely runs long enough to be stopped cleanly).
        for relay in running:
            relay.kill()
        final = relays.start(**settings)
        for region in (DEFAULT_DESTINATION, EU):
            producer.commit_once(region)
    wait_until(
        lambda: pending_count(engine) == 0,
        timeout=120,
        what="every row to be delivered after the EU project accepts again",
        context=relays.diagnosis,
    )
    assert final.stop() == 0, relays.diagnosis()

    measured: dict[str, object] = {
        "seed": seed,
        "kills (SIGKILL)": kills,
        "EU refusal window": f"{window:.1f} s",
        "US events in the window": len(us_in_window),
        "US caught up (s after)": f"{us_caught_up:.1f}",
        "EU events waiting then": eu_waiting,
        "EU 401 answers": refused,
        "outbox states": state_counts(engine),
    }
    reports = {
        name: ledgers[name].reconcile(standin.accepted_events(), notes=measured)
        for name, standin in ((DEFAULT_DESTINATION, us), (EU, eu))
    }
    for report in reports.values():
        print(f"\n{report}")
    context = "\n".join([*(str(r) for r in reports.values()), *relays.logs()])
    for report in reports.values():
        report.assert_clean()  # none lost, none doubled, none in the other project
    assert len(ledgers[DEFAULT_DESTINATION]) > 0, context
    assert len(ledgers[EU]) > 0, context
    us_ids = {str(r["properties"]["$insert_id"]) for r in us.accepted_events()}
    eu_ids = {str(r["properties"]["$insert_id"]) for r in eu.accepted_events()}
    assert us_ids == ledgers[DEFAULT_DESTINATION].committed_ids, context
    assert eu_ids == ledgers[EU].committed_ids, context
    assert state_counts(engine) == {
        OutboxState.DELIVERED.value: len(ledgers[EU]) + len(ledgers[DEFAULT_DESTINATION])
    }, context
    # The window: EU accepted nothing, refused (401) and kept its rows; US went on.
    assert eu_accepted_at_end == eu_accepted_at_start, context
    assert refused > 0, context
    assert us_in_window, context
    assert eu_in_window, context
    assert eu_waiting > 0, context
    assert us.stats().by_status.get(401, 0) == 0, context
    # What the relays printed through kills and the EU refusal names no secret of either project.
    printed = "\n".join(relays.logs())
    assert "destination" in printed, "the relays' output is missing: the check would prove nothing"
    for secret in (us.secret, us.project_token, us.oauth_token, eu.secret, eu.project_token):
        assert secret not in printed, "a destination's secret reached the relays' output"
    return measured


def test_each_organizations_events_reach_its_own_project_through_kills_and_an_eu_outage(
    pg_engine: Engine, standin: MixpanelStandin, eu: MixpanelStandin, relays: RelayLauncher
) -> None:
    """Two SIGKILLs during an EU credentials refusal: each project gets exactly its events."""
    run_residency_scenario(pg_engine, standin, eu, relays, kills=2, refusal_seconds=6.0)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ten_sigkills_and_a_long_eu_outage_keep_every_event_in_its_region(
    pg_engine: Engine, standin: MixpanelStandin, eu: MixpanelStandin, relays: RelayLauncher
) -> None:
    """Ten SIGKILLs over a 60 s EU refusal: ledgers clean, US never waited for EU."""
    run_residency_scenario(pg_engine, standin, eu, relays, kills=10, refusal_seconds=60.0)
