"""Click parameter types and the option groups of the operator commands.

``WHEN``, ``DURATION`` and ``STATE`` are :class:`click.ParamType`s: a malformed value is
refused by click itself (exit 2, "Invalid value for '--created-after': ...") before the command
runs. ``WHEN`` resolves a relative value (``12h``) against the invocation's one ``now``
(:attr:`relay.cli._context.Relay.now`), so two options given as durations agree.

The option groups hand the command one typed value each instead of loose keyword strings:
:func:`selection_options` a :class:`Selection` (an ``EventFilter`` and ``--all``),
:func:`run_options` a :class:`RunOptions` (``--yes``, ``--batch-size``, ``--sample``,
``--actor``, ``--progress``, ``--json``).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from relay.cli._context import Relay

if TYPE_CHECKING:
    from relay._store.selection import EventFilter

    _ParamType = click.ParamType[Any, Any]  # generic from click 8.3 on
else:
    _ParamType = click.ParamType

_F = TypeVar("_F", bound=Callable[..., Any])

#: The largest id a BIGINT column holds (``relay.admin._filters.MAX_ID``; spelled here so the
#: options are built without importing it).
MAX_ID = 2**63 - 1
#: Rows one batch may change: each is one short transaction, and its ids go to the database in
#: chunks below PostgreSQL's 65,535 bind parameters (see relay._store.requeue).
MAX_BATCH_SIZE = 1_000_000
#: Rows a dry run may show.
MAX_SAMPLE_SIZE = 10_000
#: Defaults of ``relay.admin`` (``DEFAULT_BATCH_SIZE``, ``DEFAULT_SAMPLE_SIZE``), checked
#: equal by the tests.
DEFAULT_BATCH_SIZE = 1000
DEFAULT_SAMPLE_SIZE = 10


def _relay_now(ctx: click.Context | None) -> dt.datetime:
    relay = ctx.find_object(Relay) if ctx is not None else None
    return relay.now if relay is not None else dt.datetime.now(dt.UTC)


def _option_name(param: click.Parameter | None) -> str:
    return param.opts[0] if param is not None and param.opts else "value"


class WhenType(_ParamType):
    """ISO 8601 with a UTC offset, or a duration before now; converts to aware UTC."""

    name = "WHEN"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dt.datetime):
            return value
        from relay._errors import FilterError  # noqa: PLC0415
        from relay.admin._filters import parse_instant  # noqa: PLC0415

        try:
            return parse_instant(str(value), now=_relay_now(ctx), field=_option_name(param))
        except FilterError as exc:
            self.fail(str(exc), param, ctx)


class DurationType(_ParamType):
    """``30m``, ``12h``, ``7d``, ``1d12h``; converts to a ``timedelta``."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dt.timedelta):
            return value
        from relay._errors import FilterError  # noqa: PLC0415
        from relay.admin._filters import parse_duration  # noqa: PLC0415

        try:
            return parse_duration(str(value), field=_option_name(param))
        except FilterError as exc:
            self.fail(str(exc), param, ctx)


class StateType(_ParamType):
    """``pending``, ``delivered`` or ``dead`` (any case); converts to an ``OutboxState``."""

    name = "STATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from relay._errors import FilterError  # noqa: PLC0415
        from relay._store.selection import to_state  # noqa: PLC0415

        try:
            return to_state(value if not isinstance(value, str) else value.lower())
        except FilterError as exc:
            self.fail(str(exc), param, ctx)


WHEN = WhenType()
DURATION = DurationType()
STATE = StateType()


@dataclass(frozen=True, slots=True)
class Selection:
    """The rows an operator selected, and whether an empty filter was allowed (``--all``)."""

    filter: EventFilter
    allow_all: bool


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How a batched operation runs: executed (``yes``) or a dry run showing ``sample`` rows."""

    yes: bool
    batch_size: int
    sample: int
    actor: str | None
    progress: bool
    as_json: bool


_FILTER_FIELDS = (
    "events",
    "event_time_after",
    "event_time_before",
    "created_after",
    "created_before",
    "distinct_ids",
    "states",
    "ids",
    "insert_ids",
    "errors",
    "error_contains",
    "destinations",
    "organizations",
)


class DestinationType(_ParamType):
    """A destination's name (``[a-z][a-z0-9_-]{0,63}``); a name no row has selects nothing."""

    name = "NAME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from relay._errors import FilterError  # noqa: PLC0415
        from relay.admin.pauses import check_destination_name  # noqa: PLC0415

        try:
            return check_destination_name(str(value), option=_option_name(param))
        except FilterError as exc:
            self.fail(str(exc), param, ctx)


