"""``relay reroute``: move an organization's undelivered rows to another destination.

For the day a customer moves region (see :mod:`relay.admin._reroute`): a dry run unless
``--yes`` (counts by kind, state and current destination, and a sample), then audited batches.
Delivered rows are never moved; rows a relay is sending right now are skipped and reported.

Exit codes: 0 done (or a dry run); 2 bad input (an empty organization, ``--to`` not a
configured destination); 3 the database's schema is not this relay's.
"""

from __future__ import annotations

import click

from relay._exit import EXIT_CODES_HELP
from relay.cli import _render
from relay.cli._batched import echo_batches, echo_rows
from relay.cli._context import Relay, echo_json, pass_relay
from relay.cli._params import RunOptions, run_options
from relay.cli.pause import configured_destination


@click.command(epilog=EXIT_CODES_HELP)
@click.option("--organization", required=True, metavar="ID", help="The organization's id.")
@click.option(
    "--to", "to", required=True, metavar="NAME", help="The configured destination to move to."
)
@run_options
@pass_relay
def reroute(relay: Relay, /, *, organization: str, to: str, run: RunOptions) -> None:
    """Move an organization's pending and dead rows to destination NAME (a dry run unless --yes).

    The organization is an event's organization_id property, a group profile update's group id
    (group key organization_id), or the organization_id a user profile update sets. Delivered
    rows stay where they went; rows a relay is sending right now are skipped (run again once
    their lease has ended). Audited as "reroute".
    """
    from relay.admin._reroute import preview_reroute  # noqa: PLC0415
    from relay.admin._reroute import reroute as run_reroute  # noqa: PLC0415
    from relay.cli._output import safe_text  # noqa: PLC0415

    checked = configured_destination(relay, to, option="--to")
    assert checked is not None
    with relay.engine(writes=True) as engine:
        if not run.yes:
            p = preview_reroute(
                engine, organization=organization, to=checked, now=relay.now, sample_size=run.sample
            )

            def text() -> None:
                leased = (
                    f" ({p.leased} leased by a relay right now would be skipped)"
                    if p.leased
                    else ""
                )
                click.echo(
                    safe_text(
                        f"dry run: {p.count} undelivered rows of organization "
                        f"{_render.short(organization)} would move to {checked}{leased}; "
                        "nothing was changed."
                    )
                )
                if not p.count:
                    return
                click.echo("Run again with --yes to move them.\n")
                _render.table(
                    ("KIND", "STATE", "FROM", "COUNT", "LEASED"),
                    [(g.kind, g.state, g.destination, g.count, g.leased) for g in p.groups],
                )
                click.echo(f"\nsample (first {len(p.sample)} by id):")
                echo_rows(p.sample)

            relay.emit(p, as_json=run.as_json, text=text)
            return
        with _render.progress("reroute", lines=run.progress, quiet=run.as_json) as on_batch:
            result = run_reroute(
                engine,
                organization=organization,
                to=checked,
                now=relay.now,
                actor=run.actor,
                batch_size=run.batch_size,
                on_batch=on_batch,
            )
    if run.as_json:
        echo_json(result.to_json(done="moved"))
        return
    echo_batches(result, done=f"moved to {checked}:")


COMMANDS: list[click.Command] = [reroute]
