"""A pytest plugin for host applications: strict tracking in every test, and the outbox in view.

Enable it in the host application's ``conftest.py`` (there is no entry point, so projects
that do not opt in are untouched)::

    pytest_plugins = ["relay.testing.plugin"]

Fixtures:

``relay_strict_tracking`` (autouse)
    Every test runs under :func:`relay._tracking.strict_tracking`: a tracking failure (an
    invalid event, an unknown employee directory table, a broken outbox) raises instead of
    being logged and swallowed, so a test cannot pass while its events are silently lost.
    A test of the fire-and-forget behaviour itself passes ``strict=False`` to the call, or
    wraps it in ``strict_tracking(False)``.

``relay_outbox``
    An :class:`OutboxCapture`: reads the events tracked so far straight from the outbox table.
    Given the test's own ``Session`` or ``Connection`` it sees the rows of that still
    uncommitted transaction; given an ``Engine`` it sees committed rows only. Under
    pytest-django, given nothing (``relay_outbox.assert_tracked(EVENT, ...)``), it reads on
    Django's ``default`` connection, in the test's own transaction. In async tests
    (``atrack()``), ``await relay_outbox.aevents(...)`` and ``aassert_tracked(...)`` take an
    ``AsyncSession``, ``AsyncConnection`` or ``AsyncEngine`` the same way.

``relay_django_outbox_flush`` (autouse)
    After a transactional pytest-django test, empties relay's tables (Django's flush leaves
    them alone, being unmanaged; ``relay.contrib.django`` also empties them when Django's
    ``flush`` runs, which covers Django's own ``TransactionTestCase``). Does nothing elsewhere.

``relay_independent_cleanup`` (autouse)
    Deletes, after the test, the rows ``track(..., independent=True)`` committed during it:
    they commit on a connection of their own, so the test's rollback (a Django ``TestCase``,
    a rolled-back session) does not take them away. Best effort: a database already gone is
    skipped.

The fixtures are plain (sync) fixtures, so they serve async tests under any runner: the
project's own suite runs its async tests with anyio's pytest plugin (``@pytest.mark.anyio``).

``mixpanel_standin``
    A started :class:`relay.testing.mixpanel_standin.MixpanelStandin` on loopback: what it
    accepted, its dedup view, and fault injection (``fail_next(503)``, ...).

``mixpanel_standins``
    Data residency: ``mixpanel_standins(us="us", eu="eu")`` starts one stand-in per
    destination, each playing the region given, and maps the names to them (stopped after the
    test): each keeps what it received, so a test proves every event reached its own project.

``relay_drain``
    An :class:`EagerDrain`: ``relay_drain(engine)`` drains every due committed outbox row to
    ``mixpanel_standin`` through the real client, right now, and returns the
    :class:`relay._delivery.drain.DrainResult`, for end-to-end tests of "this action reaches
    Mixpanel".

Event coverage (off by default): ``--relay-require-event-coverage`` on the command line, or
``relay_require_event_coverage = true`` in the ini file, fails the session when a registered
event was never tracked by any test (``track()`` wrote it to an outbox, committed or not),
listing the untracked events. ``relay_event_catalog`` (ini, one module per line) limits the
events required to those whose schemas those modules define (default: every registered event).
Only tracking in the pytest process counts; events tracked by subprocesses are not seen.

Example::

    def test_delivery_is_tracked(session, relay_outbox):
        deliver_survey(session, survey, employee)
        captured = relay_outbox.assert_tracked(
            session, MixPanelEvent.SURVEY_DELIVERED, survey_id=str(survey.id)
        )
        assert captured.distinct_id == str(employee.id)
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

import orjson
import pytest
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from relay._config import RelaySettings
from relay._delivery.drain import DrainResult
from relay._delivery.wiring import open_drainer
from relay._store.capture import CapturedRow, select_events
from relay._tracking import observe_tracked_events, strict_tracking
from relay.testing.cleanup import independent_rows_removed
from relay.testing.mixpanel_standin import MixpanelStandin

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

_MISSING = object()

COVERAGE_OPTION = "--relay-require-event-coverage"
COVERAGE_INI = "relay_require_event_coverage"
CATALOG_INI = "relay_event_catalog"


def pytest_addoption(parser: pytest.Parser) -> None:
    """The event-coverage switch (command line and ini) and the catalog it checks."""
    group = parser.getgroup("relay", "relay event tracking")
    group.addoption(
        COVERAGE_OPTION,
        action="store_true",
        default=None,
        dest=COVERAGE_INI,
        help="fail the session when a registered event was never tracked by a test",
    )
    parser.addini(
        COVERAGE_INI,
        type="string",  # read by _ini_bool: an inline comment is allowed
        default="false",
        help="fail the session when a registered event was never tracked by a test",
    )
    parser.addini(
        CATALOG_INI,
        type="linelist",
        default=[],
        help="modules whose registered events the coverage check requires (default: all)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Start watching ``track()`` when event coverage is required."""
    enabled = config.getoption(COVERAGE_INI)
    if enabled is None:
        enabled = _ini_bool(COVERAGE_INI, str(config.getini(COVERAGE_INI)))
    if enabled:
        modules = _ini_modules(CATALOG_INI, list(config.getini(CATALOG_INI)))
        config.pluginmanager.register(EventCoverage(modules), "relay-event-coverage")


