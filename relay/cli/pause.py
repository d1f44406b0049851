"""``relay pause`` and ``relay resume``: stop and restart delivery without stopping the relays.

A pause covers all delivery or, with ``--event``, one event name, or, with ``--destination``,
every row going to one destination (a Mixpanel project); the relays keep running and
pass over the rows it covers, which stay exactly as they were. Both commands are audited
(``relay audit`` shows actions ``pause`` and ``resume``); ``relay stats``, ``/metrics`` and
``/healthz`` show what is paused.

Exit codes: 0 done (also when there was nothing to change: the output says so); 2 bad input (a
malformed event name, an empty reason); 3 the database's schema is not this relay's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from relay._exit import EXIT_CODES_HELP
from relay.cli._context import Relay, pass_relay

if TYPE_CHECKING:
    from relay.admin.pauses import PauseChange

_EVENT = click.option(
    "--event", metavar="NAME", default=None, help="One event name (default: all delivery)."
)
_DESTINATION = click.option(
    "--destination",
    metavar="NAME",
    default=None,
    help="One destination, a configured Mixpanel project (default: all delivery).",
)
_ACTOR = click.option("--actor", help="Who to name in the audit trail (default: OS user).")
_JSON = click.option("--json", "as_json", is_flag=True, help="JSON output, for scripts.")


def _what(event: str | None, destination: str | None = None) -> str:
    if destination is not None:
        return f"delivery to destination {destination}"
    return "all delivery" if event is None else f"delivery of {event}"


def configured_destination(relay: Relay, name: str | None, *, option: str) -> str | None:
    """``name`` when it is a configured destination (or ``None``); else a one-line
    :class:`FilterError` (exit 2) naming the configured ones."""
    if name is None:
        return None
    from relay._errors import FilterError  # noqa: PLC0415
    from relay.admin.pauses import check_destination_name  # noqa: PLC0415

    check_destination_name(name, option=option)
    names = relay.settings.destination_names()
    if name not in names:
        raise FilterError(
            f"{option}: unknown destination {name!r}: the configured ones are {', '.join(names)}",
            field="destination",
        )
    return name


@click.command(epilog=EXIT_CODES_HELP)
@_EVENT
@_DESTINATION
@click.option("--reason", required=True, help="Why (kept in the pause and the audit trail).")
@_ACTOR
@_JSON
@pass_relay
def pause(
    relay: Relay,
    /,
    *,
    event: str | None,
    destination: str | None,
    reason: str,
    actor: str | None,
    as_json: bool,
) -> None:
    """Pause delivery (all of it, one event's, or one destination's): relays keep running but
    send none of it.

    Paused rows stay pending and due, attempts untouched; `relay resume` lifts the pause.
    Pausing what is already paused keeps the first pause and its reason. `relay stats` lists
    the pauses in force.
    """
    from relay.admin import pauses  # noqa: PLC0415 - keep `relay --help` fast

    destination = configured_destination(relay, destination, option="--destination")
    with relay.engine(writes=True) as engine:  # exit 3 on a foreign revision, 2 on bad input
        change = pauses.pause(
            engine,
            event=event,
            reason=reason,
            actor=actor,
            now=relay.now,
            destination=destination,
        )
    _report(change, as_json=as_json, done="paused", undone="was already paused")


@click.command(epilog=EXIT_CODES_HELP)
@_EVENT
@_DESTINATION
@_ACTOR
@_JSON
@pass_relay
def resume(
    relay: Relay,
    /,
    *,
    event: str | None,
    destination: str | None,
    actor: str | None,
    as_json: bool,
) -> None:
    """Lift a pause set by `relay pause` (the same --event or --destination, or neither for
    all delivery)."""
    from relay.admin import pauses  # noqa: PLC0415 - keep `relay --help` fast

    with relay.engine(writes=True) as engine:
        # Not checked against the configuration: a pause of a destination since removed from
        # it must still be liftable.
        change = pauses.resume(
            engine, event=event, actor=actor, now=relay.now, destination=destination
        )
    _report(change, as_json=as_json, done="resumed", undone="was not paused")


def _report(change: PauseChange, *, as_json: bool, done: str, undone: str) -> None:
    from relay.cli._output import dumps, safe_text  # noqa: PLC0415

    if as_json:
        click.echo(
            dumps(
                {
                    "event": change.event,
                    "destination": change.destination,
                    "changed": change.changed,
                    "pause": None if change.pause is None else change.pause.to_json(),
                }
            )
        )
        return
    line = f"{_what(change.event, change.destination)} {done if change.changed else undone}"
    if change.pause is not None:
        line += f" (since {change.pause.paused_at.isoformat()}, by {change.pause.actor}: "
        line += f"{change.pause.reason})"
    click.echo(safe_text(line))


COMMANDS: list[click.Command] = [pause, resume]
