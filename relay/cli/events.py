"""``relay events``: the tracking plan as code (``lint``).

Exit codes of ``relay events lint``: 0 the catalog is clean; 1 at least one finding.
Heavy modules are imported inside the commands, so ``relay --help`` stays light.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

EXIT_FINDINGS = 1


@click.group()
def events() -> None:
    """The tracking plan as code: check the event catalog against the convention."""


@events.command()
@click.argument("modules", nargs=-1, metavar="[MODULE ...]")
@click.option(
    "--tests",
    "tests_path",
    type=click.Path(exists=True, file_okay=True, dir_okay=True, path_type=Path),
    help="Tests to search for a test that tracks each event (RLY011); skipped if not given.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as a JSON object.")
def lint(modules: tuple[str, ...], tests_path: Path | None, as_json: bool) -> None:
    """Check catalog MODULEs (default: relay.catalog) against every rule; exit 1 on a finding."""
    # Imported here: the linter pulls in the registry and pydantic; `relay --help` stays light.
    from relay.plan.lint import RULES, ensure_cwd_importable, lint_modules  # noqa: PLC0415

    ensure_cwd_importable()
    names = list(modules) or ["relay.catalog"]
    findings = lint_modules(names, tests_path=tests_path)
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


COMMANDS = [events]
