"""``relay forget``: erase one person's rows from the outbox (see :mod:`relay.admin.forget`).

A dry run unless ``--yes``: it prints what would go and changes nothing. Exit codes: 0 done
(or dry run); 1 Mixpanel's GDPR API of a destination refused the request or did not answer
(nothing erased when no destination filed; the rows erased when another did); 2 bad input (an
empty id); 3 ``RELAY_ERASURE_HASH_KEY`` (or, with ``--mixpanel``, a destination's GDPR or
project token) is not set, a destination refused its credentials, or the database's schema is
not this relay's. With several destinations, one line each: filed (the task id), refused or
failed (why), skipped. The output never shows the id.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from relay import _exit
from relay._escape import safe_text
from relay.cli._context import Relay, pass_relay
from relay.cli._output import dumps

if TYPE_CHECKING:
    from relay.admin.forget import ForgetResult, GdprFiling


@click.command()
@click.option("--distinct-id", "distinct_id", required=True, help="The person to forget.")
@click.option("--yes", is_flag=True, help="Erase (default: a dry run that changes nothing).")
@click.option(
    "--mixpanel",
    is_flag=True,
    help="Also file a GDPR deletion request with every destination's Mixpanel project "
    "(RELAY_MIXPANEL_GDPR_TOKEN, RELAY_DESTINATION_<NAME>_GDPR_TOKEN).",
)
@click.option("--actor", help="Who to name in the audit trail (default: OS user).")
@click.option("--json", "as_json", is_flag=True, help="JSON output, for scripts.")
@pass_relay
def forget(
    relay: Relay,
    /,
    *,
    distinct_id: str,
    yes: bool,
    mixpanel: bool,
    actor: str | None,
    as_json: bool,
) -> None:
    """Remove every outbox row of one person: their events and their profile updates.

    Audited as action `forget` under an HMAC-SHA256 of the id (RELAY_ERASURE_HASH_KEY), never
    the id itself. Without --yes, only counts what would be removed.
    """
    from relay.admin import forget as erasure  # noqa: PLC0415 - keep `relay --help` fast

    if not distinct_id.strip():
        click.echo("relay: --distinct-id must not be empty", err=True)
        sys.exit(_exit.USAGE)
    settings = relay.settings
    erasure.require_erasure_key(settings)  # exit 3 before touching the database
    if mixpanel and yes:
        erasure.require_gdpr_destinations(settings)  # exit 3 before touching anything
    with relay.engine(writes=True) as engine:  # exit 3 on a foreign revision
        result = erasure.forget(
            engine,
            settings,
            distinct_id=distinct_id,
            dry_run=not yes,
            actor=actor,
            mixpanel=mixpanel,
        )
    if as_json:
        click.echo(
            dumps(
                {
                    "dry_run": result.dry_run,
                    "person": result.person,
                    "rows": result.rows,
                    "deleted": result.deleted,
                    "audit_entries_rewritten": result.audit_entries_rewritten,
                    "gdpr_task_id": result.gdpr_task_id,
                    "gdpr": [filing.as_dict() for filing in result.gdpr],
                    "waited_for_in_flight": result.waited_for,
                }
            )
        )
        _exit_for(result)
        return
    found = ", ".join(f"{n} {what}" for what, n in sorted(result.rows.items())) or "no rows"
    if result.dry_run:
        click.echo(f"dry run: would erase {result.total} row(s) of {result.person}: {found}")
        if mixpanel:
            names, _skipped = erasure.acted_on(settings)
            click.echo(f"and file the GDPR deletion with destination(s): {', '.join(names)}")
        click.echo("run again with --yes to erase them")
        return
    if result.waited_for:
        click.echo(f"waited for {result.waited_for} row(s) a relay was sending")
    click.echo(f"erased {result.deleted} row(s) of {result.person}: {found}")
    from relay._database import scrub  # noqa: PLC0415 - keep `relay --help` fast

    for filing in result.gdpr:
        click.echo(scrub(_filing_line(filing, alone=len(result.gdpr) == 1), relay.secrets()))
    _exit_for(result)


def _filing_line(filing: GdprFiling, *, alone: bool) -> str:
    """One destination's outcome; a lone ``default`` keeps the single-project wording."""
    prefix = (
        "" if alone and filing.destination == "default" else f"destination {filing.destination}: "
    )
    if filing.task_id is not None:
        return f"{prefix}Mixpanel GDPR deletion task: {filing.task_id}"
    return f"{prefix}{filing.outcome}: {safe_text(filing.problem or '')}"


def _exit_for(result: ForgetResult) -> None:
    """Exit 3 when a destination refused its credentials, 1 when another did not file."""
    if result.gdpr_complete:
        return
    click.echo(
        "relay: the rows were erased and the deletion was filed with some destinations, not "
        "all: run relay forget --mixpanel --yes again (filing twice is harmless)",
        err=True,
    )
    configuration = any(f.configuration for f in result.gdpr)
    sys.exit(_exit.CONFIGURATION if configuration else _exit.FAILURE)


COMMANDS: list[click.Command] = [forget]
