"""``relay events``: the tracking plan as code (``lint``, ``docs``, ``new``, ``push``).

Exit codes of ``relay events lint``: 0 the catalog is clean; 1 at least one finding.
Exit codes of ``relay events push``: 0 Lexicon in sync, or uploaded with ``--yes``; 1
differences found without ``--yes``, or Lexicon unreachable or failing; 2 usage (a
``--destination`` that is not configured); 3 configuration (no service account, a
non-integer project id, credentials Lexicon refuses). With several destinations each is
pushed and reported on its own line, and the exit code is the most serious one's (3 before 1):
a destination without a service account does not stop the push to the others.
Heavy modules are imported inside the commands, so ``relay --help`` stays light.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from relay import _exit
from relay._escape import safe_text
from relay._exit import USAGE, fail
from relay.cli._context import Relay, pass_relay
from relay.cli._files import creatable_directory, import_catalog, output_directory

if TYPE_CHECKING:
    from relay._config import RelaySettings
    from relay.plan.push import DestinationPush

EXIT_FINDINGS = 1


def _required_modules(modules: tuple[str, ...], command: str) -> list[str]:
    """The MODULE arguments, or one usage line (exit 2): relay ships no events of its own."""
    if not modules:
        fail(
            f"relay events {command} needs MODULE, the analytics package that defines the events "
            f"(relay ships none): relay events {command} myapp.analytics",
            USAGE,
        )
    return list(modules)


@click.group()
def events() -> None:
    """The tracking plan as code: check the event catalog against the convention."""


@events.command()
@click.argument("modules", nargs=-1, metavar="MODULE ...")
@click.option(
    "--tests",
    "tests_path",
    type=click.Path(exists=True, file_okay=True, dir_okay=True, path_type=Path),
    help="Tests to search for a test that tracks each event (RLY011); skipped if not given.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as a JSON object.")
def lint(modules: tuple[str, ...], tests_path: Path | None, as_json: bool) -> None:
    """Check the catalog MODULEs against every rule; exit 1 on a finding."""
    # Imported here: the linter pulls in the registry and pydantic; `relay --help` stays light.
    from relay.plan.lint import RULES, ensure_cwd_importable, lint_report  # noqa: PLC0415

    names = _required_modules(modules, "lint")
    ensure_cwd_importable()
    report = lint_report(names, tests_path=tests_path)
    findings = report.findings
    unchecked = report.unchecked()
    if unchecked and not findings:
        # "0 findings" after checking no event would pass a catalog nobody looked at.
        parent = unchecked[0].rpartition(".")[0]
        hint = f": lint the package that defines them ({parent})" if parent else ""
        _exit.fail(f"no events are defined in {', '.join(unchecked)}{hint}", _exit.FAILURE)
    if as_json:
        payload = {
            "modules": names,
            "findings": [f.as_dict() for f in findings],
            "count": len(findings),
            "rules": RULES,
        }
        click.echo(json.dumps(payload, indent=2, sort_keys=True))
    else:
        for finding in findings:
            click.echo(finding.as_text())
        noun = "finding" if len(findings) == 1 else "findings"
        click.echo(f"{len(findings)} {noun} in {', '.join(names)}", err=True)
    if findings:
        sys.exit(EXIT_FINDINGS)


@events.command()
@click.argument("modules", nargs=-1, metavar="MODULE ...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "json-schema"]),
    default="markdown",
    show_default=True,
    help="Markdown for people, or one JSON Schema per event for tools.",
)
@click.option(
    "--output",
    "output",
    type=click.Path(path_type=Path),  # checked by output_directory: one line, exit 2
    help="Write into DIR (tracking-plan.md, or <event>.schema.json per event); default stdout.",
)
def docs(modules: tuple[str, ...], fmt: str, output: Path | None) -> None:
    """The data dictionary of the catalog MODULEs, from the registry."""
    # Imported here, like lint: pydantic and the catalog are not needed for `relay --help`.
    from relay.plan.docs import catalog_registry, event_json_schema, markdown  # noqa: PLC0415
    from relay.plan.lint import ensure_cwd_importable  # noqa: PLC0415

    names = _required_modules(modules, "docs")
    ensure_cwd_importable()
    registry = import_catalog(catalog_registry, names)
    if output is not None:
        output_directory(output, option="--output")
    if fmt == "markdown":
        text = markdown(registry)
        if output is None:
            click.echo(text)
        else:
            (output / "tracking-plan.md").write_text(text, encoding="utf-8")
            click.echo(f"wrote {output / 'tracking-plan.md'}", err=True)
        return
    schemas = {event: event_json_schema(event, schema) for event, schema in registry.items()}
    if output is None:
        click.echo(json.dumps(schemas, indent=2, sort_keys=True))
        return
    for event, body in sorted(schemas.items()):
        (output / f"{event}.schema.json").write_text(
            json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    click.echo(f"wrote {len(schemas)} schemas to {output}", err=True)


@events.command()
@click.argument("event")
@click.option(
    "--package",
    "package_dir",
    required=True,
    type=click.Path(path_type=Path),  # checked by creatable_directory: one line, exit 2
    help="Directory of the analytics package (its name is the import name); created if missing.",
)
@click.option(
    "--domain",
    help="Service module of the helper, service/<domain>.py (default: the event's object).",
)
@click.option(
    "--django/--no-django",
    "django",
    default=None,
    help="Helpers on Django's connection (no session) or on a SQLAlchemy session "
    "(default: detected from the package and its project).",
)
@click.option(
    "--employee-model",
    default="optimo_core.Employee",
    show_default=True,
    help="Django model the new package's directory looks employees up in, by uuid.",
)
def new(
    event: str, package_dir: Path, domain: str | None, django: bool | None, employee_model: str
) -> None:
    """Add EVENT (svc.<object>.<action>) to the analytics package, the seed's seven steps.

    Creates the package or edits its constants, schemas, registry, service/<domain>.py and
    service/__init__.py, keeping every other line, and writes the event's test file.
    Refuses, writing nothing, an event that exists (exit 1).
    """
    try:
        from relay.plan.scaffold import changed_paths, scaffold_event  # noqa: PLC0415 -- light start-up
    except ImportError as exc:
        from relay._errors import RelayError  # noqa: PLC0415

        raise RelayError(
            "events new needs libcst and ruff: pip install 'relay-outbox[scaffold]'"
        ) from exc

    creatable_directory(package_dir, option="--package")
    try:
        changes = scaffold_event(
            event,
            package_dir=package_dir,
            domain=domain,
            django=django,
            employee_model=employee_model,
        )
    except OSError as exc:
        fail(f"--package {package_dir}: cannot write it: {exc.strerror or exc}", USAGE)
    for line in changed_paths(changes):
        click.echo(line)


@events.command()
@click.argument("modules", nargs=-1, metavar="MODULE ...")
@click.option("--yes", is_flag=True, help="Upload the differences (default: only show them).")
@click.option(
    "--truncate",
    is_flag=True,
    help="Replace Lexicon's whole dictionary with the registry's events (deletes every schema "
    "not in it, profile schemas included); acts only with --yes.",
)
@click.option(
    "--destination",
    metavar="NAME",
    help="Push to this destination's project only (default: every configured destination).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the diff as a JSON object.")
@pass_relay
def push(
    relay: Relay,
    /,
    modules: tuple[str, ...],
    *,
    yes: bool,
    truncate: bool,
    destination: str | None,
    as_json: bool,
) -> None:
    """Sync the events of the catalog MODULEs to Mixpanel Lexicon, in every destination.

    Shows what differs first: events to add, to change (and what changed), and events only
    Lexicon has (kept, unless --truncate). With --yes, uploads the added and changed schemas.
    With several destinations (data residency), each project is pushed in turn and has one
    outcome line; a destination without a service account is one line and exit 3, the others
    are still pushed. Exit 0 in sync or (with --yes) uploaded; 1 any difference found without
    --yes, or a Lexicon failing; 3 a destination's configuration.
    """
    from relay.plan.docs import catalog_registry  # noqa: PLC0415
    from relay.plan.lexicon import registry_entries  # noqa: PLC0415
    from relay.plan.lint import ensure_cwd_importable  # noqa: PLC0415
    from relay.plan.push import targets  # noqa: PLC0415

    names = _required_modules(modules, "push")
    settings = relay.settings
    if destination is not None and destination not in settings.destination_names():
        fail(
            f"--destination {destination[:64]!r} is not configured: the destinations are "
            f"{', '.join(settings.destination_names())}",
            USAGE,
        )
    ensure_cwd_importable()
    entries = registry_entries(import_catalog(catalog_registry, names))
    chosen, skipped = targets(settings, destination)
    if chosen == ("default",) and destination is None:
        _push_one_project(settings, names, entries, yes=yes, truncate=truncate, as_json=as_json)
        return
    _push_destinations(
        relay, names, entries, chosen, skipped, yes=yes, truncate=truncate, as_json=as_json
    )


def _push_one_project(
    settings: RelaySettings,
    names: list[str],
    entries: dict[str, dict[str, Any]],
    *,
    yes: bool,
    truncate: bool,
    as_json: bool,
) -> None:
    """The push of a deployment with one project (``default``): its output and errors as
    before destinations existed."""
    from relay._mixpanel.lexicon import LexiconClient  # noqa: PLC0415
    from relay.plan.lexicon import diff, render  # noqa: PLC0415

    project_id, _username, _secret = settings.require_service_account()
    with LexiconClient(settings) as client:
        held = client.event_schemas()
        result = diff(entries, held)
        uploads = list(entries.values()) if truncate else result.uploads()
        act = yes and not result.in_sync and bool(uploads or truncate)
        uploaded: dict[str, int] = {}
        if act:
            uploaded = client.upload(uploads, truncate=truncate, held=len(held))
    if as_json:
        payload = {
            "project_id": project_id,
            "modules": names,
            **result.as_dict(),
            "uploaded": len(uploads) if act else 0,
            "truncated": act and truncate,
            "deleted": uploaded.get("deleted", 0) if act else 0,
        }
        click.echo(json.dumps(payload, indent=2, sort_keys=True))
    else:
        for line in render(result, project_id=project_id):
            click.echo(line)
        click.echo(_push_outcome(result.in_sync, act, truncate, len(uploads)), err=True)
    if not result.in_sync and not yes:
        sys.exit(EXIT_FINDINGS)


def _push_destinations(
    relay: Relay,
    names: list[str],
    entries: dict[str, dict[str, Any]],
    chosen: tuple[str, ...],
    skipped: tuple[str, ...],
    *,
    yes: bool,
    truncate: bool,
    as_json: bool,
) -> None:
    """Push to each destination in turn: its diff on stdout, one outcome line on stderr
    (``destination NAME: ...``); exit with the most serious destination's code (3 before 1)."""
    from relay._database import scrub  # noqa: PLC0415
    from relay.plan.lexicon import render  # noqa: PLC0415
    from relay.plan.push import SKIPPED, DestinationPush, push_destination  # noqa: PLC0415

    settings = relay.settings
    pushes = [
        DestinationPush(n, SKIPPED, problem="no Mixpanel project configured") for n in skipped
    ]
    for name in chosen:
        pushes.append(push_destination(settings, name, entries, yes=yes, truncate=truncate))
    secrets = relay.secrets()
    if as_json:
        payload: dict[str, Any] = {
            "modules": names,
            "destinations": [
                {**p.as_dict(), "problem": p.problem and scrub(p.problem, secrets)} for p in pushes
            ],
        }
        click.echo(json.dumps(payload, indent=2, sort_keys=True))
    else:
        for done in pushes:
            if done.diff is not None:
                for line in render(done.diff, project_id=done.project_id or "?"):
                    click.echo(f"destination {done.destination}: {line}")
        for done in pushes:
            outcome = _destination_outcome(done, truncate, scrub, secrets)
            click.echo(f"destination {done.destination}: {outcome}", err=True)
    codes = {done.exit_code for done in pushes}
    if _exit.CONFIGURATION in codes:
        sys.exit(_exit.CONFIGURATION)
    if _exit.FAILURE in codes:
        sys.exit(EXIT_FINDINGS)


