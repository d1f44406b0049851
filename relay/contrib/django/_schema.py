"""relay's Alembic migrations run on Django's connection, for ``manage.py migrate``.

The Django migration of this app calls :func:`upgrade` (and :func:`downgrade` when migrated
back to zero): the same revisions ``relay migrate`` runs, recorded in the same version table
(``relay_alembic_version``), so the schema is exactly relay's, ``relay migrate`` afterwards finds
nothing to do, and tables ``relay migrate`` made earlier are adopted as they are. They run on
Django's own connection (the test database during tests, SQLite in memory included), outside
any transaction (the migration is not atomic), as ``relay migrate`` runs them: each revision
commits its own steps, and the online ones build indexes concurrently on PostgreSQL.
"""

from __future__ import annotations

from alembic import command

from relay._migrations import alembic_config
from relay.contrib.django._bridge import borrowed_connection


def upgrade(alias: str, revision: str = "head") -> None:
    """Upgrade relay's tables in Django's database ``alias`` to ``revision``."""
    _run(alias, "upgrade", revision)


def downgrade(alias: str, revision: str = "base") -> None:
    """Downgrade relay's tables in Django's database ``alias`` (``base`` drops them)."""
    _run(alias, "downgrade", revision)


def _run(alias: str, step: str, revision: str) -> None:
    config = alembic_config()
    with borrowed_connection(alias) as conn:
        config.attributes["connection"] = conn
        getattr(command, step)(config, revision)
