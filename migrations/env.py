"""Alembic environment for relay's tables.

The URL is taken, in order, from a connection handed over in ``config.attributes``
(``relay migrate`` and the Python API), ``-x url=...``, ``sqlalchemy.url`` in the ini file, or
``RelaySettings().database_url`` (``RELAY_DATABASE_URL``, a secret). Run by hand, ``alembic``
validates every ``RELAY_*`` setting first and refuses a bad one in one ``FAILED:`` line. Only
relay's own tables are compared, so ``alembic check`` stays clean in a database shared with a
host application.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alembic import context
from sqlalchemy.engine import Connection

from relay._database import create_engine, immediate
from relay._tables import metadata

if TYPE_CHECKING:  # mypy checks the source folder; installed, it is relay.migrations
    from migrations import _online
else:
    from relay.migrations import _online

VERSION_TABLE = "relay_alembic_version"

config = context.config


def _include_name(name: str | None, type_: str, _parent: Any) -> bool:
    # Applied to reflected names, before reflection: a host's tables are never even read, so
    # autogenerate compares relay's tables only (relay's own metadata holds nothing else).
    if type_ == "table":
        return name in metadata.tables
    return True


def _configure(connection: Connection) -> None:
    if connection.dialect.name == "sqlite" and not connection.in_transaction():
        # Migrations take SQLite's write lock when they begin (relay's engines honour this
        # option): a check a downgrade makes and the change after it see the same rows.
        immediate(connection)
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_name=_include_name,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
        # Online revisions commit between steps (migrations/_online.py): one transaction per
        # revision keeps the version table in step with what is done.
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    # Run by hand, the settings are validated whole first (the revisions read the lock
    # timeouts from them): a bad one is one FAILED line naming it, not a pydantic traceback.
    settings = _online.settings()
    return (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or settings.database_url.get_secret_value()
    )


def run_migrations() -> None:
    """Run against the handed-over connection, or one made from the configured URL."""
    if context.is_offline_mode():
        context.configure(
            url=_url(), target_metadata=metadata, version_table=VERSION_TABLE, literal_binds=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    engine = create_engine(_url())
    try:
        with engine.connect() as conn:
            _configure(conn)
            conn.commit()
    finally:
        engine.dispose()


run_migrations()
