"""``relay dead-letters list|show|requeue|discard``: events Mixpanel refused or that ran out of
attempts, grouped by reason; thin over :mod:`relay.admin._dead_letters`."""

from __future__ import annotations

import click

from relay._exit import EXIT_CODES_HELP
from relay.cli import _render
from relay.cli._batched import preview_or_execute
from relay.cli._context import Relay, echo_json, pass_relay
from relay.cli._params import (
    DESTINATION,
    RunOptions,
    Selection,
    run_options,
    selection_options,
)
from relay.cli.admin import FILTER_HELP, echo_detail


@click.group("dead-letters")
def dead_letters() -> None:
    """Dead letters: events Mixpanel refused or that ran out of attempts."""


@dead_letters.command("list", epilog=EXIT_CODES_HELP)
@click.option(
    "--destination",
    type=DESTINATION,
    default=None,
    help="Only dead letters going to this destination (Mixpanel project).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@pass_relay
def dead_letters_list(relay: Relay, /, *, destination: str | None, as_json: bool) -> None:
    """Dead letters grouped by reason: count, first and last seen, events."""
    from relay.admin._dead_letters import dead_letters as groups_of  # noqa: PLC0415

    with relay.engine() as engine:
        groups = groups_of(engine, destination=destination)
    if as_json:
        echo_json([g.to_json() for g in groups])
        return
    if not groups:
        click.echo("no dead letters.")
        return
    _render.table(
        ("COUNT", "FIRST SEEN", "LAST SEEN", "EVENTS", "REASON"),
        [
            (
                g.count,
                _render.when(g.first_at),
                _render.when(g.last_at),
                ", ".join(f"{e} ({n})" for e, n in g.events.items()),
                g.reason,
            )
            for g in groups
        ],
    )
    more = "" if destination is None else f" --destination {destination}"
    click.echo(f'\nrequeue a group: relay dead-letters requeue --error "REASON"{more} --yes')


@dead_letters.command("show", epilog=EXIT_CODES_HELP)
@click.argument("key", metavar="ID|INSERT_ID")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@pass_relay
def dead_letters_show(relay: Relay, /, key: str, as_json: bool) -> None:
    """One dead letter in full, by outbox id or $insert_id."""
    from relay.admin._dead_letters import show_dead_letter  # noqa: PLC0415

    with relay.engine() as engine:
        detail = show_dead_letter(engine, key)
    relay.emit(detail, as_json=as_json, text=lambda: echo_detail(detail))


@dead_letters.command("requeue", epilog=FILTER_HELP)
@selection_options(with_state=False)
@run_options
@pass_relay
def dead_letters_requeue(relay: Relay, /, *, selection: Selection, run: RunOptions) -> None:
    """Replay dead letters: a group (--error REASON, as `dead-letters list` shows it) or filters.

    A dry run unless --yes. Audited as "requeue".
    """
    from relay.admin._dead_letters import (  # noqa: PLC0415
        preview_dead_letters,
        requeue_dead_letters,
    )

    preview_or_execute(
        relay,
        selection,
        run,
        verb="requeue",
        done="requeued",
        preview=preview_dead_letters,
        execute=requeue_dead_letters,
    )


@dead_letters.command("discard", epilog=FILTER_HELP)
@click.option("--reason", required=True, metavar="WHY", help="Why they are dropped (audited).")
@selection_options(with_state=False)
@run_options
@pass_relay
def dead_letters_discard(
    relay: Relay, /, *, reason: str, selection: Selection, run: RunOptions
) -> None:
    """Delete dead letters for good; select them with --error (a group's reason) or filters.

    A dry run unless --yes. --reason says why; the audit trail keeps it with the count.
    """
    from relay.admin._dead_letters import (  # noqa: PLC0415
        discard_dead_letters,
        preview_dead_letters,
    )

    preview_or_execute(
        relay,
        selection,
        run,
        verb="discard",
        done="discarded",
        preview=preview_dead_letters,
        execute=discard_dead_letters,
        reason=reason,
    )
