"""The operator subcommands: ``replay``, ``stats``, ``inspect``, ``purge``, ``export`` and
``audit`` (``dead-letters`` is in :mod:`relay.cli.dead_letters`), thin over :mod:`relay.admin`.

Output is a table by default (drawn by rich on a terminal, plain columns elsewhere) and JSON
with ``--json`` (each result's ``to_json()``; ``export`` writes JSON Lines). Mutating commands
are dry runs unless given ``--yes`` (``purge`` runs unless given ``--dry-run``) and write an
audit entry naming ``--actor`` (default: the OS user).

Filters (``replay``, ``export``, ``dead-letters requeue|discard``): every option given must
match, repeated options match any of their values. ``--organization ID`` selects an
organization's rows as ``relay reroute`` does (an event's ``organization_id``, an organization
group's id, a user profile update setting ``organization_id``). Instants are ISO 8601 *with* a
UTC offset (``2026-03-01T00:00:00Z``) or a duration before now (``12h``, ``7d``, ``1d12h``);
times without an offset are refused, not guessed. ``--event-time-*`` bound the event's own
``time``, ``--created-*`` when the row was written; ``*-after`` is inclusive, ``*-before``
exclusive.

Exit codes: see :mod:`relay._exit`. Bad input exits 2 with nothing changed and nothing
audited; a database failure exits 1 (batches already committed stay done and are counted in
the audit entry).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

from relay._exit import EXIT_CODES_HELP
from relay.cli import _render
from relay.cli._batched import preview_or_execute
from relay.cli._context import Relay, echo_json, pass_relay
from relay.cli._files import open_output
from relay.cli._params import (
    DESTINATION,
    DURATION,
    MAX_BATCH_SIZE,
    RunOptions,
    Selection,
    run_options,
    selection_options,
)

if TYPE_CHECKING:
    from relay.admin import EventDetail

#: Audit entries ``relay audit`` may list, and the default.
MAX_AUDIT_LIMIT = 100_000
DEFAULT_AUDIT_LIMIT = 20
#: Rows per purge transaction by default (``relay._config.PURGE_BATCH_SIZE``).
PURGE_BATCH_SIZE = 5000

FILTER_HELP = (
    "WHEN is ISO 8601 with a UTC offset (2026-03-01T00:00:00Z, 2026-03-01T09:00+09:00) or a "
    "duration before now (30m, 12h, 7d, 1d12h); times without an offset are refused, not "
    "guessed. *-after is inclusive, *-before exclusive. Repeated options match any value; "
    "different options must all match. An empty filter needs --all. " + EXIT_CODES_HELP
)


@click.command(epilog=FILTER_HELP)
@selection_options(with_state=True)
@run_options
@pass_relay
def replay(relay: Relay, /, *, selection: Selection, run: RunOptions) -> None:
    """Re-queue selected events for the relay, keeping their time and $insert_id.

    A dry run (count, breakdown by event and state, sample) unless --yes. Executed, the rows
    become pending and due now with attempts reset, in batches of --batch-size rows, each one
    atomic: an interrupted replay leaves every row replayed or untouched. Events a relay is
    sending right now are skipped and reported. Mixpanel deduplicates events it already holds.
    """
    from relay.admin._replay import preview  # noqa: PLC0415
    from relay.admin._replay import replay as run_replay  # noqa: PLC0415

    preview_or_execute(
        relay,
        selection,
        run,
        verb="replay",
        done="replayed",
        preview=preview,
        execute=run_replay,
    )


@click.command(epilog=EXIT_CODES_HELP)
@click.option(
    "--destination",
    type=DESTINATION,
    default=None,
    help="Only the rows going to this destination (Mixpanel project).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON output, for scripts and monitoring.")
@pass_relay
def stats(relay: Relay, /, *, destination: str | None, as_json: bool) -> None:
    """Backlog numbers: pending, due, oldest age, in flight, dead by reason, delivered recently.

    Cheap on any table size: every number is read through an index. With rows going to more
    than one destination, a table per destination follows (or use --destination NAME). Rows
    waiting for a destination that is not configured (no relay with these settings delivers
    them) are listed last.
    """
    from relay.admin._stats import stats as read_stats  # noqa: PLC0415

    configured = relay.settings.destination_names()
    with relay.engine() as engine:
        s = read_stats(engine, now=relay.now, destination=destination, configured=configured)

    def text() -> None:
        if s.destination is not None:
            click.echo(f"destination {s.destination}:")
        _render.table(
            ("", ""),
            [
                ("pending", s.pending),
                ("due now", s.due),
                ("in flight (leased)", s.inflight),
                ("oldest pending age", _render.age(s.oldest_pending_age_seconds)),
                ("dead", s.dead),
                ("delivered, last hour", s.delivered_last_hour),
                ("delivered, last day", s.delivered_last_day),
                ("delivery rate, last minute", f"{s.delivery_rate:,.1f} events/s"),
            ],
        )
        if s.throttle is not None:
            click.echo(
                f"\nMixpanel is rate-limiting the project (HTTP 429): backoff level "
                f"{s.throttle.level} until {_render.when(s.throttle.until)}, booked by "
                f"{s.throttle.actor}; no attempt is used, the relays slow down."
            )
        if s.dead_by_reason:
            click.echo("\ndead by reason:")
            _render.table(("COUNT", "REASON"), [(n, r) for r, n in s.dead_by_reason.items()])
        if s.paused:
            click.echo("\npaused (relay resume lifts a pause):")
            _render.table(
                ("WHAT", "SINCE", "BY", "REASON"),
                [
                    (
                        _paused_what(p.event, p.destination),
                        _render.when(p.paused_at),
                        p.actor,
                        p.reason,
                    )
                    for p in s.paused
                ],
            )
        if s.pending_by_event:
            click.echo("\npending by event:")
            _render.table(("COUNT", "EVENT"), [(n, e) for e, n in s.pending_by_event.items()])
        if len(s.by_destination) > 1:
            click.echo("\nby destination (relay stats --destination NAME for one):")
            _render.table(
                ("DESTINATION", "PENDING", "DUE", "IN FLIGHT", "DEAD", "DELIVERED, LAST HOUR"),
                [
                    (d.destination, d.pending, d.due, d.inflight, d.dead, d.delivered_recently)
                    for d in s.by_destination
                ],
            )
        if s.pending_by_unconfigured_destination:
            click.echo(
                "\nwaiting for a destination that is not configured (no relay with these "
                "settings delivers them; configure it, or move them with relay reroute):"
            )
            _render.table(
                ("PENDING", "DESTINATION"),
                [(n, d) for d, n in s.pending_by_unconfigured_destination.items()],
            )

    relay.emit(s, as_json=as_json, text=text)


def _paused_what(event: str | None, destination: str | None) -> str:
    if destination is not None:
        return f"destination {destination}"
    return event or "all delivery"


def echo_detail(d: EventDetail) -> None:
    """One row in full, its properties, and the exact ``/import`` JSON the relay sends."""
    from relay.cli._output import dumps, safe_json, safe_text  # noqa: PLC0415

    for key, value in d.row.to_json().items():
        click.echo(f"{key:<16} {'-' if value is None else safe_text(value)}")
    click.echo(f"{'properties':<16} {dumps(d.properties)}")
    if d.import_json is None:
        click.echo(f"\nthe relay cannot send this event: {safe_text(d.encode_error)}")
    else:
        click.echo("\nthe /import event the relay sends, byte for byte:")
        click.echo(safe_json(d.import_json))


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("key", metavar="ID|INSERT_ID")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@pass_relay
def inspect(relay: Relay, /, key: str, as_json: bool) -> None:
    """One event by outbox id or $insert_id: its row, and the exact JSON the relay sends.

    Write id:N or insert_id:X when a numeric $insert_id could also be an id. With --json,
    import_json is that exact text and import_event the same, parsed.
    """
    from relay.admin._inspection import inspect_event  # noqa: PLC0415

    with relay.engine() as engine:
        detail = inspect_event(engine, key)
    relay.emit(detail, as_json=as_json, text=lambda: echo_detail(detail))


@click.command(epilog=EXIT_CODES_HELP)
@click.option("--delivered-older-than", type=DURATION, help="Delete delivered rows older.")
@click.option("--dead-older-than", type=DURATION, help="Delete dead rows older.")
@click.option(
    "--destination",
    type=DESTINATION,
    default=None,
    help="Only rows going to this destination (Mixpanel project).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; change nothing.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1, max=MAX_BATCH_SIZE),
    default=PURGE_BATCH_SIZE,
    show_default=True,
    help="Rows per transaction.",
)
@click.option("--actor", help="Who to name in the audit trail (default: OS user).")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@pass_relay
def purge(
    relay: Relay,
    /,
    *,
    delivered_older_than: dt.timedelta | None,
    dead_older_than: dt.timedelta | None,
    destination: str | None,
    dry_run: bool,
    batch_size: int,
    actor: str | None,
    as_json: bool,
) -> None:
    """Delete delivered and dead rows finished longer ago than a window (7d, 12h, 30m).

    Pending rows are never touched. Bounded batches, one short transaction each.
    """
    from relay.admin._retention import purge as run_purge  # noqa: PLC0415

    with (
        relay.engine(writes=True) as engine,
        _render.counter("purge", quiet=as_json or dry_run) as add,
    ):
        result = run_purge(
            engine,
            now=relay.now,
            delivered_older_than=delivered_older_than,
            dead_older_than=dead_older_than,
            batch_size=batch_size,
            dry_run=dry_run,
            actor=actor,
            on_batch=None if add is None else lambda _state, n: add(n),
            destination=destination,
        )

    def text() -> None:
        verb = "would delete" if dry_run else "deleted"
        for state, n, before in (
            ("delivered", result.delivered, result.delivered_before),
            ("dead", result.dead, result.dead_before),
        ):
            if before is not None:
                to = "" if destination is None else f" going to {destination}"
                click.echo(f"{verb} {n} {state} rows{to} finished before {_render.when(before)}")
        click.echo(
            "dry run: nothing was changed." if dry_run else f"audit entry #{result.audit_id}."
        )

    relay.emit(result, as_json=as_json, text=text)


class _CountingWriter:
    """Passes bytes on to ``out`` and reports each write's lines to ``add``."""

    def __init__(self, out: IO[bytes], add: object) -> None:
        self._out = out
        self._add = add

    def write(self, data: bytes) -> int:
        n = self._out.write(data)
        if callable(self._add):
            self._add(data.count(b"\n"))
        return n


