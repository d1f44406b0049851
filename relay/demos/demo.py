"""``relay demo``: the whole path on the embedded default, with nothing to configure.

It creates a SQLite outbox, runs a few business transactions tracking the demo's own events (one
of them rolled back, one inside a cron run, one with an invalid event), starts the Mixpanel
stand-in on loopback, drains the outbox to it through the real HTTP path (riding out an
injected 503 with the documented backoff), re-sends everything once more to show Mixpanel's
deduplication, and reports what was tracked, what was delivered and what Mixpanel would show.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from relay import _migrations
from relay import _store as outbox_store
from relay._config import RelaySettings
from relay._database import create_engine, redact_url
from relay._delivery.drain import DrainResult
from relay._delivery.wiring import open_drainer
from relay._errors import ConfigurationError
from relay._mixpanel.client import MixpanelImportClient
from relay._store import capture
from relay._tables import OutboxState
from relay._tracking import cron_run, track
from relay.contrib.sqlalchemy_directory import SqlEmployeeDirectory, directory_metadata
from relay.demos.events import (
    DemoEvent,
    MxpAuthUserLoggedInEventSchema,
    MxpHrisCsvUploadAnalyzedEventSchema,
    MxpMapActionPlanCreatedEventSchema,
    MxpRiskScoreCalculatedEventSchema,
    MxpSurveysSurveyDeliveredEventSchema,
    register_demo_events,
)
from relay.testing.mixpanel_standin import MixpanelStandin

ORG = "0b6a8a4e-8f55-4f8e-9a53-3f1f4f1c2d10"
ALICE = "6f1c7a0e-1b2c-4d5e-8f90-123456789abc"
BOB = "9d3e2b1a-4c5d-4e6f-8a7b-0c1d2e3f4a5b"
_business = sa.MetaData()
_surveys = sa.Table(
    "demo_survey_deliveries",
    _business,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("employee_id", sa.String(36), nullable=False),
)


@dataclass
class DemoReport:
    """What the demo did, for printing and for tests."""

    database_url: str  # redacted (relay._database.redact_url): the report is printed
    tracked: list[tuple[str, str, str]] = field(default_factory=list)  # event, distinct_id, state
    rolled_back: int = 0
    refused: int = 0
    first_drain: DrainResult = field(default_factory=DrainResult)
    retry_drain: DrainResult = field(default_factory=DrainResult)
    crashed_sends: int = 0
    mixpanel_counts: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    accepted_records: int = 0
    duplicates_dropped: int = 0
    cron_event: dict[str, object] = field(default_factory=dict)


@contextmanager
def _database(database_url: str | None) -> Iterator[tuple[Engine, str]]:
    if database_url is not None:
        engine = create_engine(database_url)
        try:
            yield engine, database_url
        finally:
            engine.dispose()
        return
    with tempfile.TemporaryDirectory(prefix="relay-demo-") as folder:
        url = f"sqlite:///{Path(folder) / 'relay-demo.db'}"
        engine = create_engine(url)
        try:
            yield engine, url
        finally:
            engine.dispose()


def _seed_directory(engine: Engine) -> None:
    """Create the demo's tables and rows, leaving every table the demo did not create alone.

    ``organizations`` and ``employees`` count as the demo's only when its own
    ``demo_survey_deliveries`` is there too (they are created together); a database that has
    them without it belongs to someone else and is refused. Rows are added if missing, never
    deleted, so a second run on the same ``--keep`` database works.
    """
    present = set(sa.inspect(engine).get_table_names())
    foreign = sorted({"organizations", "employees"} & present)
    if foreign and _surveys.name not in present:
        raise ConfigurationError(
            f"the database already has table(s) {', '.join(foreign)} that the demo did not "
            "create: give `relay demo --keep` an empty database (the demo never changes "
            "tables it did not create)"
        )
    directory_metadata.create_all(engine)
    _business.create_all(engine)
    organizations, employees = (
        directory_metadata.tables["organizations"],
        directory_metadata.tables["employees"],
    )
    with engine.begin() as conn:
        conn.execute(sa.delete(_surveys))
        if conn.execute(sa.select(organizations.c.id).where(organizations.c.id == ORG)).first():
            return
        conn.execute(sa.insert(organizations).values(id=ORG, name="Acme Analytics"))
        conn.execute(
            sa.insert(employees),
            [
                {"id": ALICE, "organization_id": ORG, "role": "manager"},
                {"id": BOB, "organization_id": ORG, "role": "employee"},
            ],
        )


def _base(session: Session, employee_id: str) -> dict[str, object]:
    """The base properties of ``employee_id``'s events, from the demo's directory tables."""
    employee = SqlEmployeeDirectory().lookup(session, employee_id)
    assert employee is not None  # the demo seeded it
    return {
        "employee_id": employee_id,
        "organization_id": employee.organization_id,
        "organization_name": employee.organization_name,
        "role": employee.role,
        "impersonation": False,
    }


def _business_transactions(engine: Engine, now: dt.datetime, report: DemoReport) -> None:
    # The demo's own events, registered only now that the demo runs (relay ships none).
    register_demo_events()

    # 1. A survey goes out: the delivery row and its event commit together.
    with Session(engine) as session, session.begin():
        session.execute(sa.insert(_surveys).values(id="delivery-1", employee_id=BOB))
        track(
            session,
            event=DemoEvent.SURVEY_DELIVERED,
            distinct_id=BOB,
            properties=MxpSurveysSurveyDeliveredEventSchema.model_validate(
                {
                    **_base(session, BOB),
                    "survey_id": "survey-7",
                    "channel": "slack",
                    "question_count": 5,
                }
            ),
        )
        track(
            session,
            event=DemoEvent.USER_LOGGED_IN,
            distinct_id=ALICE,
            properties=MxpAuthUserLoggedInEventSchema.model_validate(
                {**_base(session, ALICE), "login_method": "sso"}
            ),
        )
    # 2. An action plan is created, then the transaction fails: no plan, and no event.
    with Session(engine) as session:
        session.begin()
        track(
            session,
            event=DemoEvent.ACTION_PLAN_CREATED,
            distinct_id=ALICE,
            properties=MxpMapActionPlanCreatedEventSchema.model_validate(
                {**_base(session, ALICE), "action_plan_id": "plan-1", "action_item_count": 3}
            ),
        )
        session.rollback()
        report.rolled_back += 1
    # 3. A nightly cron run analyses an upload made yesterday afternoon: the event keeps the
    #    upload's time and is marked as tracked by the run.
    uploaded_at = now - dt.timedelta(hours=14)
    with cron_run(now), Session(engine) as session, session.begin():
        track(
            session,
            event=DemoEvent.UPLOAD_ANALYZED,
            distinct_id=ALICE,
            properties=MxpHrisCsvUploadAnalyzedEventSchema.model_validate(
                {**_base(session, ALICE), "upload_id": "upload-99", "valid_row_count": 118}
            ),
            occurred_at=uploaded_at,
        )
        track(
            session,
            event=DemoEvent.RISK_SCORE_CALCULATED,
            distinct_id=BOB,
            properties=MxpRiskScoreCalculatedEventSchema.model_validate(
                {**_base(session, BOB), "risk_score": 72.0}
            ),
            occurred_at=uploaded_at,
        )
    # 4. A bug passes an email as a survey id: fire-and-forget logs it, the business commits.
    with Session(engine) as session, session.begin():
        session.execute(sa.insert(_surveys).values(id="delivery-2", employee_id=ALICE))
        result = track(
            session,
            event=DemoEvent.SURVEY_DELIVERED,
            distinct_id=ALICE,
            properties={
                **_base(session, ALICE),
                "survey_id": "alice@example.com",
                "channel": "email",
                "question_count": 5,
            },
            strict=False,
        )
        report.refused += result is None


def run_demo(
    *,
    database_url: str | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> DemoReport:
    """Run the demo end to end and return its report (see the module docstring)."""
    with _database(database_url) as (engine, url), MixpanelStandin() as standin:
        report = DemoReport(database_url=redact_url(url))
        _migrations.upgrade(engine)
        _seed_directory(engine)
        _business_transactions(engine, clock(), report)
        now = clock()

        settings = RelaySettings(
            database_url=url,
            mixpanel_api_url=standin.url,
            mixpanel_project_id=standin.project_id,
            mixpanel_service_account_username=standin.username,
            mixpanel_service_account_secret=standin.secret,
        )
        with open_drainer(engine, settings, paced=False) as drainer:
            # Mixpanel has a bad moment: the first request gets a 503, so the batch is
            # scheduled for a retry with backoff instead of being lost or hammered.
            standin.fail_next(503)
            report.first_drain = drainer.drain_until_idle(clock=lambda: now)
            # The retry is due within ~65 s (2 s doubling to 60 s, plus 1-5 s of jitter). Another
            # relay claims and sends the batch, then dies before its ack: the rows stay
            # pending under a lease nobody will ack.
            later = now + dt.timedelta(minutes=2)
            with outbox_store.transaction(engine, write=True) as conn:
                claim = outbox_store.claim(
                    conn,
                    now=later,
                    limit=settings.batch_max_events,
                    lease_seconds=settings.lease_seconds,
                )
            with MixpanelImportClient(settings) as dying_relay:
                dying_relay.send(claim.events)
            report.crashed_sends = len(claim.events)
            # Once the lease expires, the next relay sends them again: same time, same
            # $insert_id, so Mixpanel drops the second copy and reports count each event once.
            after_lease = later + dt.timedelta(seconds=settings.lease_seconds + 1)
            report.retry_drain = drainer.drain_until_idle(clock=lambda: after_lease)

        with engine.connect() as conn:
            for row in capture.select_events(conn):
                report.tracked.append((row.event, row.distinct_id, row.state))
                if row.properties.get("is_cron_job"):
                    report.cron_event = {
                        "event": row.event,
                        "time_ms": row.time_ms,
                        "cron_execution_timestamp": row.properties["cron_execution_timestamp"],
                    }
        stats = standin.stats()
        report.requests = stats.requests
        report.accepted_records = stats.accepted
        report.duplicates_dropped = stats.duplicates
        report.mixpanel_counts = dict(Counter(key[0] for key in standin.unique_events()))
        return report


def format_report(report: DemoReport) -> str:
    """The report as the text ``relay demo`` prints."""
    lines = [f"outbox: {report.database_url}", "", "tracked (committed business transactions):"]
    states = Counter(state for _, _, state in report.tracked)
    lines += [
        f"  {event:<42} distinct_id={who:<38} {state}" for event, who, state in report.tracked
    ]
    lines += [
        f"  rolled back with their business transaction: {report.rolled_back} (never stored)",
        f"  refused by the contract and logged, business committed: {report.refused}",
        "",
        "relay -> Mixpanel stand-in (real HTTP on loopback):",
        f"  first drain:  {report.first_drain.claimed} claimed, "
        f"{report.first_drain.retried} scheduled for retry after HTTP 503",
        f"  retry:        {report.crashed_sends} sent, then the relay died before its ack",
        f"  lease expiry: {report.retry_drain.delivered} re-sent and acked by the next relay",
        f"  outbox now:   {states.get(OutboxState.DELIVERED.value, 0)} delivered, "
        f"{states.get(OutboxState.PENDING.value, 0)} pending, "
        f"{states.get(OutboxState.DEAD.value, 0)} dead",
        "",
        f"Mixpanel stand-in: {report.requests} requests, {report.accepted_records} records "
        f"accepted, {report.duplicates_dropped} dropped as duplicates of the same "
        "(event, distinct_id, time, $insert_id)",
        "what Mixpanel would show (unique events):",
    ]
    lines += [f"  {event:<42} {count}" for event, count in sorted(report.mixpanel_counts.items())]
    if report.cron_event:
        cron = report.cron_event
        lag = (int(str(cron["cron_execution_timestamp"])) - int(str(cron["time_ms"]))) / 3_600_000
        lines += [
            "",
            f"cron run: {cron['event']} keeps the original action's time; "
            f"cron_execution_timestamp is {lag:.0f} h later",
        ]
    return "\n".join(lines)
