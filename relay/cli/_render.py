"""Text output of the operator commands: tables, instants, ages, and progress of batched work.

On a terminal, tables are drawn with ``rich`` and batched work shows a ``rich`` progress bar on
stderr. Anywhere else (a pipe, a file, a CI log) tables are plain aligned columns and nothing
moves; with ``--json`` no bar is shown. ``--progress`` prints one line per committed batch on
stderr wherever it goes. Every cell is escaped: most hold stored or remote text.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from relay._escape import clip, safe_text

if TYPE_CHECKING:
    from relay.admin import BatchProgress

#: Characters of an error shown in a table cell.
ERROR_WIDTH = 60


def when(value: dt.datetime | None) -> str:
    """``2026-03-01T00:00:00Z``, or ``-``."""
    return "-" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def age(seconds: float | None) -> str:
    """``1d 2h 3m 4s``, or ``-``."""
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    return " ".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


def short(text: str | None, width: int = ERROR_WIDTH) -> str | None:
    """``text`` clipped for a table cell (raw: the table escapes it after)."""
    return None if text is None else clip(text, width)


def _stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table: drawn by rich on a terminal, else aligned columns (numbers right-aligned; a
    text last column is never padded or cut)."""
    cells = [["-" if v is None else safe_text(v) for v in r] for r in rows]
    numeric = [all(isinstance(r[i], int) for r in rows) and bool(rows) for i in range(len(headers))]
    if _stdout_is_terminal():
        _rich_table(headers, cells, numeric)
        return
    lines = [[str(h) for h in headers], *cells]
    widths = [max(len(row[i]) for row in lines) for i in range(len(headers))]
    for row in lines:
        padded = [
            cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        if not numeric[-1]:
            padded[-1] = row[-1]
        click.echo("  ".join(padded).rstrip())


def _rich_table(headers: Sequence[str], cells: list[list[str]], numeric: list[bool]) -> None:
    from rich.console import Console  # noqa: PLC0415 - only on a terminal
    from rich.table import Table  # noqa: PLC0415

    shown = Table(show_header=any(headers), header_style="bold", box=None, pad_edge=False)
    for header, is_number in zip(headers, numeric, strict=True):
        shown.add_column(str(header), justify="right" if is_number else "left", overflow="fold")
    for row in cells:
        # Cells are plain text: rich must not read "[red]" in stored text as markup.
        shown.add_row(*(_plain(cell) for cell in row))
    Console(markup=False, highlight=False, emoji=False).print(shown)


def _plain(text: str) -> Any:
    from rich.text import Text  # noqa: PLC0415

    return Text(text)


OnBatch = Callable[["BatchProgress"], None]


@contextmanager
def progress(label: str, *, lines: bool, quiet: bool) -> Iterator[OnBatch | None]:
    """A callback for ``on_batch``: a rich bar on a terminal's stderr (unless ``quiet``), and
    with ``lines`` (``--progress``) one line per committed batch on stderr instead."""
    if lines:

        def line(p: BatchProgress) -> None:
            click.echo(
                f"{label}: batch {p.batch} committed, {p.done}/{p.total} rows "
                f"({p.changed} changed, {p.skipped} skipped)",
                err=True,
            )
            sys.stderr.flush()

        yield line
        return
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console  # noqa: PLC0415 - only on a terminal
    from rich.progress import Progress  # noqa: PLC0415

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(p: BatchProgress) -> None:
            bar.update(task, total=p.total, completed=p.done)

        yield update


@contextmanager
def counter(label: str, *, quiet: bool) -> Iterator[Callable[[int], None] | None]:
    """A callback adding rows to a spinner-and-count on a terminal's stderr (unless ``quiet``):
    for work whose total is not known up front (purge, export)."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console  # noqa: PLC0415 - only on a terminal
    from rich.progress import Progress, SpinnerColumn, TextColumn  # noqa: PLC0415

    columns = (SpinnerColumn(), TextColumn("{task.description}: {task.completed} rows"))
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def add(n: int) -> None:
            bar.advance(task, n)

        yield add