@click.command(epilog=FILTER_HELP)
@selection_options(with_state=True)
@click.option(
    "--output",
    type=click.Path(path_type=Path),  # checked by open_output: one line, exit 2
    help="File (default: stdout).",
)
@pass_relay
def export(relay: Relay, /, *, selection: Selection, output: Path | None) -> None:
    """Selected events as JSON Lines, each line an event exactly as the relay sends it to /import.

    Streamed in keyset pages: memory does not grow with the selection. With --output on a
    terminal, a counter on stderr shows the rows written.
    """
    from relay.admin._inspection import export_events  # noqa: PLC0415

    f, allow_all = selection.filter, selection.allow_all
    with relay.engine() as engine:
        if output is None:
            export_events(engine, f, sys.stdout.buffer, allow_all=allow_all)
            return
        with (
            open_output(output, option="--output") as out,
            _render.counter("export", quiet=False) as add,
        ):
            sink = out if add is None else _CountingWriter(out, add)
            n = export_events(engine, f, sink, allow_all=allow_all)  # type: ignore[arg-type]
    click.echo(f"exported {n} events to {output}", err=True)


@click.command(epilog=EXIT_CODES_HELP)
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=MAX_AUDIT_LIMIT),
    default=DEFAULT_AUDIT_LIMIT,
    show_default=True,
    help="Newest entries to show.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@pass_relay
def audit(relay: Relay, /, limit: int, as_json: bool) -> None:
    """The audit trail: who replayed, requeued, discarded or purged what, when, how many."""
    from relay.admin._audit import audit_entries  # noqa: PLC0415
    from relay.cli._output import dumps  # noqa: PLC0415

    with relay.engine() as engine:
        entries = audit_entries(engine, limit=limit)
    if as_json:
        echo_json([e.to_json() for e in entries])
        return
    _render.table(
        ("ID", "AT", "ACTOR", "ACTION", "COUNT", "FILTER", "DETAIL"),
        [
            (e.id, _render.when(e.at), e.actor, e.action, e.count, dumps(e.filter), e.detail)
            for e in entries
        ],
    )


COMMANDS: list[click.Command] = [replay, stats, inspect, purge, export, audit]
