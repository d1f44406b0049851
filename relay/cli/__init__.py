"""The ``relay`` command: thin over the library, one :class:`relay.cli._context.Relay` per run.

Exit codes (defined once, in :mod:`relay._exit`): 0 success; 1 a runtime failure (database
unreachable; ``relay drain`` did not deliver everything due); 2 bad usage or bad input
(an unknown option, a malformed filter: nothing was changed); 3 configuration (an invalid
``RELAY_*`` setting, a database URL relay cannot use, missing or rejected Mixpanel
credentials, tables missing or at another revision).

Every error is one line on stderr, escaped (no control characters) and scrubbed of the secrets
the settings hold: a driver's message that quotes its connection string prints ``***``.

Start-up stays light: this package and the command modules import click and nothing heavy;
each command imports what it needs when it runs (``bench/cli_startup.py`` measures it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from relay import _exit
from relay._exit import CONFIGURATION as EXIT_CONFIGURATION
from relay._exit import FAILURE as EXIT_FAILURE
from relay._exit import USAGE as EXIT_USAGE
from relay.cli._context import Relay

__all__ = ["EXIT_CONFIGURATION", "EXIT_FAILURE", "EXIT_USAGE", "main"]


class _RelayGroup(click.Group):
    """Turns relay's errors into one clear line and a documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:
            from relay.cli._failures import explain  # noqa: PLC0415

            relay = ctx.find_object(Relay)
            database = relay.database_redacted() if relay is not None else "the database"
            explained = explain(exc, database=database)
            if explained is None:
                raise
            message, code = explained
            if relay is not None:
                from relay._database import scrub  # noqa: PLC0415

                message = scrub(message, relay.secrets())
            _exit.fail(message, code)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("relay-outbox")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"relay {_version()}")
        ctx.exit(0)


@click.group(cls=_RelayGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Print relay's version and exit.",
)
@click.option(
    "--database-url",
    metavar="URL",
    help="Outbox database (SQLAlchemy URL); default: RELAY_DATABASE_URL or sqlite:///relay.db.",
)
@click.pass_context
def main(ctx: click.Context, database_url: str | None) -> None:
    """relay: a transactional outbox that delivers analytics events to Mixpanel.

    Settings come from RELAY_* environment variables, read when a command needs them.
    """
    # A host framework may hand over field values (``manage.py relay``: Django's RELAY
    # settings, with the RELAY_* variables already given precedence) as the context object.
    given = dict(ctx.obj) if isinstance(ctx.obj, Mapping) else {}
    ctx.obj = Relay(database_url=database_url, given=given)


def _add_commands() -> None:
    from relay.cli import (  # noqa: PLC0415
        admin,
        check,
        dead_letters,
        forget,
        operations,
        pause,
        reroute,
        standin,
    )
    from relay.cli.events import events  # noqa: PLC0415

    for command in (
        *operations.COMMANDS,
        *admin.COMMANDS,
        dead_letters.dead_letters,
        *pause.COMMANDS,
        *reroute.COMMANDS,
        *forget.COMMANDS,
        *check.COMMANDS,
        standin.standin,
        events,
    ):
        main.add_command(command)


_add_commands()
