"""Running relay's Alembic migrations from Python and from ``relay migrate``.

relay keeps its revision in its own version table (``relay_alembic_version``), so its
migrations run beside a host application's own Alembic history in the same database.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic ``Config`` for relay's revisions, bound to ``engine`` when given."""
    config = Config()
    # The top-level migrations/ folder is installed as relay.migrations (see pyproject.toml).
    revisions = importlib.import_module("relay.migrations")
    config.set_main_option("script_location", str(Path(str(revisions.__file__)).parent))
    config.set_main_option("path_separator", "os")
    if engine is not None:
        config.set_main_option(
            "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
        )
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade relay's tables in ``engine``'s database to ``revision``.

    Online: the host's writes to ``relay_outbox`` go on while it runs (each revision's
    docstring says which locks it takes, and for how long). Each revision commits on its own,
    some in several steps; an upgrade that stopped half-way is completed by running it again.
    """
    _run(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Downgrade relay's tables in ``engine``'s database to ``revision`` (``base`` drops them)."""
    _run(engine, command.downgrade, revision)


def _run(engine: Engine, step: Callable[[Config, str], None], revision: str) -> None:
    config = alembic_config(engine)
    # A connection outside any transaction: Alembic then opens one per revision, and the
    # online revisions can step out of it (CREATE INDEX CONCURRENTLY cannot run inside one).
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        step(config, revision)
        conn.commit()


def heads() -> list[str]:
    """The head revisions of relay's migration history (exactly one when healthy)."""
    return list(ScriptDirectory.from_config(alembic_config()).get_heads())


def stamp(engine: Engine, revision: str = "head") -> None:
    """Record ``revision`` in the version table without running any migration.

    For tables made another way to the same shape (``relay.models.metadata.create_all``, as the
    test fixtures do), so that ``relay.schema_check`` accepts them.
    """
    config = alembic_config(engine)
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.stamp(config, revision, purge=True)
        conn.commit()
