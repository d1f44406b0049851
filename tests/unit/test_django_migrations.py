"""relay's Django migrations run relay's Alembic revisions, one each, in order."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from alembic.script import ScriptDirectory

from relay._migrations import alembic_config
from relay.contrib.django import migrations as django_migrations
from relay.contrib.django.migrations_utils import (
    RunRelayRevision,
    django_migration_revisions,
    relay_revisions,
)


def test_every_alembic_revision_has_exactly_one_django_migration_in_order() -> None:
    """Adding an Alembic revision without its Django twin (or twice) fails here."""
    assert django_migration_revisions() == relay_revisions(), (
        "add relay/contrib/django/migrations/NNNN_<name>.py running RunRelayRevision('NNNN') "
        "for each new revision in migrations/versions (see docs/development.md)"
    )


def test_each_django_migration_is_named_after_its_revision_and_chained() -> None:
    """Migration ``NNNN_x`` runs revision NNNN (file ``NNNN_x.py`` too), is not atomic, chained."""
    names = sorted(i.name for i in pkgutil.iter_modules(django_migrations.__path__))
    script = ScriptDirectory.from_config(alembic_config())
    alembic_files = {r.revision: Path(str(r.path)).stem for r in script.walk_revisions()}
    # 0001 keeps the name every project recorded before relay had one migration per revision.
    alembic_files["0001"] = "0001_relay_schema"
    assert names == [alembic_files[r] for r in relay_revisions()]
    previous: str | None = None
    for name in names:
        migration = importlib.import_module(f"{django_migrations.__name__}.{name}").Migration
        runs = [op.revision for op in migration.operations if isinstance(op, RunRelayRevision)]
        assert runs == [name[:4]], name
        assert migration.atomic is False, name
        expected = [("relay", previous)] if previous else []
        assert list(migration.dependencies) == expected, name
        previous = name


def test_run_relay_revision_deconstructs_to_itself() -> None:
    """``squashmigrations`` writes the operation back as the same revision."""
    path, args, kwargs = RunRelayRevision("0003").deconstruct()
    assert path == "relay.contrib.django.migrations_utils.RunRelayRevision"
    assert (args, kwargs) == (["0003"], {})
