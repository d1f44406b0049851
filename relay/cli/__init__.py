"""The ``relay`` command: thin over the library modules, building ``RelaySettings`` once.

Exit codes: 0 success; 1 a runtime failure (database unreachable, ...); 2 bad usage or bad
input (an unknown option, a malformed filter: nothing was changed); 3 a configuration error
(missing or rejected Mixpanel credentials).
"""

from __future__ import annotations

import sys
from typing import Any

import click
from pydantic import ValidationError

from relay.cli import admin, operations
from relay.cli.events import events as events_group
from relay.config import RelaySettings
from relay.errors import ConfigurationError, RelayError

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CONFIGURATION = 3


class _RelayGroup(click.Group):
    """Turns relay's errors into one clear line and a documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigurationError as exc:
            click.echo(f"relay: configuration error: {exc}", err=True)
            sys.exit(EXIT_CONFIGURATION)
        except RelayError as exc:
            click.echo(f"relay: {exc}", err=True)
            sys.exit(EXIT_FAILURE)


@click.group(cls=_RelayGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database-url",
    metavar="URL",
    help="Outbox database (SQLAlchemy URL); default: RELAY_DATABASE_URL or sqlite:///relay.db.",
)
@click.pass_context
def main(ctx: click.Context, database_url: str | None) -> None:
    """relay: a transactional outbox that delivers analytics events to Mixpanel."""
    try:
        settings = RelaySettings()
        if database_url:
            settings = RelaySettings.model_validate(
                settings.model_dump() | {"database_url": database_url}
            )
        ctx.obj = settings
    except ValidationError as exc:
        fields = ", ".join(
            "RELAY_" + "_".join(str(p) for p in err["loc"]).upper() for err in exc.errors()
        )
        raise click.UsageError(f"invalid settings: {fields}") from None


for command in operations.COMMANDS:
    main.add_command(command)
for command in admin.COMMANDS:
    main.add_command(command)
main.add_command(events_group)
