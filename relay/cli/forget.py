"""``relay forget``: erase one person's rows from the outbox (see :mod:`relay.admin.forget`).

A dry run unless ``--yes``: it prints what would go and changes nothing. Exit codes: 0 done
(or dry run); 1 Mixpanel's GDPR API refused the request (nothing erased); 2 bad input (an
empty id); 3 ``RELAY_ERASURE_HASH_KEY`` (or, with ``--mixpanel``, the GDPR or project token)
is not set, or the database's schema is not this relay's. The output never shows the id.
"""

from __future__ import annotations

import sys

import click

from relay import _exit
from relay.cli._context import Relay, pass_relay
from relay.cli._output import dumps


@click.command()
@click.option("--distinct-id", "distinct_id", required=True, help="The person to forget.")
@click.option("--yes", is_flag=True, help="Erase (default: a dry run that changes nothing).")
@click.option(
    "--mixpanel",
    is_flag=True,
    help="Also file a GDPR deletion request with Mixpanel (RELAY_MIXPANEL_GDPR_TOKEN).",
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
    from relay._errors import ConfigurationError  # noqa: PLC0415 - keep `relay --help` fast
    from relay.admin import forget as erasure  # noqa: PLC0415

    if not distinct_id.strip():
        click.echo("relay: --distinct-id must not be empty", err=True)
        sys.exit(_exit.USAGE)
    settings = relay.settings
    erasure.require_erasure_key(settings)  # exit 3 before touching the database
    if mixpanel and yes:
        for name, value in (
            ("RELAY_MIXPANEL_GDPR_TOKEN", settings.mixpanel_gdpr_token),
            ("RELAY_MIXPANEL_PROJECT_TOKEN", settings.mixpanel_project_token),
        ):
            if value is None or not value.get_secret_value():
                raise ConfigurationError(f"relay forget --mixpanel needs {name}")
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
                    "waited_for_in_flight": result.waited_for,
                }
            )
        )
        return
    found = ", ".join(f"{n} {what}" for what, n in sorted(result.rows.items())) or "no rows"
    if result.dry_run:
        click.echo(f"dry run: would erase {result.total} row(s) of {result.person}: {found}")
        click.echo("run again with --yes to erase them")
        return
    if result.waited_for:
        click.echo(f"waited for {result.waited_for} row(s) a relay was sending")
    click.echo(f"erased {result.deleted} row(s) of {result.person}: {found}")
    if result.gdpr_task_id is not None:
        click.echo(f"Mixpanel GDPR deletion task: {result.gdpr_task_id}")


COMMANDS: list[click.Command] = [forget]
