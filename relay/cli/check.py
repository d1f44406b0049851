"""``relay check``: does each destination's project take its credentials, in its region?

One line per destination: its name, region, ingestion base URL, project id, and ``ok`` (on
stdout) or the problem (on stderr, ``relay: destination 'eu' ...``). The calls it makes and how
their answers are read: :mod:`relay._mixpanel.check`. It needs no database.

Exit codes: 0 every destination checked is ok; 1 a destination could not be checked (no
answer, 429, 5xx) and none is misconfigured; 2 bad usage (an unknown ``--destination``);
3 a destination's credentials are missing or refused, or its project is not in its region
(or the settings are invalid).
"""

from __future__ import annotations

import sys

import click

from relay import _exit
from relay._exit import EXIT_CODES_HELP
from relay.cli._context import Relay, echo_json, pass_relay


@click.command(epilog=EXIT_CODES_HELP)
@click.option(
    "--destination",
    metavar="NAME",
    default=None,
    help="Check this destination only (default: every configured one).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON output, for scripts.")
@pass_relay
def check(relay: Relay, /, destination: str | None, as_json: bool) -> None:
    """Check each destination's credentials and region against Mixpanel, printing no secret.

    For each destination (`default` is RELAY_MIXPANEL_*; more from RELAY_DESTINATIONS_FILE):
    with a service account, Lexicon's read-only `GET /projects/{id}/schemas/event` at the
    region's app API (401: credentials refused; 403: no access to the project; 404: the
    project lives in another region); then an empty batch to the region's `/import` (nothing
    is ingested; 401: credentials refused or wrong region). A project token alone is checked
    at `/import` only.
    """
    from relay._mixpanel.check import check_destination  # noqa: PLC0415 - keep --help fast
    from relay._mixpanel.http import MixpanelHttp  # noqa: PLC0415
    from relay.cli._output import safe_text  # noqa: PLC0415

    settings = relay.settings
    names = settings.destination_names()
    if destination is not None:
        if destination not in names:
            _exit.fail(
                f"unknown destination {safe_text(destination[:64])!r}: the configured ones "
                f"are {', '.join(names)}",
                _exit.USAGE,
            )
        names = (destination,)
    results = []
    with MixpanelHttp(settings) as http:
        for name in names:
            results.append(check_destination(settings.for_destination(name), name, http=http))
    if as_json:
        echo_json({"destinations": [r.to_json() for r in results]})
    else:
        for result in results:
            where = f"region {result.region}, {result.base_url}, project {result.project_id or '-'}"
            if result.ok:
                click.echo(safe_text(f"{result.name}: {where}: ok ({result.scope})"))
            else:
                click.echo(
                    safe_text(f"relay: destination {result.name!r} ({where}): {result.problem}"),
                    err=True,
                )
    sys.stdout.flush()
    if any(not r.ok and r.configuration for r in results):
        sys.exit(_exit.CONFIGURATION)
    if any(not r.ok for r in results):
        sys.exit(_exit.FAILURE)


COMMANDS: list[click.Command] = [check]