def _destination_outcome(
    done: DestinationPush,
    truncate: bool,
    scrub: Callable[[str, frozenset[str]], str],
    secrets: frozenset[str],
) -> str:
    """The outcome line of one destination (without its ``destination NAME:`` prefix)."""
    from relay.plan.push import UPLOADED  # noqa: PLC0415

    if done.diff is None:
        return f"{done.outcome}: {safe_text(scrub(done.problem or '', secrets))}"
    count = len(done.diff.entries) if truncate else len(done.diff.uploads())
    acted = done.outcome == UPLOADED
    return _push_outcome(done.diff.in_sync, acted, truncate, count)


def _push_outcome(in_sync: bool, acted: bool, truncate: bool, count: int) -> str:
    noun = "schema" if count == 1 else "schemas"
    if in_sync:
        return "Lexicon is in sync with the registry: nothing to do"
    if acted and truncate:
        return f"replaced Lexicon's dictionary with {count} event {noun} (truncate)"
    if acted:
        return f"uploaded {count} event {noun}; only-in-Lexicon events are kept"
    if truncate:
        return f"run with --truncate --yes to replace Lexicon's dictionary with {count} {noun}"
    if count:
        return f"run with --yes to upload {count} event {noun}; only-in-Lexicon events are kept"
    return "nothing to upload; only --truncate --yes removes the only-in-Lexicon events"


COMMANDS = [events]
