"""Running relay's Alembic migrations from Python and from ``relay migrate``.

relay keeps its revision in its own version table (``relay_alembic_version``), so its
migrations run beside a host application's own Alembic history in the same database.
"""

from __future__ import annotations

import importlib
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
    """Upgrade relay's tables in ``engine``'s database to ``revision``."""
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Downgrade relay's tables in ``engine``'s database to ``revision`` (``base`` drops them)."""
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def heads() -> list[str]:
    """The head revisions of relay's migration history (exactly one when healthy)."""
    return list(ScriptDirectory.from_config(alembic_config()).get_heads())
