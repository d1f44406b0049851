"""``relay standin``: the local Mixpanel stand-in, for trying a host application without Mixpanel.

``relay standin`` serves :class:`relay.testing.mixpanel_standin.MixpanelStandin` on loopback in
the foreground until Ctrl-C or SIGTERM, and first prints the ``export RELAY_MIXPANEL_*`` lines
that point a relay at it. ``relay standin events --url URL`` lists what a running stand-in
accepted (its ``GET /_standin/events``), as a table or ``--json``.
"""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from types import FrameType
from typing import Any

import click

from relay import _exit
from relay.cli import _render
from relay.cli._context import echo_json

DEFAULT_PORT = 8765
#: The stand-in's made-up credentials: a relay pointed at it must send these. The project id
#: is an integer, as Mixpanel's are (`relay events push` refuses any other).
PROJECT_ID = "1234567"
USERNAME = "standin-user"
SECRET = "standin-secret"  # noqa: S105 - a fake credential for the fake server
#: The key `relay forget` names people by in the audit trail: relay's own secret, not
#: Mixpanel's, made up here so that every command of the README runs against the stand-in.
ERASURE_HASH_KEY = "standin-erasure-key"


def settings_lines(server: Any) -> list[str]:
    """The ``export`` lines that point every relay command at ``server``: /import, /engage and
    /groups (service account and project token), the application API (Lexicon, GDPR) and the
    keys `relay forget` needs."""
    values = {
        "RELAY_MIXPANEL_API_URL": server.url,
        "RELAY_MIXPANEL_APP_API_URL": server.app_api_url,
        "RELAY_MIXPANEL_PROJECT_ID": server.project_id,
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME": server.username,
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET": server.secret,
        "RELAY_MIXPANEL_PROJECT_TOKEN": server.project_token,
        "RELAY_MIXPANEL_GDPR_TOKEN": server.oauth_token,
        "RELAY_ERASURE_HASH_KEY": ERASURE_HASH_KEY,
    }
    return [f"export {key}={shlex.quote(value)}" for key, value in values.items()]


@click.group(invoke_without_command=True, epilog=_exit.EXIT_CODES_HELP)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(min=0, max=65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port (0 picks a free one).",
)
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Hold every /import answer this long (a real one takes hundreds of ms).",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Cap the project at this many events per second; 429 beyond it.  [default: no cap]",
)
@click.option(
    "--rate-window",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="The cap's rolling window in seconds (Mixpanel's is a minute).",
)
@click.option(
    "--region",
    type=click.Choice(["us", "eu", "in"]),
    default="us",
    show_default=True,
    help="The data residency whose servers it plays (run one per destination).",
)
@click.pass_context
def standin(
    ctx: click.Context,
    *,
    host: str,
    port: int,
    latency_ms: float,
    rate_limit: float | None,
    rate_window: float,
    region: str,
) -> None:
    """Serve a local Mixpanel stand-in in the foreground (Ctrl-C stops it).

    It enforces Mixpanel's /import rules and deduplication and keeps what it accepted (in
    memory). The first lines printed are the `export RELAY_*` lines that point every relay
    command at it (run, drain, events push, forget --mixpanel, profile updates); `relay standin
    events` lists what it accepted. `--latency-ms` and `--rate-limit` make it answer like a
    real, busy project (to rehearse a backfill against Mixpanel's per-project cap).
    """
    if ctx.invoked_subcommand is not None:
        return
    from relay.testing.mixpanel_standin import MixpanelStandin  # noqa: PLC0415

    done = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        done.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server = MixpanelStandin(
            host=host,
            port=port,
            project_id=PROJECT_ID,
            username=USERNAME,
            secret=SECRET,
            latency_ms=latency_ms,
            rate_limit=rate_limit,
            rate_window_seconds=rate_window,
            region=region,
        )
        try:
            server.__enter__()
        except OSError as exc:
            _exit.fail(
                f"cannot listen on {host}:{port}: {exc.strerror} (try --port 0)", _exit.FAILURE
            )
        try:
            for line in settings_lines(server):
                click.echo(line)
            click.echo(
                f"# Mixpanel stand-in at {server.url}; list what it accepted with: "
                f"relay standin events --url {server.url}",
            )
            click.echo("# Ctrl-C stops it (what it accepted is kept in memory only).", err=True)
            # Flushed now: redirected to a file (`relay standin > standin.env &`), the settings
            # must be readable while it serves, not when it exits.
            sys.stdout.flush()
            done.wait()
        finally:
            server.__exit__(None, None, None)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@standin.command("events", epilog=_exit.EXIT_CODES_HELP)
@click.option(
    "--url",
    default=f"http://127.0.0.1:{DEFAULT_PORT}",
    show_default=True,
    help="The running stand-in's base URL, as `relay standin` printed it.",
)
@click.option(
    "--json", "as_json", is_flag=True, help='The stand-in\'s own JSON: {"events": [...]}.'
)
def standin_events(url: str, as_json: bool) -> None:
    """What a running stand-in accepted, in arrival order (GET /_standin/events)."""
    import httpx  # noqa: PLC0415

    try:
        answer = httpx.get(url.rstrip("/") + "/_standin/events", timeout=10.0)
    except httpx.HTTPError as exc:
        _exit.fail(
            f"cannot reach a stand-in at {url}: {type(exc).__name__} (is `relay standin` running?)",
            _exit.FAILURE,
        )
    if answer.status_code != 200:
        _exit.fail(
            f"{url} answered HTTP {answer.status_code} to GET /_standin/events: "
            "is it a relay stand-in?",
            _exit.FAILURE,
        )
    try:
        payload = answer.json()
        events: list[dict[str, Any]] = payload["events"]
    except (ValueError, KeyError, TypeError):
        _exit.fail(f"{url} answered GET /_standin/events with no event list", _exit.FAILURE)
    if as_json:
        echo_json(payload)
        return
    if not events:
        click.echo("no events accepted yet.")
        return
    _render.table(
        ("TIME", "EVENT", "DISTINCT_ID", "INSERT_ID", "DUPLICATE"),
        [_event_row(e) for e in events],
    )
    unique = sum(1 for e in events if not e.get("duplicate"))
    click.echo(f"\n{len(events)} accepted, {unique} unique (what Mixpanel would show).")


def _event_row(record: dict[str, Any]) -> tuple[Any, ...]:
    from relay._event.properties import timestamp_ms_to_datetime  # noqa: PLC0415

    key = record.get("key") or {}
    time_ms = key.get("time")
    return (
        _render.when(timestamp_ms_to_datetime(time_ms)) if isinstance(time_ms, int) else time_ms,
        key.get("event"),
        key.get("distinct_id"),
        key.get("$insert_id"),
        "yes" if record.get("duplicate") else "no",
    )
