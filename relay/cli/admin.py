"""The operator subcommands: ``replay``, ``dead-letters``, ``stats``, ``inspect``, ``purge``,
``export`` and ``audit``, thin over :mod:`relay.admin`.

Output is a human-readable table by default and JSON with ``--json`` (``export`` writes JSON
Lines). Mutating commands are dry runs unless given ``--yes`` (``purge`` runs unless given
``--dry-run``) and write an audit entry naming ``--actor`` (default: the OS user).

Filters (``replay``, ``export``, ``dead-letters requeue|discard``): every option given must
match, repeated options match any of their values. Instants are ISO 8601 *with* a UTC offset
(``2026-03-01T00:00:00Z``) or a duration before now (``12h``, ``7d``, ``1d12h``); times without
an offset are refused, not guessed. ``--event-time-*`` bound the event's own ``time``,
``--created-*`` when the row was written; ``*-after`` is inclusive, ``*-before`` exclusive.

Exit codes: 0 success (a dry run included); 1 a runtime failure (the database failed: batches
already committed stay done and are counted in the audit entry); 2 bad usage or bad input (an
unknown option, event name or state, a malformed date or duration, an empty filter without
``--all``, an id that names no event): nothing was changed and nothing audited; 3 a
configuration error.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson
from sqlalchemy.engine import Engine

from relay import _migrations, admin
from relay._config import PURGE_BATCH_SIZE, RelaySettings
from relay._database import create_engine
from relay.admin import BatchProgress, EventDetail, EventFilter, FilterError, Preview, StoredRow
from relay.admin.filters import MAX_ID
from relay.cli._output import dumps, safe_json, safe_text

EXIT_BAD_INPUT = 2
#: Rows one batch may change: each is one short transaction, and its ids go to the database in
#: chunks below PostgreSQL's 65,535 bind parameters (see relay._store.requeue).
MAX_BATCH_SIZE = 1_000_000
#: Rows a dry run may show, and audit entries ``relay audit`` may list.
MAX_SAMPLE_SIZE = 10_000
MAX_AUDIT_LIMIT = 100_000
EXIT_CODES = (
    "Exit codes: 0 success (dry runs included); 1 runtime failure (database); "
    "2 bad usage or filter, nothing changed; 3 configuration error."
)

FILTER_HELP = (
    "WHEN is ISO 8601 with a UTC offset (2026-03-01T00:00:00Z, 2026-03-01T09:00+09:00) or a "
    "duration before now (30m, 12h, 7d, 1d12h); times without an offset are refused, not "
    "guessed. *-after is inclusive, *-before exclusive. Repeated options match any value; "
    "different options must all match. An empty filter needs --all. " + EXIT_CODES
)

_F = TypeVar("_F", bound=Callable[..., Any])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextmanager
def _engine(settings: RelaySettings, *, writes: bool = False) -> Iterator[Engine]:
    """An engine on the outbox database; ``writes=True`` first refuses a foreign schema revision.

    A command that changes rows must not run against tables of a revision this relay does not
    know (a rolling upgrade half done): it exits 3 with one line instead.
    """
    engine = create_engine(settings.database_url.get_secret_value())
    try:
        if writes:
            _migrations.require_current_schema(engine)
        yield engine
    finally:
        engine.dispose()


def _bad_input_exits_2(func: _F) -> _F:
    """A :class:`FilterError` becomes one line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FilterError as exc:
            click.echo(f"relay: {safe_text(exc)}", err=True)
            sys.exit(EXIT_BAD_INPUT)

    return wrapper  # type: ignore[return-value]


# --- output ----------------------------------------------------------------------------------


def _echo_json(value: Any) -> None:
    click.echo(dumps(value, indent=True))


