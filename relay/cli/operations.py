"""``relay migrate``, ``run``, ``drain`` and ``demo``: running the relay."""

from __future__ import annotations

import dataclasses
import errno
import sys
import threading
from typing import TYPE_CHECKING

import click

from relay import _exit
from relay.cli._context import Relay, open_engine, pass_relay

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Engine

    from relay._config import RelaySettings
    from relay._delivery.results import DrainResult


@click.command(epilog=_exit.EXIT_CODES_HELP)
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@pass_relay
def migrate(relay: Relay, /, revision: str) -> None:
    """Create or upgrade relay's tables (its own Alembic history, relay_alembic_version).

    The one command that creates a SQLite database file that is not there yet.
    """
    from relay import _migrations  # noqa: PLC0415

    with relay.engine(create=True) as engine:
        _migrations.upgrade(engine, revision)
        reached = _migrations.current(engine)
    target = _migrations.resolve(revision)
    if target is not None and reached != [target]:
        # Alembic's upgrade to an older revision does nothing: say so, never "at revision X".
        at = ", ".join(reached) or "none"
        _exit.fail(
            f"relay migrate only upgrades: the database stays at revision {at}, newer than "
            f"{target}; nothing was changed (to go back, run Alembic's downgrade on relay's "
            f"migrations: alembic downgrade {target})",
            _exit.USAGE,
        )
    shown = ", ".join(reached) or revision
    click.echo(f"relay tables at revision {shown} in {relay.database_redacted()}")


@click.command(epilog=_exit.EXIT_CODES_HELP)
@pass_relay
def run(relay: Relay, /) -> None:
    """Run the relay daemon until SIGTERM/SIGINT (finishes the batch in flight, exit 0).

    Exit 3 when the Mixpanel settings are unusable, the tables are not migrated, or the metrics
    port is taken (one relay per RELAY_METRICS_PORT on a host). A 401 from Mixpanel does not
    stop the daemon: it logs, reports it on /healthz and /metrics, leaves rows untouched and
    retries after RELAY_AUTH_FAILURE_PAUSE_SECONDS. Rows waiting for a destination that is not
    configured are left alone: one warning per such destination, at start-up, says how many.
    """
    try:
        code = _run(relay)
    except KeyboardInterrupt:
        # Ctrl-C before the daemon took over SIGINT (while it imports and checks): nothing was
        # claimed yet, so this is the clean stop SIGINT always is: no traceback, exit 0.
        code = _exit.OK
    sys.exit(code)


def _run(relay: Relay) -> int:
    from relay._daemon.daemon import stop_on_signals  # noqa: PLC0415 - APScheduler only here

    # From here on SIGINT/SIGTERM only set ``stop`` (the daemon's own handlers do the same)
    # instead of raising KeyboardInterrupt into the start-up checks, where it would have to
    # cross the database driver, the pool and the HTTP client, none written for it; a stop
    # requested during the checks ends ``relay run`` before the daemon starts.
    stop = threading.Event()
    restore = stop_on_signals(stop)
    try:
        if stop.is_set():  # a signal came before this (relay.__main__ held it)
            return _exit.OK
        return _start(relay, stop)
    finally:
        restore()


def _start(relay: Relay, stop: threading.Event) -> int:
    """``relay run``'s checks, then the daemon; 0 at once when a signal came during the checks."""
    import sqlalchemy as sa  # noqa: PLC0415

    from relay import _migrations  # noqa: PLC0415
    from relay._daemon.daemon import run_daemon  # noqa: PLC0415
    from relay._errors import ConfigurationError, StoreError  # noqa: PLC0415
    from relay._logging import configure_logging  # noqa: PLC0415
    from relay._mixpanel.profiles import require_profile_token  # noqa: PLC0415

    settings = relay.settings
    # Configuration errors are `relay:` lines (exit 3) before the daemon starts logging.
    for name in settings.destination_names():
        settings.for_destination(name).require_mixpanel_credentials()
    # Exit 3 on a schema revision this relay does not run on, or on profile updates waiting
    # without a project token. A database that cannot be reached now is no reason not to
    # start: the daemon rides out the outage and makes the same checks at its first contact,
    # before it claims or deletes anything.
    with relay.engine() as engine:
        try:
            _migrations.require_current_schema(engine)
            require_profile_token(engine, settings)
        except ConfigurationError:
            raise
        except (sa.exc.DBAPIError, StoreError):
            pass
    if stop.is_set():
        return _exit.OK  # Ctrl-C during the checks: nothing was started
    configure_logging(settings)
    try:
        return run_daemon(settings, stop_event=stop)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        _exit.fail(
            f"configuration error: the metrics port {settings.metrics_host}:"
            f"{settings.metrics_port} is already in use (another relay on this host?): give "
            "each relay its own RELAY_METRICS_PORT, or set it to 0 to serve no metrics",
            _exit.CONFIGURATION,
        )


