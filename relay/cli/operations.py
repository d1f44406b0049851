"""``relay migrate``, ``run``, ``drain`` and ``demo``: running the relay."""

from __future__ import annotations

import contextlib
import dataclasses
import sys

import click
import orjson
import sqlalchemy as sa

from relay import _migrations
from relay._config import RelaySettings
from relay._database import create_engine, redact_url
from relay._errors import MixpanelAuthError

#: Exit code of a configuration error (the same as ``relay.cli.EXIT_CONFIGURATION``).
EXIT_CONFIGURATION = 3


@click.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.pass_obj
def migrate(settings: RelaySettings, revision: str) -> None:
    """Create or upgrade relay's tables (its own Alembic history, relay_alembic_version)."""
    engine = create_engine(settings.database_url.get_secret_value())
    try:
        _migrations.upgrade(engine, revision)
    finally:
        engine.dispose()
    click.echo(f"relay tables at revision {revision} in {redact_url(engine.url)}")


@click.command()
@click.pass_obj
def run(settings: RelaySettings) -> None:
    """Run the relay daemon until SIGTERM/SIGINT (finishes the batch in flight, exit 0).

    Exit 3 when the Mixpanel settings are unusable. A 401 from Mixpanel does not stop the
    daemon: it logs, reports it on /healthz and /metrics, leaves rows untouched and retries
    after RELAY_AUTH_FAILURE_PAUSE_SECONDS.
    """
    from relay._daemon.daemon import run_daemon  # noqa: PLC0415 - APScheduler only for this command
    from relay._logging import configure_logging  # noqa: PLC0415

    configure_logging(settings)
    # Exit 3 on a schema revision this relay does not run on. A database that cannot be
    # reached now is no reason not to start: the daemon rides out the outage and makes the same
    # check at its first contact, before it claims or deletes anything.
    with contextlib.suppress(sa.exc.DBAPIError):
        _migrations.require_current_schema(settings.database_url.get_secret_value())
    sys.exit(run_daemon(settings))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the totals as JSON.")
@click.option(
    "--max-batches", type=click.IntRange(min=1), default=None, help="Stop after this many."
)
@click.pass_obj
def drain(settings: RelaySettings, as_json: bool, max_batches: int | None) -> None:
    """Drain until nothing is due, then exit: for cron-style deployments and scripts.

    Rows whose retry is scheduled later stay for the next run. Exit 0 when done; exit 3 when
    Mixpanel rejects the credentials (rows are left untouched, no attempt is used up).
    """
    from relay._delivery.drain import Drainer, DrainResult  # noqa: PLC0415 - keep `relay --help` fast
    from relay._delivery.mixpanel_client import MixpanelImportClient  # noqa: PLC0415
    from relay._delivery.profiles import require_profile_token  # noqa: PLC0415
    from relay._logging import configure_logging  # noqa: PLC0415

    configure_logging(settings)
    engine = create_engine(settings.database_url.get_secret_value())
    total = DrainResult()
    try:
        _migrations.require_current_schema(engine)  # exit 3 on a revision mismatch
        require_profile_token(engine, settings)  # exit 3: profile updates wait, no token
        with MixpanelImportClient(settings) as client:
            drainer = Drainer(engine, client, settings, concurrency=settings.drain_concurrency)
            while True:
                left = None if max_batches is None else max_batches - _batches(total, settings)
                if left is not None and left <= 0:
                    break
                result = drainer.drain_until_idle(max_batches=left)
                total += result
                # During an outage, going on would use up an attempt on every row of the backlog.
                if result.claimed == 0 or result.auth_failing or result.mixpanel_failing:
                    break
    finally:
        engine.dispose()
    summary = dataclasses.asdict(total)
    if as_json:
        click.echo(orjson.dumps(summary).decode())
    else:
        click.echo(
            f"delivered {total.delivered}, dead {total.rejected + total.dead_after_max_attempts}, "
            f"retry scheduled {total.retried}, released {total.released}"
        )
    if total.auth_error is not None:
        raise MixpanelAuthError(f"Mixpanel refused the credentials: {total.auth_error}")


def _batches(total: object, settings: RelaySettings) -> int:
    claimed = int(getattr(total, "claimed", 0))
    return -(-claimed // settings.batch_max_events)


@click.command()
@click.option(
    "--keep",
    "keep_url",
    metavar="URL",
    default=None,
    help="Use this database and keep it afterwards (default: a temporary SQLite file).",
)
def demo(keep_url: str | None) -> None:
    """Run the main job end to end on SQLite with a local Mixpanel stand-in; no set-up needed."""
    from relay._logging import configure_logging  # noqa: PLC0415
    from relay.demos.demo import format_report, run_demo  # noqa: PLC0415 - heavy, demo only

    # Warnings and errors only, readable: the refused event's log line is part of the show.
    configure_logging(RelaySettings(log_level="WARNING", log_format="console"))
    click.echo(format_report(run_demo(database_url=keep_url)))


COMMANDS: list[click.Command] = [demo, drain, migrate, run]