#: What an ini value may say for true and false (pytest's own spellings).
_TRUE = frozenset({"1", "true", "yes", "y", "on", "t"})
_FALSE = frozenset({"0", "false", "no", "n", "off", "f", ""})
#: A dotted module name (``hostplan``, ``myapp.analytics.catalog``).
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _uncomment(value: str) -> str:
    """``value`` without an inline ``# comment``: pytest's ini files keep it in the value."""
    return value.partition("#")[0].strip()


def _ini_bool(name: str, value: str) -> bool:
    text = _uncomment(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise pytest.UsageError(f"{name}: expected true or false, got {text!r}")


def _ini_modules(name: str, lines: list[str]) -> list[str]:
    """The module names of ``lines``, comments dropped; a value that is not one is refused."""
    modules = []
    for line in lines:
        for word in _uncomment(line).split():
            if not _MODULE.fullmatch(word):
                raise pytest.UsageError(f"{name}: {word!r} is not a module name")
            modules.append(word)
    return modules


class EventCoverage:
    """Records the events tracked during the session; fails it if a registered one was not."""

    def __init__(self, catalog_modules: list[str]) -> None:
        self.catalog_modules = catalog_modules
        self.tracked: set[str] = set()
        self.untracked: list[str] = []
        #: Why the check could not run (a catalog module that cannot be imported), if so.
        self.problem: str | None = None
        self._lock = threading.Lock()
        self._watch = contextlib.ExitStack()
        self._watch.enter_context(observe_tracked_events(self._record))

    def _record(self, event: str) -> None:
        with self._lock:
            self.tracked.add(event)

    def required(self) -> list[str]:
        """The registered events the session must track, sorted."""
        if self.catalog_modules:
            from relay.plan.docs import catalog_registry  # noqa: PLC0415 -- only when asked

            return sorted(catalog_registry(self.catalog_modules))
        from relay._event.registry import EVENT_SCHEMA_REGISTRY  # noqa: PLC0415

        return sorted(EVENT_SCHEMA_REGISTRY)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Fail a session that ran tests yet left a registered event untracked."""
        self._watch.close()
        if exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.NO_TESTS_COLLECTED):
            return
        try:
            required = self.required()
        except ImportError as exc:
            # A misspelt catalog module: one line in the summary, pytest's usage exit status.
            self.problem = (
                f"{CATALOG_INI}: cannot import {exc.name or ', '.join(self.catalog_modules)!r} "
                f"({type(exc).__name__})"
            )
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
            return
        with self._lock:
            self.untracked = [event for event in required if event not in self.tracked]
        if self.untracked:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """List the untracked events, one per line, under a section of their own."""
        if self.problem:
            terminalreporter.section("relay event coverage", red=True)
            terminalreporter.line(self.problem)
            return
        if not self.untracked:
            return
        count = len(self.untracked)
        terminalreporter.section("relay event coverage", red=True)
        terminalreporter.line(
            f"{count} registered event{'s' if count != 1 else ''} never tracked by any test:"
        )
        for event in self.untracked:
            terminalreporter.line(f"  {event}")


@dataclass(frozen=True, slots=True)
class CapturedEvent:
    """One outbox row: the event as it will be sent (``properties`` under their wire names)."""

    id: int
    insert_id: str
    event: str
    distinct_id: str
    time_ms: int
    properties: dict[str, Any]
    state: str

    @classmethod
    def from_row(cls, row: CapturedRow) -> CapturedEvent:
        """The captured event of a :func:`relay._store.capture.select_events` row."""
        return cls(
            id=row.id,
            insert_id=row.insert_id,
            event=row.event,
            distinct_id=row.distinct_id,
            time_ms=row.time_ms,
            # Django's PostgreSQL connections hand JSON back as text (it decodes it itself).
            properties=dict(
                orjson.loads(row.properties) if isinstance(row.properties, str) else row.properties
            ),
            state=row.state,
        )


def _mismatches(
    captured: CapturedEvent, distinct_id: str | None, expected: dict[str, Any]
) -> list[str]:
    found = []
    if distinct_id is not None and captured.distinct_id != distinct_id:
        found.append(f"distinct_id: expected {distinct_id!r}, got {captured.distinct_id!r}")
    for key, value in expected.items():
        actual = captured.properties.get(key, _MISSING)
        if actual is _MISSING:
            found.append(f"{key}: expected {value!r}, but the event has no such property")
        elif actual != value:
            found.append(f"{key}: expected {value!r}, got {actual!r}")
    return found


class OutboxCapture:
    """Reads back what was tracked into the outbox (the ``relay_outbox`` fixture)."""

    def events(
        self, bind: Session | Connection | Engine | None = None, *, event: str | None = None
    ) -> list[CapturedEvent]:
        """Every event in the outbox (or every ``event`` event), oldest first.

        ``bind`` is the test's ``Session`` or ``Connection`` (its uncommitted rows included)
        or an ``Engine`` (committed rows only, read on a connection of its own). Without it,
        in a Django project (pytest-django), the rows are read on Django's ``default``
        connection, in the test's own transaction: what the test's code wrote is there.
        """
        if bind is None:
            from relay.contrib.django import borrowed_connection  # noqa: PLC0415

            with borrowed_connection() as conn:
                rows = select_events(conn, event=event)
        elif isinstance(bind, Engine):
            with bind.connect() as conn:
                rows = select_events(conn, event=event)
        elif isinstance(bind, Session):
            rows = select_events(bind.connection(), event=event)
        else:
            rows = select_events(bind, event=event)
        return [CapturedEvent.from_row(row) for row in rows]

    @overload
    def assert_tracked(
        self, event: str, /, *, distinct_id: str | None = None, **expected_properties: Any
    ) -> CapturedEvent: ...

    @overload
    def assert_tracked(
        self,
        bind: Session | Connection | Engine,
        event: str,
        /,
        *,
        distinct_id: str | None = None,
        **expected_properties: Any,
    ) -> CapturedEvent: ...

    def assert_tracked(
        self,
        bind_or_event: Session | Connection | Engine | str,
        event_name: str | None = None,
        /,
        *,
        distinct_id: str | None = None,
        **expected_properties: Any,
    ) -> CapturedEvent:
        """The one ``event`` event whose properties include ``expected_properties``.

        Called as ``assert_tracked(bind, event, ...)`` (``bind`` as for :meth:`events`) or, in
        a Django project, ``assert_tracked(event, ...)`` (Django's ``default`` connection).
        Properties are compared under their wire names after JSON serialisation (an enum
        member equals its value; pass ``**{"$device_id": ...}`` for ``$`` names).
        ``distinct_id``, if given, must match too. Raises ``AssertionError`` saying what
        differs when no event, or more than one, matches.
        """
        bind: Session | Connection | Engine | None
        if isinstance(bind_or_event, str):
            if event_name is not None:
                raise TypeError("assert_tracked takes (event) or (bind, event)")
            bind, event = None, bind_or_event
        elif event_name is None:
            raise TypeError("assert_tracked(bind, event): the event name is missing")
        else:
            bind, event = bind_or_event, event_name
        candidates = self.events(bind, event=event)
        if not candidates:
            tracked = sorted({captured.event for captured in self.events(bind)})
            raise AssertionError(
                f"expected a {event!r} event in the outbox, found none; "
                f"tracked: {', '.join(tracked) if tracked else 'nothing'}"
            )
        report = {c.id: _mismatches(c, distinct_id, expected_properties) for c in candidates}
        matching = [c for c in candidates if not report[c.id]]
        if len(matching) == 1:
            return matching[0]
        if matching:
            raise AssertionError(
                f"{len(matching)} {event!r} events match {expected_properties!r}; "
                "pass more properties to tell them apart, or read relay_outbox.events()"
            )
        details = "\n".join(
            f"  outbox row {row_id}: " + "; ".join(problems) for row_id, problems in report.items()
        )
        raise AssertionError(
            f"no {event!r} event matches; {len(candidates)} tracked, differing in:\n{details}"
        )

    async def aevents(
        self,
        bind: AsyncSession | AsyncConnection | AsyncEngine,
        *,
        event: str | None = None,
    ) -> list[CapturedEvent]:
        """:meth:`events` for SQLAlchemy's asyncio API."""
        from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: PLC0415 - the async extra

        if isinstance(bind, AsyncEngine):
            async with bind.connect() as conn:
                return await conn.run_sync(self.events, event=event)
        return await bind.run_sync(self.events, event=event)

    async def aassert_tracked(
        self,
        bind: AsyncSession | AsyncConnection | AsyncEngine,
        event: str,
        /,
        *,
        distinct_id: str | None = None,
        **expected_properties: Any,
    ) -> CapturedEvent:
        """:meth:`assert_tracked` for SQLAlchemy's asyncio API."""
        from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: PLC0415 - the async extra

        if isinstance(bind, AsyncEngine):
            async with bind.connect() as conn:
                return await conn.run_sync(
                    self.assert_tracked, event, distinct_id=distinct_id, **expected_properties
                )
        return await bind.run_sync(
            self.assert_tracked, event, distinct_id=distinct_id, **expected_properties
        )


class EagerDrain:
    """Drains an outbox to Mixpanel stand-ins on demand, through the relay's real HTTP path.

    Rows of the ``default`` destination go to ``standin``; a test of routing (``relay.set_router``)
    names each other destination's stand-in with :meth:`add_destination`, and every call then
    drains each destination to its own stand-in, so a row routed to the wrong project shows up
    in the wrong stand-in's ``events``.
    """

    def __init__(self, standin: MixpanelStandin) -> None:
        self.standin = standin
        self.destinations: dict[str, MixpanelStandin] = {}

    def add_destination(self, name: str, standin: MixpanelStandin) -> None:
        """Drain the rows routed to destination ``name`` to ``standin`` from now on."""
        self.destinations[name] = standin

    def __call__(self, engine: Engine) -> DrainResult:
        """Send every committed row due now to its destination's stand-in; the result says what
        happened (summed over the destinations)."""
        settings = RelaySettings(
            database_url=engine.url.render_as_string(hide_password=False),
            mixpanel_api_url=self.standin.url,
            mixpanel_project_id=self.standin.project_id,
            mixpanel_service_account_username=self.standin.username,
            mixpanel_service_account_secret=self.standin.secret,
            # Profile updates (relay.update_profile / update_group) carry the project token.
            mixpanel_project_token=self.standin.project_token,
            destinations={
                name: standin.destination_settings() for name, standin in self.destinations.items()
            },
        )
        total = DrainResult()
        for name in settings.destination_names():
            with open_drainer(engine, settings, destination=name, paced=False) as drainer:
                total += drainer.drain_until_idle()
        return total


@pytest.fixture
def mixpanel_standin() -> Iterator[MixpanelStandin]:
    """A Mixpanel stand-in on loopback, stopped after the test."""
    with MixpanelStandin() as standin:
        yield standin


@pytest.fixture
def mixpanel_standins() -> Iterator[Callable[..., dict[str, MixpanelStandin]]]:
    """Start one stand-in per destination: ``mixpanel_standins(us="us", eu="eu")``.

    Each keyword names a destination and the region its stand-in plays; the result maps the
    names to running stand-ins (project ids ``1000001``, ``1000002``, ... in order), all stopped
    after the test. ``write_destinations_file(path, standins)`` points a relay at them.
    """
    with contextlib.ExitStack() as stack:
        started: list[MixpanelStandin] = []

        def start(**regions: str) -> dict[str, MixpanelStandin]:
            made = {}
            for name, region in regions.items():
                project_id = str(1_000_001 + len(started))
                standin = stack.enter_context(MixpanelStandin(project_id=project_id, region=region))
                started.append(standin)
                made[name] = standin
            return made

        yield start


@pytest.fixture
def relay_drain(mixpanel_standin: MixpanelStandin) -> EagerDrain:
    """Drain the outbox to ``mixpanel_standin`` on demand: ``relay_drain(engine)``."""
    return EagerDrain(mixpanel_standin)


@pytest.fixture(autouse=True)
def relay_strict_tracking() -> Iterator[None]:
    """Make tracking failures raise for the whole test instead of being logged and dropped."""
    with strict_tracking():
        yield


@pytest.fixture
def relay_outbox() -> OutboxCapture:
    """Read the events tracked into the outbox so far; see :class:`OutboxCapture`."""
    return OutboxCapture()


@pytest.fixture(autouse=True)
def relay_django_outbox_flush(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a transactional pytest-django test, empty relay's tables, as Django flushes its own.

    Django's flush leaves unmanaged tables alone, so without this the events a
    ``django_db(transaction=True)`` test committed would be seen by the tests after it.
    Does nothing outside pytest-django's transactional tests.
    """
    yield
    marker = request.node.get_closest_marker("django_db")
    options = dict(marker.kwargs) if marker is not None else {}
    if marker is not None and marker.args:
        options.setdefault("transaction", marker.args[0])
    transactional = bool(options.get("transaction")) or bool(
        {"transactional_db", "live_server"} & set(request.fixturenames)
    )
    if not transactional:
        return
    from relay.contrib.django.testing import flush_outbox  # noqa: PLC0415

    # pytest-django blocks database access again before this teardown runs.
    with request.getfixturevalue("django_db_blocker").unblock():
        flush_outbox(options.get("databases"))


@pytest.fixture(autouse=True)
def relay_independent_cleanup() -> Iterator[None]:
    """After the test, delete the rows ``independent=True`` committed during it (best effort)."""
    with independent_rows_removed():
        yield