@click.command(epilog=_exit.EXIT_CODES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the totals as JSON.")
@click.option(
    "--max-batches",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many (per destination).",
)
@click.option(
    "--destination",
    default=None,
    metavar="NAME",
    help="Drain only this destination (default: every configured one, side by side).",
)
@pass_relay
def drain(relay: Relay, /, as_json: bool, max_batches: int | None, destination: str | None) -> None:
    """Drain until nothing is due, then exit: for cron-style deployments and scripts.

    Every configured destination (Mixpanel project) is drained side by side, each with its own
    credentials and limits, and reported on its own line when there are several; one whose
    project is down or refuses the credentials never holds back the others.
    Rows whose retry is scheduled later stay for the next run. Exit 0 when everything due was
    delivered (nothing due counts); exit 1 when some due rows were not: none could be delivered
    (Mixpanel unreachable or failing), some went to the dead letters, or some wait for a retry;
    exit 3 when Mixpanel rejects the credentials (rows are left untouched, no attempt is used
    up), the destination is not configured, or the tables are not migrated. Rows waiting for a
    destination that is not configured are left alone: one warning per such destination says
    how many (relay stats lists them too). SIGINT (Ctrl-C) or SIGTERM stops it within moments:
    a request in flight is cut short, every batch claimed and not acked goes back unsent (its
    attempt returned, due at once), and it exits 1.
    """
    from relay._daemon.daemon import stop_on_signals  # noqa: PLC0415
    from relay._daemon.unconfigured import warn_unconfigured_destinations  # noqa: PLC0415
    from relay._delivery.drain import DrainResult  # noqa: PLC0415
    from relay._logging import configure_logging  # noqa: PLC0415
    from relay._mixpanel.profiles import require_profile_token  # noqa: PLC0415

    settings = relay.settings
    configure_logging(settings)
    names = settings.destination_names() if destination is None else (destination,)
    for name in names:
        settings.for_destination(name)  # exit 3 before anything runs: an unknown name
    several = len(settings.destination_names()) > 1 or destination is not None
    # SIGINT or SIGTERM stops the drain as it stops the daemon: requests in flight are cut
    # short and every claimed batch not yet acked goes back unsent, due at once.
    stop = threading.Event()
    restore_signals = stop_on_signals(stop)
    try:
        if stop.is_set():
            # A signal while the command started (relay.__main__ held it): stop before claiming.
            _exit.fail(
                "stopped by a signal before draining: nothing was claimed; run relay drain again",
                _exit.FAILURE,
            )
        with relay.engine(writes=True) as engine:
            require_profile_token(engine, settings)  # exit 3: profile updates wait, no token
            warn_unconfigured_destinations(engine, settings)  # rows no drain here will claim
            results = _drain_side_by_side(engine, settings, names, max_batches, stop)
            total = sum(results.values(), DrainResult())
            empty = total.claimed == 0 and not stop.is_set() and _outbox_is_empty(engine)
    finally:
        restore_signals()
    if as_json:
        import orjson  # noqa: PLC0415

        report = dataclasses.asdict(total)
        if several:
            report["destinations"] = {n: dataclasses.asdict(r) for n, r in results.items()}
        click.echo(orjson.dumps(report).decode())
    elif several:
        for name, result in results.items():
            click.echo(f"{name}: {_totals_line(result)}")
    else:
        click.echo(_totals_line(total))
    if empty:  # the usual cause: the application tracks into another database (file)
        click.echo(
            f"relay: the outbox in {relay.database_redacted()} is empty: nothing was ever "
            "tracked into this database; is RELAY_DATABASE_URL (or --database-url) the "
            "database your application tracks into?",
            err=True,
        )
    _exit_unless_all_delivered(settings, results, total, several=several, stopped=stop.is_set())


def _exit_unless_all_delivered(
    settings: RelaySettings,
    results: dict[str, DrainResult],
    total: DrainResult,
    *,
    several: bool,
    stopped: bool,
) -> None:
    """``relay drain``'s exit: 0 when everything due was delivered, else a one-line reason and
    exit 1 (stopped by a signal, Mixpanel failing or unreachable, rows dead or left for a
    retry), or :class:`MixpanelAuthError` (exit 3) when Mixpanel refused the credentials."""
    from relay._errors import MixpanelAuthError  # noqa: PLC0415

    if stopped:
        _exit.fail(
            "stopped by a signal before everything due was delivered: "
            f"{total.released} claimed events went back unsent, due at once; run relay drain "
            "again to deliver the rest",
            _exit.FAILURE,
        )
    refused = {n: r.auth_error for n, r in results.items() if r.auth_error is not None}
    if refused:
        which = "; ".join(f"{n}: {e}" for n, e in refused.items()) if several else None
        raise MixpanelAuthError(
            f"Mixpanel refused the credentials: {which or next(iter(refused.values()))}"
        )
    failing = [n for n, r in results.items() if r.mixpanel_failing]
    if failing:  # rows were due and none went out: cron must notice
        down = failing[0]
        claimed = sum(results[n].claimed for n in failing)
        where = settings.for_destination(down).mixpanel_base_url
        _exit.fail(
            f"nothing delivered: {claimed} due events could not be sent to {where}"
            + (f" (destination {', '.join(failing)})" if several else "")
            + " (Mixpanel unreachable or failing; they are retried on the next run)",
            _exit.FAILURE,
        )
    # Exit 0 says everything due was delivered; rows lost to the dead letters, or left for a
    # retry, are what cron must notice.
    dead = total.rejected + total.dead_after_max_attempts
    if dead:
        _exit.fail(
            f"{dead} due events went to the dead letters (refused by Mixpanel or out of "
            "attempts): see `relay dead-letters list`",
            _exit.FAILURE,
        )
    if total.retried:
        _exit.fail(
            f"{total.retried} due events could not be delivered yet (Mixpanel failed "
            "transiently); they are retried on a later run",
            _exit.FAILURE,
        )


def _totals_line(result: DrainResult) -> str:
    return (
        f"delivered {result.delivered}, dead {result.rejected + result.dead_after_max_attempts}, "
        f"retry scheduled {result.retried}, released {result.released}"
    )


def _drain_side_by_side(
    engine: Engine,
    settings: RelaySettings,
    names: Sequence[str],
    max_batches: int | None,
    stop: threading.Event,
) -> dict[str, DrainResult]:
    """:func:`_drain_destination` of every destination in ``names``, each on a thread."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415
    from concurrent.futures import wait as wait_for_futures  # noqa: PLC0415

    from relay._daemon.daemon import SIGNAL_POLL_SECONDS  # noqa: PLC0415

    with ThreadPoolExecutor(len(names), thread_name_prefix="relay-drain-dest") as pool:
        futures = {
            name: pool.submit(_drain_destination, engine, settings, name, max_batches, stop)
            for name in names
        }
        # In steps: CPython runs a signal's handler in the main thread only, between two
        # bytecodes, and an unbounded wait would never return to run it.
        while wait_for_futures(futures.values(), timeout=SIGNAL_POLL_SECONDS).not_done:
            pass
    return {name: future.result() for name, future in futures.items()}


def _drain_destination(
    engine: Engine,
    settings: RelaySettings,
    name: str,
    max_batches: int | None,
    stop: threading.Event,
) -> DrainResult:
    """Drain destination ``name`` until nothing of it is due or ``stop`` is set (``relay
    drain``, one thread)."""
    from relay._delivery.drain import DrainResult  # noqa: PLC0415
    from relay._delivery.wiring import open_drainer  # noqa: PLC0415

    total = DrainResult()
    with open_drainer(engine, settings, destination=name, stop=stop) as drainer:
        own = settings.for_destination(name)
        while not stop.is_set():
            left = None if max_batches is None else max_batches - _batches(total, own)
            if left is not None and left <= 0:
                break
            result = drainer.drain_until_idle(max_batches=left)
            total += result
            if result.throttle_seconds > 0 and not result.auth_failing:
                # Mixpanel's rate limit: wait out the shared backoff, then go on draining.
                stop.wait(result.throttle_seconds)
                continue
            # During an outage, going on would use up an attempt on every row of the backlog.
            if result.claimed == 0 or result.auth_failing or result.mixpanel_failing:
                break
    return total


def _outbox_is_empty(engine: Engine) -> bool:
    from relay._store import transaction  # noqa: PLC0415
    from relay._store.stats import outbox_is_empty  # noqa: PLC0415

    with transaction(engine) as conn:
        return outbox_is_empty(conn)


def _batches(total: DrainResult, settings: RelaySettings) -> int:
    return -(-total.claimed // settings.batch_max_events)


@click.command(epilog=_exit.EXIT_CODES_HELP)
@click.option(
    "--keep",
    "keep_url",
    metavar="URL",
    default=None,
    help="Use this database and keep it afterwards (default: a temporary SQLite file).",
)
def demo(keep_url: str | None) -> None:
    """Run the main job end to end on SQLite with a local Mixpanel stand-in; no set-up needed.

    One `[error]` log line is part of the show: an event the contract refuses is logged while
    its business transaction commits; the summary counts it.
    """
    from relay._config import load_settings  # noqa: PLC0415
    from relay._logging import configure_logging  # noqa: PLC0415
    from relay.demos.demo import format_report, run_demo  # noqa: PLC0415 - heavy, demo only

    if keep_url is not None:
        open_engine(keep_url, source="--keep", must_exist=False).dispose()  # URL hints, exit 3
    # Warnings and errors only, readable: the refused event's log line is part of the show.
    configure_logging(load_settings(log_level="WARNING", log_format="console"))
    click.echo(
        "relay demo: the [error] line below is expected: the demo tracks one event the "
        "contract refuses, to show it is logged while the business transaction commits.",
        err=True,
    )
    click.echo(format_report(run_demo(database_url=keep_url)))


COMMANDS: list[click.Command] = [demo, drain, migrate, run]
