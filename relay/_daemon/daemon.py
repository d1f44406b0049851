"""The relay daemon: APScheduler jobs for drain, retention and gauges; wake-ups; signals.

Four kinds of job run on a ``BackgroundScheduler``:

* **drain**, one job per destination (one Mixpanel project, data residency), each on its own
  thread, so a destination that is paused, throttled, refusing the credentials or slow never
  delays another's; before a destination's first delivery its configuration is checked
  (:func:`_check_before_first_delivery`). Each (one instance at a time, coalesced) drains
  until a batch comes back short, then
  reschedules itself adaptively: ``poll_min_seconds`` after finding work, doubling to
  ``poll_max_seconds`` while idle. On PostgreSQL a dedicated connection looks for a newly
  committed row every ``wake_probe_seconds`` and runs the job at once when it finds one
  (:mod:`relay._daemon.watcher`); polling remains for retries coming due.
* **retention** every ``retention_interval_seconds``; **gauges** every ``gauge_interval_seconds``;
  **summary** every minute: one INFO line ``delivery_summary`` with the rows delivered,
  dead-lettered and retried since the last one (:mod:`relay._daemon.summary`), and a last one
  as the daemon stops.

Every job logs its errors with the traceback and the next run tries again, so a database
restart or a Mixpanel outage never ends the process. After a 401, 403, 404 or a redirect that
destination's drain pauses for ``auth_failure_pause_seconds``, leaving its rows untouched while
the other destinations go on (the pacing of passes
and what metrics make of them: :mod:`relay._daemon.pacing`; the wake-up:
:mod:`relay._daemon.watcher`). SIGTERM/SIGINT cut
the request in flight short (within about a quarter second), give back its rows and those
claimed but not yet sent (attempt returned), and exit 0.

Run it as ``python -m relay._daemon.daemon`` with ``RELAY_*`` variables set.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType

import structlog
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    JobEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.engine import Engine

from relay import _exit
from relay._config import RelaySettings, load_settings
from relay._daemon.metrics import HEALTH_STALE_SECONDS, MetricsServer, RelayMetrics
from relay._daemon.pacing import DrainPacer, MetricsFeed
from relay._daemon.summary import SUMMARY_INTERVAL_SECONDS, SummaryCounter
from relay._daemon.unconfigured import warn_unconfigured_destinations
from relay._daemon.watcher import WATCH_JOIN_SECONDS, OutboxWatcher
from relay._database import create_engine
from relay._delivery.drain import Drainer, utc_now
from relay._delivery.wiring import open_drainer
from relay._errors import ConfigurationError, SchemaRevisionError
from relay._logging import configure_logging
from relay._migrations import require_current_schema
from relay._mixpanel.check import check_destination
from relay._mixpanel.profiles import require_profile_token
from relay._store import transaction
from relay._store.maintenance import read_gauges, run_retention
from relay._store.pauses import list_pauses
from relay._tables import DEFAULT_DESTINATION

logger = structlog.get_logger("relay.daemon")

DRAIN_JOB_ID = "relay-drain"
RETENTION_JOB_ID = "relay-retention"
GAUGE_JOB_ID = "relay-gauges"
SUMMARY_JOB_ID = "relay-summary"
#: Retention deletes at most this many batches per state in one run, so a first run over a
#: huge backlog cannot hold up shutdown for long; the next run carries on.
RETENTION_MAX_BATCHES_PER_RUN = 100
#: While a drain runs its job is parked this far ahead, so APScheduler never fires it twice.
_PARKED_SECONDS = 3600.0
#: The relay command's exit codes (defined once, in relay._exit).
EXIT_OK = _exit.OK
EXIT_CONFIGURATION = _exit.CONFIGURATION
#: Scheduler threads besides one per destination's drain: retention, gauges, summary, spare.
_OTHER_JOB_THREADS = 4


#: How often the daemon's main thread wakes to run a signal handler the kernel left pending.
SIGNAL_POLL_SECONDS = 0.5


def drain_job_id(destination: str) -> str:
    """The drain job of ``destination``: ``relay-drain`` for ``default``, ``relay-drain@name``."""
    return DRAIN_JOB_ID if destination == DEFAULT_DESTINATION else f"{DRAIN_JOB_ID}@{destination}"


def _check_before_first_delivery(settings: RelaySettings, name: str) -> tuple[bool, str | None]:
    """Whether destination ``name`` may be delivered to: (ok, a one-line problem, no secret).

    ``settings`` are that destination's (``for_destination``). Runs ``relay check``'s
    :func:`~relay._mixpanel.check.check_destination`. Only a verdict Mixpanel gave stops the
    destination: the credentials refused, or the project not in the configured region (where
    events sent to the wrong region's host are lost, not forwarded). A check that could not
    tell (no answer, 429, 5xx), or that made no call because the settings cannot express the
    app API's request (a project id that is not an integer, which only a stand-in has), is
    logged and delivery goes on: delivery's own answers then decide, as before the check.
    """
    check = check_destination(settings, name)
    if check.ok:
        return True, None
    if check.configuration and check.calls:
        return False, check.problem
    logger.warning("destination_check_inconclusive", destination=name, problem=check.problem)
    return True, None


class _DestinationDrain:
    """One destination's drain: its drainer, its pacing, its job and its wake-up flags."""

    def __init__(self, drainer: Drainer, pacer: DrainPacer) -> None:
        self.name = drainer.destination
        self.drainer = drainer
        self.pacer = pacer
        self.job_id = drain_job_id(self.name)
        self.lock = threading.Lock()
        self.draining = False
        self.wake_pending = False
        #: The check before the first delivery passed (see _check_before_first_delivery).
        self.checked = False
        self.check_failed = False


class RelayDaemon:
    """The scheduler, its jobs and the PostgreSQL watcher, around one :class:`Drainer` per
    destination (``drainer``: one, or a sequence of them for several destinations).

    ``pacer`` (optional) paces the first drainer's destination; each other one gets its own.
    """

    def __init__(
        self,
        settings: RelaySettings,
        *,
        engine: Engine,
        drainer: Drainer | Sequence[Drainer],
        metrics: RelayMetrics,
        stop: threading.Event,
        pacer: DrainPacer | None = None,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._metrics = metrics
        self._stop = stop
        drainers = [drainer] if isinstance(drainer, Drainer) else list(drainer)
        if not drainers or len({d.destination for d in drainers}) != len(drainers):
            raise ValueError("one drainer per destination, at least one")
        self._drains = {
            d.destination: _DestinationDrain(
                d,
                pacer
                if pacer is not None and i == 0
                else DrainPacer(settings, metrics, destination=d.destination),
            )
            for i, d in enumerate(drainers)
        }
        self._by_job = {lane.job_id: lane for lane in self._drains.values()}
        self._schema_lock = threading.Lock()
        self._schema_checked = False
        self._summary = SummaryCounter()
        #: What :func:`run_daemon` returns; set to 3 when the schema revision is refused.
        self.exit_code = EXIT_OK
        self._watcher: threading.Thread | None = None
        self.scheduler = BackgroundScheduler(
            timezone=dt.UTC,
            # A thread per destination's drain: a slow project never holds up another's jobs.
            executors={"default": ThreadPoolExecutor(len(self._drains) + _OTHER_JOB_THREADS)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    # --- life cycle --------------------------------------------------------------------

    def start(self) -> None:
        """Add the jobs, start the scheduler and, on PostgreSQL, the watcher."""
        now = utc_now()
        s = self._settings
        for lane in self._drains.values():
            self.scheduler.add_job(
                self.drain_job,
                "interval",
                args=(lane.name,),
                seconds=s.poll_max_seconds,
                id=lane.job_id,
                next_run_time=now,
            )
        self.scheduler.add_job(
            self.retention_job,
            "interval",
            seconds=s.retention_interval_seconds,
            id=RETENTION_JOB_ID,
            next_run_time=now,
        )
        self.scheduler.add_job(
            self.gauge_job,
            "interval",
            seconds=s.gauge_interval_seconds,
            id=GAUGE_JOB_ID,
            next_run_time=now,
        )
        self.scheduler.add_job(
            self.summary_job, "interval", seconds=SUMMARY_INTERVAL_SECONDS, id=SUMMARY_JOB_ID
        )
        self.scheduler.add_listener(self._on_drain_done, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        self.scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES)
        self.scheduler.start()
        if self._engine.dialect.name == "postgresql" and s.wake_probe_seconds > 0:
            watcher = OutboxWatcher(
                self._engine, interval=s.wake_probe_seconds, wake=self.wake, stop=self._stop
            )
            self._watcher = threading.Thread(target=watcher.run, name="relay-watch", daemon=True)
            self._watcher.start()

    def shutdown(self) -> None:
        """Wait for the job in flight (the drainer releases rows it has not sent), then stop."""
        self._stop.set()
        self.scheduler.shutdown(wait=True)
        if self._watcher is not None:
            self._watcher.join(timeout=WATCH_JOIN_SECONDS)
        self.summary_job()  # what happened since the last summary

    # --- wake-ups ----------------------------------------------------------------------

    def wake(self, destination: str | None = None) -> None:
        """Run ``destination``'s drain job (every destination's when ``None``) now, or once
        more right after the run in progress.

        The watcher sees a new row, not its destination: it wakes them all (an idle one costs
        one empty claim).
        """
        lanes = self._drains.values() if destination is None else [self._drains[destination]]
        for lane in lanes:
            with lane.lock:
                lane.wake_pending = True
                if lane.draining:
                    continue
                lane.draining = True
            self._schedule_drain(lane, 0.0)

    def _schedule_drain(self, lane: _DestinationDrain, seconds: float) -> None:
        if self._stop.is_set():
            return
        try:
            self.scheduler.modify_job(
                lane.job_id, next_run_time=utc_now() + dt.timedelta(seconds=seconds)
            )
        except JobLookupError:  # the scheduler is shutting down
            return

    def _on_drain_done(self, event: JobEvent) -> None:
        # APScheduler sends this after it stopped counting the run as an instance, so a run
        # requested from here is never skipped as a second instance. A wake-up that came
        # after the run's last look at the flag is honoured here.
        lane = self._by_job.get(event.job_id)
        if lane is None:
            return
        with lane.lock:
            lane.draining = False
            again = lane.wake_pending and not self._stop.is_set()
        if again:
            self.wake(lane.name)

    def _on_skipped(self, event: JobEvent) -> None:
        # A poll-triggered run may start just as a wake-up asks for one; the running
        # instance sees the wake-up flag, so the skipped request needs nothing more.
        if event.job_id in self._by_job:
            logger.debug("drain_run_coalesced", job=event.job_id)

    # --- jobs --------------------------------------------------------------------------

    def drain_job(self, destination: str = DEFAULT_DESTINATION) -> None:
        """Drain ``destination`` while there is work or a wake-up came in meanwhile; then
        reschedule its job."""
        lane = self._drains[destination]
        with lane.lock:
            lane.draining = True
        # Park the interval trigger while this run lasts, so it is never skipped noisily.
        self._schedule_drain(lane, _PARKED_SECONDS)
        while True:
            with lane.lock:
                lane.wake_pending = False
            delay = self._drain_step(lane)
            self._schedule_drain(lane, delay)
            with lane.lock:
                if not lane.wake_pending or self._stop.is_set():
                    return

    def _drain_step(self, lane: _DestinationDrain) -> float:
        """One pass of draining ``lane``; returns the seconds until its next pass should run."""
        if self._stop.is_set():
            return self._settings.poll_max_seconds
        paused = lane.pacer.pause_left()
        if paused > 0:
            return paused
        try:
            if not self._schema_ready():
                return self._settings.poll_max_seconds
            if not self._destination_checked(lane):
                return max(lane.pacer.pause_left(), self._settings.poll_min_seconds)
            result = lane.drainer.drain_until_idle(clock=utc_now)
        except Exception as exc:  # the per-tick guard: log, go on
            logger.exception(
                "drain_tick_failed", destination=lane.name, error_type=type(exc).__name__
            )
            return lane.pacer.failed(exc)
        self._summary.add(result)
        if result.claimed:
            # Routine ticks (everything delivered) at debug: at full speed there are ~15 a second.
            routine = result.delivered == result.claimed
            log = logger.debug if routine else logger.info
            log(
                "drain_tick",
                destination=lane.name,
                claimed=result.claimed,
                delivered=result.delivered,
                rejected=result.rejected,
                retried=result.retried,
                dead_after_max_attempts=result.dead_after_max_attempts,
                released=result.released,
                lease_lost=result.lease_lost,
            )
        return lane.pacer.after_drain(result)

    def _destination_checked(self, lane: _DestinationDrain) -> bool:
        """Whether ``lane``'s destination passed its check before the first delivery.

        A failed check stops that destination only, like a refused secret: it is logged
        (one line, no secret), fails ``/healthz`` for it, and is made again after
        ``auth_failure_pause_seconds``; the other destinations go on.
        """
        if lane.checked:
            return True
        own = self._settings.for_destination(lane.name)
        ok, problem = _check_before_first_delivery(own, lane.name)
        if not ok:
            pause = self._settings.auth_failure_pause_seconds
            logger.critical(
                "destination_check_failed",
                destination=lane.name,
                problem=problem,
                paused_seconds=pause,
            )
            self._metrics.set_auth_error(problem or "check failed", destination=lane.name)
            lane.pacer.pause(pause)
            lane.check_failed = True
            return False
        if lane.check_failed:
            self._metrics.set_auth_error(None, destination=lane.name)
            logger.warning("destination_check_passed", destination=lane.name)
        lane.checked = True
        return True

    def _schema_ready(self) -> bool:
        """Whether the database's schema revision is this relay's, checked at the first contact.

        A database down at start-up makes this raise (the tick fails and is retried, as any
        tick would). A revision this relay does not run on stops the daemon with exit code 3:
        relays of two versions must never share a schema and disagree about leases. Rows
        waiting for a destination that is not configured are logged then, once
        (:mod:`relay._daemon.unconfigured`).
        """
        with self._schema_lock:  # the destinations' drains start together: check once
            return self._check_schema()

    def _check_schema(self) -> bool:
        if self._schema_checked:
            return True
        try:
            require_current_schema(self._engine)
        except SchemaRevisionError as exc:
            logger.critical("schema_revision_refused", error=str(exc))
            self.exit_code = EXIT_CONFIGURATION
            self._stop.set()
            return False
        try:
            require_profile_token(self._engine, self._settings)
        except ConfigurationError as exc:
            logger.critical("configuration_invalid", error=str(exc))
            self.exit_code = EXIT_CONFIGURATION
            self._stop.set()
            return False
        # Rows no drain of this daemon will ever claim: said once, delivery goes on.
        warn_unconfigured_destinations(self._engine, self._settings)
        self._schema_checked = True
        return True

    def summary_job(self) -> None:
        """Log what was delivered, dead-lettered and retried since the last summary (INFO)."""
        logger.info("delivery_summary", **self._summary.take().as_log())

    def retention_job(self) -> None:
        """Delete delivered and dead rows past their retention (once the schema was checked)."""
        try:
            if not self._schema_ready():
                return
            result = run_retention(
                self._engine,
                self._settings,
                now=utc_now(),
                max_batches=RETENTION_MAX_BATCHES_PER_RUN,
            )
        except Exception as exc:  # the per-tick guard: log, go on
            logger.exception("retention_failed", error_type=type(exc).__name__)
            return
        if result.delivered_deleted or result.dead_deleted:
            logger.info(
                "retention_purged",
                delivered=result.delivered_deleted,
                dead=result.dead_deleted,
            )

    def gauge_job(self) -> None:
        """Refresh the outbox gauges and the pauses in force."""
        try:
            gauges = read_gauges(self._engine, now=utc_now())
            with transaction(self._engine) as conn:
                pauses = list_pauses(conn)
        except Exception as exc:  # the per-tick guard: log, go on
            logger.exception("gauges_failed", error_type=type(exc).__name__)
            return
        self._metrics.set_gauges(gauges)
        self._metrics.set_pauses(
            everything=any(p.everything for p in pauses),
            events=[p.event for p in pauses if p.event is not None],
            destinations=[p.destination for p in pauses if p.destination is not None],
        )


def watch_delivery(metrics: RelayMetrics, drainer: Drainer) -> None:
    """Publish the drainer's limiter and its destination's shared throttle as gauges (labelled
    with the destination), read at each scrape."""
    limiter = drainer.limiter
    gate = drainer.throttle_gate
    destination = drainer.destination

    def level() -> float:
        known = gate.known
        return 0.0 if known is None else float(known.level)

    if limiter is None:
        metrics.watch_delivery(
            in_flight=lambda: 0.0,
            limit=lambda: 0.0,
            accepted_rate=lambda: 0.0,
            throttle_level=level,
            destination=destination,
        )
        return
    metrics.watch_delivery(
        in_flight=lambda: float(limiter.state().in_flight),
        limit=lambda: limiter.state().limit,
        accepted_rate=lambda: limiter.state().accepted_per_second,
        throttle_level=level,
        destination=destination,
    )


def run_daemon(settings: RelaySettings, *, stop_event: threading.Event | None = None) -> int:
    """Run the relay until ``stop_event`` is set or SIGTERM/SIGINT arrives; return the exit code.

    One drain per configured destination (``settings.destination_names()``), side by side.
    Signal handlers are installed only when called from the main thread. Returns 0 after a
    clean stop, 3 when the Mixpanel settings (of any destination) are unusable.
    """
    stop = stop_event or threading.Event()
    engine = create_engine(settings.database_url.get_secret_value())
    stale_after = max(
        HEALTH_STALE_SECONDS,
        4 * settings.request_deadline_seconds,
    )
    names = settings.destination_names()
    metrics = RelayMetrics(stale_after_seconds=stale_after, destinations=names)
    daemon: RelayDaemon | None = None
    with contextlib.ExitStack() as resources:
        resources.callback(engine.dispose)
        try:
            # ``stop``: SIGTERM cuts the request in flight short and gives its rows back, so
            # the daemon stops within seconds even against a server that drips its answer.
            drainers = [
                resources.enter_context(
                    open_drainer(
                        engine,
                        settings,
                        destination=name,
                        observer=MetricsFeed(metrics, destination=name),
                        stop=stop,
                    )
                )
                for name in names
            ]
        except ConfigurationError as exc:
            logger.critical("configuration_invalid", error=str(exc))
            return EXIT_CONFIGURATION
        restore = stop_on_signals(stop)
        resources.callback(restore)
        if settings.metrics_port:
            server = MetricsServer(metrics, host=settings.metrics_host, port=settings.metrics_port)
            resources.callback(server.close)
            server.start()
        for drainer in drainers:
            watch_delivery(metrics, drainer)
        daemon = RelayDaemon(settings, engine=engine, drainer=drainers, metrics=metrics, stop=stop)
        # Stopped first (it waits for the job in flight), before the drainer and its clients.
        resources.callback(daemon.shutdown)
        daemon.start()
        logger.info(
            "daemon_started", dialect=engine.dialect.name, pid=os.getpid(), destinations=names
        )
        # Bounded waits: CPython runs a signal's Python handler in the main thread, and when
        # the kernel delivers SIGINT/SIGTERM to one of the drain's threads instead, a main
        # thread blocked in an unbounded wait never gets to run it (python/cpython#85300):
        # under a loaded CI the daemon slept through Ctrl-C. Waking twice a second runs it.
        while not stop.wait(SIGNAL_POLL_SECONDS):
            pass
        logger.info("daemon_stopping")
    logger.info("daemon_stopped")
    return daemon.exit_code if daemon is not None else EXIT_OK


def stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """Make SIGTERM and SIGINT set ``stop``; returns a function restoring the old handlers.

    A signal that came before, while ``relay.__main__`` held them
    (:func:`relay._exit.stop_requested`), sets ``stop`` at once: the command stops as it would
    have had its handlers been in place. Does nothing (and restores nothing) outside the main
    thread, where Python cannot install signal handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def _request_stop(_signum: int, _frame: FrameType | None) -> None:
        # Nothing but an Event.set here: logging could deadlock inside a signal handler.
        stop.set()

    previous = {sig: signal.signal(sig, _request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    if _exit.stop_requested():
        stop.set()

    def _restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return _restore


def main() -> int:
    """Entry point: settings from the environment, logging, then :func:`run_daemon`.

    An invalid setting is one line on stderr naming it (never its value) and exit 3, as
    ``relay run`` does.
    """
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        _exit.fail(f"configuration error: {exc}", EXIT_CONFIGURATION)
    configure_logging(settings)
    return run_daemon(settings)


if __name__ == "__main__":
    sys.exit(main())
