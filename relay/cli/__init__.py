"""The ``relay`` command: thin over the library modules, building ``RelaySettings`` once.

Exit codes: 0 success; 1 a runtime failure (database unreachable, ...); 2 bad usage or bad
input (an unknown option, a malformed filter: nothing was changed); 3 a configuration error
(an invalid ``RELAY_*`` setting, missing or rejected Mixpanel credentials).

Every error is one line on stderr, escaped (no control characters) and scrubbed of the secrets
the settings hold: a driver's message that quotes its connection string prints ``***``.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click
import sqlalchemy as sa
from alembic.util import CommandError
from pydantic import ValidationError

from relay._config import RelaySettings
from relay._database import scrub
from relay._errors import ConfigurationError, RelayError
from relay.cli import admin, forget, operations, pause
from relay.cli._output import safe_text
from relay.cli.events import events as events_group

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CONFIGURATION = 3


class _RelayGroup(click.Group):
    """Turns relay's errors into one clear line and a documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigurationError as exc:
            _fail(ctx, f"configuration error: {exc}", EXIT_CONFIGURATION)
        except RelayError as exc:
            _fail(ctx, str(exc), EXIT_FAILURE)
        except sa.exc.SQLAlchemyError as exc:
            # The driver's message may quote the connection string: name the type only.
            cause = getattr(exc, "orig", None) or exc
            _fail(ctx, f"database error: {type(cause).__name__}", EXIT_FAILURE)
        except CommandError as exc:  # Alembic: an unknown revision, a broken history
            _fail(ctx, f"migration error: {exc}", EXIT_USAGE)


def _fail(ctx: click.Context, message: str, code: int) -> NoReturn:
    """One escaped, scrubbed line on stderr, then exit ``code``."""
    settings = ctx.obj if isinstance(ctx.obj, RelaySettings) else None
    if settings is not None:
        message = scrub(message, settings.secret_values())
    click.echo(f"relay: {safe_text(message)}", err=True)
    sys.exit(code)


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
        # Names and rules only: the rejected value may be a secret.
        problems = "; ".join(
            ("RELAY_" + "_".join(str(p) for p in err["loc"]).upper() if err["loc"] else "settings")
            + f": {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)
        )
        click.echo(f"relay: configuration error: invalid settings: {safe_text(problems)}", err=True)
        sys.exit(EXIT_CONFIGURATION)


for command in operations.COMMANDS:
    main.add_command(command)
for command in admin.COMMANDS:
    main.add_command(command)
for command in pause.COMMANDS:
    main.add_command(command)
for command in forget.COMMANDS:
    main.add_command(command)
main.add_command(events_group)
