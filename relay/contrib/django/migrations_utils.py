"""One Django migration per relay Alembic revision: the operation they run, and the checks.

relay's schema is made by its own Alembic revisions (``migrations/versions``, run by
``relay migrate``). In a Django project ``manage.py migrate`` runs them instead, one Django
migration of this app per Alembic revision (as procrastinate's Django migrations each run one
of its SQL files), so that a project that upgrades relay gets the new revision from its next
``migrate``, and ``migrate relay 0003_...`` goes back to exactly that revision.

Each Django migration holds a :class:`RunRelayRevision` and the state changes of the unmanaged
models that revision's tables imply (``AddField`` on an unmanaged model writes no SQL). The
operation is idempotent: a database already at (or past) the revision is left as it is, so the
tables ``relay migrate`` made, and those a project's earlier ``migrate`` made, are adopted.

Adding relay's next revision ``NNNN`` is one file,
``relay/contrib/django/migrations/NNNN_<same name as the Alembic file>.py``::

    class Migration(migrations.Migration):
        atomic = False
        dependencies = [("relay", "<the previous Django migration>")]
        operations = [RunRelayRevision("NNNN"), *<AddField/CreateModel for the new columns>]

plus the same fields on the models in ``models.py``. ``tests/unit/test_django_migrations.py``
and the system check ``relay.E003`` fail until that file exists.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from django.core import checks
from django.db import connections, router
from django.db.migrations.operations.base import Operation

from relay._migrations import alembic_config
from relay.contrib.django._bridge import borrowed_connection

VERSION_TABLE = "relay_alembic_version"


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def relay_revisions() -> list[str]:
    """relay's Alembic revisions, oldest first (one line of history: relay has no branches)."""
    return [revision.revision for revision in reversed(list(_script().walk_revisions()))]


def stored_revision(alias: str) -> str | None:
    """The relay revision recorded in Django's database ``alias``, or None (no tables yet)."""
    with borrowed_connection(alias) as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        heads = context.get_current_heads()
    return heads[0] if heads else None


def _at_or_past(current: str | None, revision: str) -> bool:
    """Whether the database at ``current`` already has ``revision`` applied.

    A revision this relay does not know was written by a newer relay: it is past every
    revision known here.
    """
    if current is None:
        return False
    if not _known(current):
        return True
    return revision in {r.revision for r in _script().iterate_revisions(current, "base")}


def _known(revision: str) -> bool:
    try:
        return _script().get_revision(revision) is not None
    except Exception:  # noqa: BLE001 - alembic raises several kinds for an unknown id
        return False


def upgrade_to(alias: str, revision: str) -> None:
    """Upgrade relay's tables in ``alias`` to ``revision``; nothing when already at or past it."""
    if _at_or_past(stored_revision(alias), revision):
        return
    run_alembic(alias, "upgrade", revision)


def downgrade_below(alias: str, revision: str) -> None:
    """Undo ``revision`` (and any later one) in ``alias``; nothing when it is not applied."""
    if not _at_or_past(stored_revision(alias), revision):
        return
    previous = _script().get_revision(revision)
    target = previous.down_revision if previous is not None else None
    run_alembic(alias, "downgrade", str(target) if target else "base")


def run_alembic(alias: str, step: str, revision: str) -> None:
    """``alembic <step> <revision>`` on relay's revisions, on Django's connection ``alias``."""
    config = alembic_config()
    with borrowed_connection(alias) as conn:
        config.attributes["connection"] = conn
        getattr(command, step)(config, revision)


class RunRelayRevision(Operation):
    """Run relay's Alembic revision ``revision`` (backwards: undo it) on the migrated database.

    The Django migration holding it must be ``atomic = False``: the revisions commit their own
    steps, and on PostgreSQL build indexes ``CONCURRENTLY``, as ``relay migrate`` runs them.
    """

    reversible = True
    reduces_to_sql = False
    elidable = False

    def __init__(self, revision: str) -> None:
        self.revision = revision

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        """How ``makemigrations`` and ``squashmigrations`` write this operation back."""
        return (f"{__name__}.{type(self).__qualname__}", [self.revision], {})

    def state_forwards(self, app_label: str, state: Any) -> None:
        """No model state: the models' changes are their own operations in the migration."""

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        """Upgrade the tables to this revision, unless they are there (or past it) already."""
        alias = schema_editor.connection.alias
        if router.allow_migrate(alias, app_label):
            upgrade_to(alias, self.revision)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        """Downgrade the tables to the revision before this one."""
        alias = schema_editor.connection.alias
        if router.allow_migrate(alias, app_label):
            downgrade_below(alias, self.revision)

    def describe(self) -> str:
        """What ``migrate --plan`` and ``sqlmigrate`` print."""
        return f"Run relay's Alembic revision {self.revision}"

    @property
    def migration_name_fragment(self) -> str:
        """The name ``makemigrations`` would give a migration of this operation alone."""
        return f"relay_{self.revision}"


def django_migration_revisions() -> list[str]:
    """The relay revisions this app's Django migrations run, in file order."""
    package = importlib.import_module("relay.contrib.django.migrations")
    found: list[str] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        migration = getattr(module, "Migration", None)
        for operation in getattr(migration, "operations", ()):
            if isinstance(operation, RunRelayRevision):
                found.append(operation.revision)
    return found


def schema_messages(alias: str) -> list[checks.CheckMessage]:
    """System-check messages about relay's tables in Django's database ``alias``.

    Nothing when they are at this relay's head revision (or this app does not migrate there,
    or has not yet: no tables and its migrations pending, a fresh project).
    ``relay.W002`` when they are behind and this app's Django migrations are pending (the next
    ``manage.py migrate`` brings them up); ``relay.E002`` when they are behind although every
    migration is recorded as applied (``migrate`` cannot help: ``manage.py relay migrate`` can),
    and when a newer relay migrated them.
    """
    from django.db.migrations.loader import MigrationLoader  # noqa: PLC0415

    if not router.allow_migrate(alias, "relay"):
        return []
    head = relay_revisions()[-1]
    current = stored_revision(alias)
    if current == head:
        return []
    where = f"at revision {current}" if current else "not created"
    if current is not None and not _known(current):
        return [
            checks.Error(
                f"relay's tables in database {alias!r} are {where}, which this relay does not "
                f"know (its newest is {head}): a newer relay migrated them; upgrade relay",
                id="relay.E002",
            )
        ]
    loader = MigrationLoader(connections[alias], ignore_no_migrations=True)
    pending = [
        key
        for key in loader.graph.nodes
        if key[0] == "relay" and key not in loader.applied_migrations
    ]
    if pending and current is None:
        return []  # a project that has not migrated relay yet: its first migrate makes them
    if pending:
        return [
            checks.Warning(
                f"relay's tables in database {alias!r} are {where}, behind revision {head} that "
                "this relay needs",
                hint=f"run manage.py migrate relay --database {alias}",
                id="relay.W002",
            )
        ]
    return [
        checks.Error(
            f"relay's tables in database {alias!r} are {where}, behind revision {head} that this "
            "relay needs, although every relay Django migration is recorded as applied",
            hint=f"run manage.py relay migrate (database {alias!r})",
            id="relay.E002",
        )
    ]