def _when(value: dt.datetime | None) -> str:
    return "-" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _event_time(time_ms: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=time_ms)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    return " ".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Aligned columns, numbers right-aligned; a text last column is never padded or cut."""
    # Every cell is escaped: most hold stored or remote text (errors, reasons, names, details).
    cells = [
        [str(h) for h in headers],
        *[["-" if v is None else safe_text(v) for v in r] for r in rows],
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(isinstance(r[i], int) for r in rows) and bool(rows) for i in range(len(headers))]
    for row in cells:
        padded = [
            cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        if not numeric[-1]:
            padded[-1] = row[-1]
        click.echo("  ".join(padded).rstrip())


def _clip(text: str | None, width: int = 60) -> str | None:
    # Cut raw text (the table escapes each cell after): an escape is never cut in half.
    if text is None or len(text) <= width:
        return text
    return text[: width - 1] + "…"


def _row_json(row: StoredRow) -> dict[str, Any]:
    e = row.event
    return {
        "id": e.id,
        "insert_id": e.insert_id,
        "event": e.event,
        "distinct_id": e.distinct_id,
        "time_ms": e.time_ms,
        "time": _event_time(e.time_ms).isoformat(),
        "state": row.state.value,
        "attempts": e.attempts,
        "next_attempt_at": _iso(row.next_attempt_at),
        "lease_token": row.lease_token,
        "lease_expires_at": _iso(row.lease_expires_at),
        "last_error": row.last_error,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "finished_at": _iso(row.finished_at),
    }


def _echo_rows(rows: Sequence[StoredRow]) -> None:
    _table(
        ("ID", "EVENT", "STATE", "ATTEMPTS", "DISTINCT_ID", "TIME", "INSERT_ID", "LAST_ERROR"),
        [
            (
                r.event.id,
                r.event.event,
                r.state.value,
                r.event.attempts,
                r.event.distinct_id,
                _when(_event_time(r.event.time_ms)),
                r.event.insert_id,
                _clip(r.last_error),
            )
            for r in rows
        ],
    )


def _preview_json(p: Preview) -> dict[str, Any]:
    return {
        "dry_run": True,
        "count": p.count,
        "leased": p.leased,
        "breakdown": [
            {"event": b.event, "state": b.state.value, "count": b.count, "leased": b.leased}
            for b in p.breakdown
        ],
        "sample": [_row_json(r) for r in p.sample],
    }


def _echo_preview(p: Preview, *, verb: str, as_json: bool) -> None:
    if as_json:
        _echo_json(_preview_json(p))
        return
    leased = f" ({p.leased} leased by a relay right now would be skipped)" if p.leased else ""
    click.echo(f"dry run: {p.count} events match{leased}; nothing was changed.")
    if not p.count:
        return
    click.echo(f"Run again with --yes to {verb} them.\n")
    _table(
        ("EVENT", "STATE", "COUNT", "LEASED"),
        [(b.event, b.state.value, b.count, b.leased) for b in p.breakdown],
    )
    click.echo(f"\nsample (first {len(p.sample)} by id):")
    _echo_rows(p.sample)


# --- progress --------------------------------------------------------------------------------


@contextmanager
def _progress(
    label: str, *, forced: bool, pause: float
) -> Iterator[Callable[[BatchProgress], None] | None]:
    """A progress bar on a terminal's stderr; with ``--progress`` elsewhere, a line per batch.

    ``pause`` (a hidden option, for tests of interrupted runs) sleeps after each batch.
    """
    tty = sys.stderr.isatty()
    if not (tty or forced or pause):
        yield None
        return
    if tty:
        with click.progressbar(length=0, label=label, file=sys.stderr) as bar:

            def update_bar(p: BatchProgress) -> None:
                bar.length = p.total
                bar.update(p.changed + p.skipped)
                if pause:
                    time.sleep(pause)

            yield update_bar
        return

    def line(p: BatchProgress) -> None:
        click.echo(
            f"{label}: batch {p.batch} committed, {p.done}/{p.total} rows "
            f"({p.changed} changed, {p.skipped} skipped)",
            err=True,
        )
        sys.stderr.flush()
        if pause:
            time.sleep(pause)

    yield line


# --- options ---------------------------------------------------------------------------------


def _filter_options(*, with_state: bool) -> Callable[[_F], _F]:
    def decorate(func: _F) -> _F:
        options = [
            click.option("--event", "events", multiple=True, metavar="NAME", help="Event name."),
            click.option("--event-time-after", metavar="WHEN", help="Event time at or after."),
            click.option("--event-time-before", metavar="WHEN", help="Event time before."),
            click.option("--created-after", metavar="WHEN", help="Row written at or after."),
            click.option("--created-before", metavar="WHEN", help="Row written before."),
            click.option("--distinct-id", "distinct_ids", multiple=True, metavar="ID"),
            click.option(
                "--id",
                "ids",
                multiple=True,
                type=click.IntRange(min=1, max=MAX_ID),
                metavar="N",
                help="Outbox id.",
            ),
            click.option("--insert-id", "insert_ids", multiple=True, metavar="ID"),
            click.option(
                "--error", "errors", multiple=True, metavar="TEXT", help="last_error, exactly."
            ),
            click.option("--error-contains", metavar="TEXT", help="last_error contains TEXT."),
            click.option("--all", "allow_all", is_flag=True, help="Allow an empty filter."),
        ]
        if with_state:
            options.append(
                click.option(
                    "--state",
                    "states",
                    multiple=True,
                    metavar="STATE",
                    help="pending, delivered or dead.",
                )
            )
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _filter(kwargs: dict[str, Any], *, now: dt.datetime) -> EventFilter:
    return admin.build_filter(
        now=now,
        events=kwargs.pop("events"),
        event_time_after=kwargs.pop("event_time_after"),
        event_time_before=kwargs.pop("event_time_before"),
        created_after=kwargs.pop("created_after"),
        created_before=kwargs.pop("created_before"),
        distinct_ids=kwargs.pop("distinct_ids"),
        states=[s.lower() for s in kwargs.pop("states", ())],
        ids=kwargs.pop("ids"),
        insert_ids=kwargs.pop("insert_ids"),
        errors=kwargs.pop("errors"),
        error_contains=kwargs.pop("error_contains"),
    )


def _run_options(func: _F) -> _F:
    for option in reversed(
        [
            click.option("--yes", is_flag=True, help="Execute (default: a dry run)."),
            click.option(
                "--batch-size",
                type=click.IntRange(min=1, max=MAX_BATCH_SIZE),
                default=admin.DEFAULT_BATCH_SIZE,
                show_default=True,
                help="Rows per transaction.",
            ),
            click.option(
                "--sample",
                type=click.IntRange(min=0, max=MAX_SAMPLE_SIZE),
                default=admin.DEFAULT_SAMPLE_SIZE,
                show_default=True,
                help="Rows a dry run shows.",
            ),
            click.option("--actor", help="Who to name in the audit trail (default: OS user)."),
            click.option("--progress", is_flag=True, help="Report each batch on stderr."),
            click.option("--json", "as_json", is_flag=True, help="JSON output."),
            click.option(
                "--pause-after-batch",
                type=click.FloatRange(min=0, max=60),
                default=0.0,
                hidden=True,
            ),
        ]
    ):
        func = option(func)
    return func


def _echo_batches(result: admin.BatchResult, *, done: str, as_json: bool) -> None:
    if as_json:
        _echo_json(
            {
                "dry_run": False,
                done: result.changed,
                "skipped": result.skipped,
                "batches": result.batches,
                "audit_id": result.audit_id,
            }
        )
        return
    batches = "batch" if result.batches == 1 else "batches"
    click.echo(f"{done} {result.changed} events in {result.batches} {batches}.")
    if result.skipped:
        click.echo(
            f"skipped {result.skipped} events leased by a running relay or changed by one "
            "meanwhile (left alone; run the same command again once their lease has ended)."
        )
    click.echo(f"audit entry #{result.audit_id}.")


def _preview_or_execute(
    settings: RelaySettings,
    kwargs: dict[str, Any],
    *,
    verb: str,
    done: str,
    preview: Callable[..., admin.Preview],
    execute: Callable[..., admin.BatchResult],
) -> None:
    """A dry run through ``preview`` unless --yes, else ``execute`` in audited batches."""
    now = _now()
    f = _filter(kwargs, now=now)
    with _engine(settings, writes=True) as engine:
        if not kwargs["yes"]:
            p = preview(
                engine, f, now=now, allow_all=kwargs["allow_all"], sample_size=kwargs["sample"]
            )
            _echo_preview(p, verb=verb, as_json=kwargs["as_json"])
            return
        with _progress(verb, forced=kwargs["progress"], pause=kwargs["pause_after_batch"]) as cb:
            result = execute(
                engine,
                f,
                now=now,
                actor=kwargs["actor"],
                allow_all=kwargs["allow_all"],
                batch_size=kwargs["batch_size"],
                on_batch=cb,
            )
    _echo_batches(result, done=done, as_json=kwargs["as_json"])


# --- commands --------------------------------------------------------------------------------


@click.command(epilog=FILTER_HELP)
@_filter_options(with_state=True)
@_run_options
@click.pass_obj
@_bad_input_exits_2
def replay(settings: RelaySettings, /, **kwargs: Any) -> None:
    """Re-queue selected events for the relay, keeping their time and $insert_id.

    A dry run (count, breakdown by event and state, sample) unless --yes. Executed, the rows
    become pending and due now with attempts reset, in batches of --batch-size rows, each one
    atomic: an interrupted replay leaves every row replayed or untouched. Events a relay is
    sending right now are skipped and reported. Mixpanel deduplicates events it already holds.
    """
    _preview_or_execute(
        settings,
        kwargs,
        verb="replay",
        done="replayed",
        preview=admin.preview,
        execute=admin.replay,
    )


@click.group("dead-letters")
def dead_letters() -> None:
    """Dead letters: events Mixpanel refused or that ran out of attempts."""


@dead_letters.command("list", epilog=EXIT_CODES)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_obj
def dead_letters_list(settings: RelaySettings, as_json: bool) -> None:
    """Dead letters grouped by reason: count, first and last seen, events."""
    with _engine(settings) as engine:
        groups = admin.dead_letters(engine)
    if as_json:
        _echo_json(
            [
                {
                    "reason": g.reason,
                    "count": g.count,
                    "first_at": _iso(g.first_at),
                    "last_at": _iso(g.last_at),
                    "events": g.events,
                }
                for g in groups
            ]
        )
        return
    if not groups:
        click.echo("no dead letters.")
        return
    _table(
        ("COUNT", "FIRST SEEN", "LAST SEEN", "EVENTS", "REASON"),
        [
            (
                g.count,
                _when(g.first_at),
                _when(g.last_at),
                ", ".join(f"{e} ({n})" for e, n in g.events.items()),
                g.reason,
            )
            for g in groups
        ],
    )
    click.echo('\nrequeue a group: relay dead-letters requeue --reason "REASON" --yes')


def _echo_detail(d: EventDetail, *, as_json: bool) -> None:
    if as_json:
        _echo_json(
            {
                **_row_json(d.row),
                "properties": d.properties,
                "import_event": None if d.import_json is None else orjson.loads(d.import_json),
                "encode_error": d.encode_error,
            }
        )
        return
    for key, value in _row_json(d.row).items():
        click.echo(f"{key:<16} {'-' if value is None else safe_text(value)}")
    click.echo(f"{'properties':<16} {dumps(d.properties)}")
    if d.import_json is None:
        click.echo(f"\nthe relay cannot send this event: {safe_text(d.encode_error)}")
    else:
        click.echo("\nthe /import event the relay sends:")
        click.echo(safe_json(d.import_json))


@dead_letters.command("show", epilog=EXIT_CODES)
@click.argument("key", metavar="ID|INSERT_ID")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_obj
@_bad_input_exits_2
def dead_letters_show(settings: RelaySettings, key: str, as_json: bool) -> None:
    """One dead letter in full, by outbox id or $insert_id."""
    with _engine(settings) as engine:
        detail = admin.show_dead_letter(engine, key)
    _echo_detail(detail, as_json=as_json)


@dead_letters.command("requeue", epilog=FILTER_HELP)
@click.option(
    "--reason", "reasons", multiple=True, metavar="TEXT", help="A group's reason, as listed."
)
@_filter_options(with_state=False)
@_run_options
@click.pass_obj
@_bad_input_exits_2
def dead_letters_requeue(
    settings: RelaySettings, /, reasons: tuple[str, ...], **kwargs: Any
) -> None:
    """Replay dead letters: a group (--reason, as `dead-letters list` shows it) or a selection.

    A dry run unless --yes. Audited as "requeue".
    """
    kwargs["errors"] = (*kwargs["errors"], *reasons)
    _preview_or_execute(
        settings,
        kwargs,
        verb="requeue",
        done="requeued",
        preview=admin.preview_dead_letters,
        execute=admin.requeue_dead_letters,
    )


@dead_letters.command("discard", epilog=FILTER_HELP)
@click.option("--reason", required=True, metavar="WHY", help="Why they are dropped (audited).")
@_filter_options(with_state=False)
@_run_options
@click.pass_obj
@_bad_input_exits_2
def dead_letters_discard(settings: RelaySettings, /, reason: str, **kwargs: Any) -> None:
    """Delete dead letters for good; select them with --error (a group's reason) or filters.

    A dry run unless --yes. --reason says why; the audit trail keeps it with the count.
    """
    now = _now()
    f = _filter(kwargs, now=now)
    with _engine(settings, writes=True) as engine:
        if not kwargs["yes"]:
            p = admin.preview_dead_letters(
                engine, f, now=now, allow_all=kwargs["allow_all"], sample_size=kwargs["sample"]
            )
            _echo_preview(p, verb="discard", as_json=kwargs["as_json"])
            return
        with _progress(
            "discard", forced=kwargs["progress"], pause=kwargs["pause_after_batch"]
        ) as on_batch:
            result = admin.discard_dead_letters(
                engine,
                f,
                reason=reason,
                now=now,
                actor=kwargs["actor"],
                allow_all=kwargs["allow_all"],
                batch_size=kwargs["batch_size"],
                on_batch=on_batch,
            )
    _echo_batches(result, done="discarded", as_json=kwargs["as_json"])


@click.command(epilog=EXIT_CODES)
@click.option("--json", "as_json", is_flag=True, help="JSON output, for scripts and monitoring.")
@click.pass_obj
def stats(settings: RelaySettings, as_json: bool) -> None:
    """Backlog numbers: pending, due, oldest age, in flight, dead by reason, delivered recently.

    Cheap on any table size: every number is read through an index.
    """
    with _engine(settings) as engine:
        s = admin.stats(engine, now=_now())
    if as_json:
        _echo_json(s.to_json())
        return
    _table(
        ("", ""),
        [
            ("pending", s.pending),
            ("due now", s.due),
            ("in flight (leased)", s.inflight),
            ("oldest pending age", _age(s.oldest_pending_age_seconds)),
            ("dead", s.dead),
            ("delivered, last hour", s.delivered_last_hour),
            ("delivered, last day", s.delivered_last_day),
        ],
    )
    if s.dead_by_reason:
        click.echo("\ndead by reason:")
        _table(("COUNT", "REASON"), [(n, reason) for reason, n in s.dead_by_reason.items()])
    if s.pending_by_event:
        click.echo("\npending by event:")
        _table(("COUNT", "EVENT"), [(n, event) for event, n in s.pending_by_event.items()])


@click.command(epilog=EXIT_CODES)
@click.argument("key", metavar="ID|INSERT_ID")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_obj
@_bad_input_exits_2
def inspect(settings: RelaySettings, key: str, as_json: bool) -> None:
    """One event by outbox id or $insert_id: its row, and the exact JSON the relay sends.

    Write id:N or insert_id:X when a numeric $insert_id could also be an id.
    """
    with _engine(settings) as engine:
        detail = admin.inspect_event(engine, key)
    _echo_detail(detail, as_json=as_json)


@click.command(epilog=EXIT_CODES)
@click.option("--delivered-older-than", metavar="DURATION", help="Delete delivered rows older.")
@click.option("--dead-older-than", metavar="DURATION", help="Delete dead rows older.")
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
@click.pass_obj
@_bad_input_exits_2
def purge(
    settings: RelaySettings,
    /,
    *,
    delivered_older_than: str | None,
    dead_older_than: str | None,
    dry_run: bool,
    batch_size: int,
    actor: str | None,
    as_json: bool,
) -> None:
    """Delete delivered and dead rows finished longer ago than a window (7d, 12h, 30m).

    Pending rows are never touched. Bounded batches, one short transaction each.
    """
    with _engine(settings, writes=True) as engine:
        result = admin.purge(
            engine,
            now=_now(),
            delivered_older_than=_duration(delivered_older_than, "--delivered-older-than"),
            dead_older_than=_duration(dead_older_than, "--dead-older-than"),
            batch_size=batch_size,
            dry_run=dry_run,
            actor=actor,
        )
    if as_json:
        _echo_json(
            {
                "dry_run": result.dry_run,
                "delivered": result.delivered,
                "dead": result.dead,
                "delivered_before": _iso(result.delivered_before),
                "dead_before": _iso(result.dead_before),
                "audit_id": result.audit_id,
            }
        )
        return
    verb = "would delete" if dry_run else "deleted"
    for state, n, before in (
        ("delivered", result.delivered, result.delivered_before),
        ("dead", result.dead, result.dead_before),
    ):
        if before is not None:
            click.echo(f"{verb} {n} {state} rows finished before {_when(before)}")
    click.echo("dry run: nothing was changed." if dry_run else f"audit entry #{result.audit_id}.")


def _duration(text: str | None, option: str) -> dt.timedelta | None:
    return None if text is None else admin.parse_duration(text, field=option)


@click.command(epilog=FILTER_HELP)
@_filter_options(with_state=True)
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="File (default: stdout)."
)
@click.pass_obj
@_bad_input_exits_2
def export(settings: RelaySettings, /, output: Path | None, **kwargs: Any) -> None:
    """Selected events as JSON Lines, each line an event exactly as the relay sends it to /import.

    Streamed in keyset pages: memory does not grow with the selection.
    """
    f = _filter(kwargs, now=_now())
    with _engine(settings) as engine:
        if output is None:
            admin.export_events(engine, f, sys.stdout.buffer, allow_all=kwargs["allow_all"])
            return
        with output.open("wb") as out:
            n = admin.export_events(engine, f, out, allow_all=kwargs["allow_all"])
    click.echo(f"exported {n} events to {output}", err=True)


@click.command(epilog=EXIT_CODES)
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=MAX_AUDIT_LIMIT),
    default=admin.DEFAULT_AUDIT_LIMIT,
    show_default=True,
    help="Newest entries to show.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_obj
def audit(settings: RelaySettings, limit: int, as_json: bool) -> None:
    """The audit trail: who replayed, requeued, discarded or purged what, when, how many."""
    with _engine(settings) as engine:
        entries = admin.audit_entries(engine, limit=limit)
    if as_json:
        _echo_json(
            [
                {
                    "id": e.id,
                    "at": e.at.isoformat(),
                    "actor": e.actor,
                    "action": e.action,
                    "filter": e.filter,
                    "count": e.count,
                    "detail": e.detail,
                }
                for e in entries
            ]
        )
        return
    _table(
        ("ID", "AT", "ACTOR", "ACTION", "COUNT", "FILTER", "DETAIL"),
        [
            (
                e.id,
                _when(e.at),
                e.actor,
                e.action,
                e.count,
                dumps(e.filter),
                e.detail,
            )
            for e in entries
        ],
    )


COMMANDS: list[click.Command] = [replay, dead_letters, stats, inspect, purge, export, audit]
