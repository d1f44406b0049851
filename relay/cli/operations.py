"""``relay migrate``, ``run``, ``drain`` and ``demo``: running the relay."""

from __future__ import annotations

import click

from relay import schema_migrations
from relay.config import RelaySettings
from relay.database import create_engine


@click.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.pass_obj
def migrate(settings: RelaySettings, revision: str) -> None:
    """Create or upgrade relay's tables (its own Alembic history, relay_alembic_version)."""
    engine = create_engine(settings.database_url)
    try:
        schema_migrations.upgrade(engine, revision)
    finally:
        engine.dispose()
    click.echo(f"relay tables at revision {revision} in {engine.url.render_as_string()}")


COMMANDS: list[click.Command] = [migrate]
