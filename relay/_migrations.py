"""relay's Alembic migrations: running them (``relay migrate``) and checking the revision.

relay keeps its revision in its own version table (``relay_alembic_version``), so its
migrations run beside a host application's own Alembic history in the same database.

The start-up check: during a rolling upgrade, relays of two versions can meet one database.
Two relays that read leases from different columns would each think the other's rows free
(revision 0002 moved a lease's expiry from ``next_attempt_at`` to ``lease_expires_at``), so a
relay refuses to start
unless the database is at exactly the revision its code was written for: not older (run
``relay migrate`` first), and not a revision it does not know (a newer relay migrated it;
upgrade this one). Entry points that claim or change rows (``relay run``, ``relay drain``,
admin commands that write) call ``require_current_schema`` once before doing anything.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Engine

from relay._database import create_engine
from relay._errors import SchemaRevisionError


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


def current(engine: Engine) -> list[str]:
    """The revisions recorded in relay's version table (empty when it is missing or empty)."""
    return _stored_revisions(engine)


def resolve(revision: str) -> str | None:
    """The revision id ``revision`` names (``head``, ``0003``), ``None`` for a relative one."""
    script = ScriptDirectory.from_config(alembic_config())
    try:
        found = script.get_revision(revision)
    except CommandError:  # relative targets (+1), and typos (the upgrade itself said why)
        return None
    return None if found is None else str(found.revision)


def heads() -> list[str]:
    """The head revisions of relay's migration history (exactly one when healthy)."""
    return list(ScriptDirectory.from_config(alembic_config()).get_heads())


def stamp(engine: Engine, revision: str = "head") -> None:
    """Record ``revision`` in the version table without running any migration.

    For tables made another way to the same shape (``relay._tables.metadata.create_all``, as the
    test fixtures do), so that ``relay._migrations`` accepts them.
    """
    config = alembic_config(engine)
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.stamp(config, revision, purge=True)
        conn.commit()


_VERSION_TABLE = "relay_alembic_version"


def require_current_schema(database: Engine | str) -> str:
    """Return the database's relay schema revision, or raise ``SchemaRevisionError``.

    ``database`` is an engine or a database URL (an engine is then made and disposed of).
    Guarantees: one query (the version table), nothing cached, nothing written. Raises
    ``SchemaRevisionError`` (a ``ConfigurationError``, with a one-line message naming what to
    do) when the version table is missing or empty, when the revision is older than this
    relay's head, and when it is one this relay does not know. Other database errors (the
    server unreachable, ...) propagate as they are.
    """
    if isinstance(database, str):
        engine = create_engine(database)
        try:
            return require_current_schema(engine)
        finally:
            engine.dispose()
    found = _stored_revisions(database)
    script = ScriptDirectory.from_config(alembic_config())
    (head,) = script.get_heads()
    if not found:
        raise SchemaRevisionError(
            f"relay's tables are not migrated (no {_VERSION_TABLE} revision): "
            "run `relay migrate` first"
        )
    known = {revision.revision for revision in script.walk_revisions()}
    if not set(found) <= known:
        raise SchemaRevisionError(
            "the database's relay schema is newer than this relay knows: "
            f"upgrade relay (this one runs revision {head}), or run the version that migrated it"
        )
    if found != [head]:
        raise SchemaRevisionError(
            f"the database's relay schema is older than this relay needs (revision {head}): "
            "run `relay migrate` first"
        )
    return head


def _stored_revisions(engine: Engine) -> list[str]:
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT version_num FROM {_VERSION_TABLE}"))  # noqa: S608 - a constant
            return [str(value) for (value,) in rows]
    except sa.exc.DBAPIError as exc:
        if _is_missing_table(exc):
            return []
        raise


def _is_missing_table(exc: sa.exc.DBAPIError) -> bool:
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "42P01":  # PostgreSQL: undefined_table
        return True
    args: tuple[object, ...] = getattr(orig, "args", ())
    if args and args[0] == 1146:  # MariaDB/MySQL: ER_NO_SUCH_TABLE
        return True
    return "no such table" in str(orig)  # SQLite
