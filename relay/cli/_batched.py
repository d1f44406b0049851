"""The shape every batched operator command shares: a dry run unless ``--yes``, else audited
batches with progress, then one summary (``replay``, ``dead-letters requeue|discard``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from relay.cli import _render
from relay.cli._context import Relay
from relay.cli._params import RunOptions, Selection

if TYPE_CHECKING:
    from relay.admin import BatchResult, Preview, StoredRow

#: ``preview(engine, filter, now=, allow_all=, sample_size=)``
PreviewStep = Callable[..., "Preview"]
#: ``execute(engine, filter, now=, actor=, allow_all=, batch_size=, on_batch=)``
ExecuteStep = Callable[..., "BatchResult"]


def preview_or_execute(
    relay: Relay,
    selection: Selection,
    run: RunOptions,
    *,
    verb: str,
    done: str,
    preview: PreviewStep,
    execute: ExecuteStep,
    **extra: Any,
) -> None:
    """A dry run through ``preview`` unless ``--yes``, else ``execute`` in audited batches
    (``extra`` keyword arguments go to ``execute``, such as a discard's reason)."""
    now = relay.now
    with relay.engine(writes=True) as engine:
        if not run.yes:
            p = preview(
                engine,
                selection.filter,
                now=now,
                allow_all=selection.allow_all,
                sample_size=run.sample,
            )
            relay.emit(p, as_json=run.as_json, text=lambda: echo_preview(p, verb=verb))
            return
        with _render.progress(verb, lines=run.progress, quiet=run.as_json) as on_batch:
            result = execute(
                engine,
                selection.filter,
                now=now,
                actor=run.actor,
                allow_all=selection.allow_all,
                batch_size=run.batch_size,
                on_batch=on_batch,
                **extra,
            )
    if run.as_json:
        from relay.cli._context import echo_json  # noqa: PLC0415

        echo_json(result.to_json(done=done))
        return
    echo_batches(result, done=done)


def echo_rows(rows: Sequence[StoredRow]) -> None:
    """Rows as a table, one line each."""
    from relay._event.properties import timestamp_ms_to_datetime  # noqa: PLC0415

    _render.table(
        ("ID", "EVENT", "STATE", "ATTEMPTS", "DISTINCT_ID", "TIME", "INSERT_ID", "LAST_ERROR"),
        [
            (
                r.event.id,
                r.event.event,
                r.state.value,
                r.event.attempts,
                r.event.distinct_id,
                _render.when(timestamp_ms_to_datetime(r.event.time_ms)),
                r.event.insert_id,
                _render.short(r.last_error),
            )
            for r in rows
        ],
    )


def echo_preview(p: Preview, *, verb: str) -> None:
    """A dry run's answer: count, breakdown, sample."""
    leased = f" ({p.leased} leased by a relay right now would be skipped)" if p.leased else ""
    kinds = p.kinds
    if kinds.profile_updates:
        stale = ""
        if kinds.superseded and verb != "discard":
            stale = (
                f" ({kinds.superseded} superseded by a later update of the same profile "
                f"would be skipped, never re-sent, so no profile goes back in time)"
            )
        click.echo(
            f"dry run: {p.count} rows match{leased}: {kinds.events} events, "
            f"{kinds.profile_updates} profile updates{stale}; nothing was changed."
        )
    else:
        click.echo(f"dry run: {p.count} events match{leased}; nothing was changed.")
    if not p.count:
        return
    click.echo(f"Run again with --yes to {verb} them.\n")
    _render.table(
        ("EVENT", "STATE", "COUNT", "LEASED"),
        [(b.event, b.state.value, b.count, b.leased) for b in p.breakdown],
    )
    click.echo(f"\nsample (first {len(p.sample)} by id):")
    echo_rows(p.sample)


def echo_batches(result: BatchResult, *, done: str) -> None:
    """An executed operation's summary."""
    batches = "batch" if result.batches == 1 else "batches"
    click.echo(f"{done} {result.changed} events in {result.batches} {batches}.")
    if result.superseded:
        click.echo(
            f"not re-sent: {result.superseded} profile updates a later update of the same "
            "profile superseded (re-sent, they would put the profile back in time)."
        )
    if result.skipped:
        click.echo(
            f"skipped {result.skipped} events leased by a running relay or changed by one "
            "meanwhile (left alone; run the same command again once their lease has ended)."
        )
    click.echo(f"audit entry #{result.audit_id}.")