class OrganizationType(_ParamType):
    """An organization's id, as ``relay reroute --organization`` takes it: not blank, at most
    255 characters. A row is the organization's as a router sees it (``organization_id``)."""

    name = "ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from relay._errors import FilterError  # noqa: PLC0415
        from relay.admin._filters import check_organization  # noqa: PLC0415

        try:
            return check_organization(str(value), option=_option_name(param))
        except FilterError as exc:
            self.fail(str(exc), param, ctx)


DESTINATION = DestinationType()
ORGANIZATION = OrganizationType()
#: ``--destination NAME`` as a filter: repeatable, any of the names.
DESTINATION_FILTER = click.option(
    "--destination",
    "destinations",
    multiple=True,
    type=DESTINATION,
    help="Rows going to this destination (Mixpanel project).",
)


def selection_options(*, with_state: bool) -> Callable[[_F], _F]:
    """The filter options; the command receives them as ``selection: Selection``.

    An empty filter is refused (exit 2) with a line naming options this command takes.
    """
    # What the empty-filter message suggests: options of this command only.
    examples = "--state, --event, --created-after" if with_state else "--error, --event"
    options = [
        click.option("--event", "events", multiple=True, metavar="NAME", help="Event name."),
        click.option("--event-time-after", type=WHEN, help="Event time at or after."),
        click.option("--event-time-before", type=WHEN, help="Event time before."),
        click.option("--created-after", type=WHEN, help="Row written at or after."),
        click.option("--created-before", type=WHEN, help="Row written before."),
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
        DESTINATION_FILTER,
        click.option(
            "--organization",
            "organizations",
            multiple=True,
            type=ORGANIZATION,
            help="Rows of this organization (its organization_id, as relay reroute matches it).",
        ),
        click.option("--all", "allow_all", is_flag=True, help="Allow an empty filter."),
    ]
    if with_state:
        options.append(
            click.option(
                "--state", "states", multiple=True, type=STATE, help="pending, delivered or dead."
            )
        )

    def decorate(func: _F) -> _F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from relay._errors import FilterError  # noqa: PLC0415
            from relay._store.selection import EventFilter  # noqa: PLC0415

            values = {name: kwargs.pop(name, ()) for name in _FILTER_FIELDS}
            selection = Selection(filter=EventFilter(**values), allow_all=kwargs.pop("allow_all"))
            if selection.filter.is_empty() and not selection.allow_all:
                raise FilterError(
                    f"empty filter: name what to select ({examples}, --id, ...), or select "
                    "every row explicitly with --all",
                    field="filter",
                )
            return func(*args, selection=selection, **kwargs)

        command: Any = wrapper
        for option in reversed(options):
            command = option(command)
        return command  # type: ignore[no-any-return]

    return decorate


def run_options(func: _F) -> _F:
    """``--yes``, ``--batch-size``, ``--sample``, ``--actor``, ``--progress``, ``--json``; the
    command receives them as ``run: RunOptions``."""
    names = ("yes", "batch_size", "sample", "actor", "progress", "as_json")

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        run = RunOptions(**{name: kwargs.pop(name) for name in names})
        return func(*args, run=run, **kwargs)

    command: Any = wrapper
    for option in reversed(
        [
            click.option("--yes", is_flag=True, help="Execute (default: a dry run)."),
            click.option(
                "--batch-size",
                type=click.IntRange(min=1, max=MAX_BATCH_SIZE),
                default=DEFAULT_BATCH_SIZE,
                show_default=True,
                help="Rows per transaction.",
            ),
            click.option(
                "--sample",
                type=click.IntRange(min=0, max=MAX_SAMPLE_SIZE),
                default=DEFAULT_SAMPLE_SIZE,
                show_default=True,
                help="Rows a dry run shows.",
            ),
            click.option("--actor", help="Who to name in the audit trail (default: OS user)."),
            click.option(
                "--progress",
                is_flag=True,
                help="Report each batch on stderr (a bar on a terminal without this).",
            ),
            click.option("--json", "as_json", is_flag=True, help="JSON output (no progress)."),
        ]
    ):
        command = option(command)
    return command  # type: ignore[no-any-return]
