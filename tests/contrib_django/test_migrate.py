"""``manage.py migrate`` makes exactly relay's schema, adopts tables ``relay migrate`` made, and
upgrades a project migrated by an older relay (one Django migration per relay revision).

The test databases were migrated by Django (pytest-django runs ``migrate``): their relay tables
are compared, column by column and index by index, with those ``relay migrate`` makes in a
scratch database of the same server.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from django.db import connections
from test_commands import manage

from relay import _migrations as schema_migrations
from relay._database import create_engine
from relay._migrations import require_current_schema
from relay.contrib.django import database_url, relay_engine
from relay.contrib.django.models import AuditEntry, OutboxEvent, Pause

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "postgresql", "mariadb"])

TABLES = ("relay_outbox", "relay_audit", "relay_pause", "relay_alembic_version")


def snapshot(engine: sa.Engine) -> dict[str, Any]:
    """relay's tables as the database describes them: columns, indexes, constraints.

    Read on one connection: an inspector of the engine itself opens a connection per question
    (the engines here keep none), which made a snapshot take a second on MariaDB.
    """
    found: dict[str, Any] = {}
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        for table in TABLES:
            if not inspector.has_table(table):
                found[table] = None
                continue
            found[table] = {
                "columns": [
                    (
                        c["name"],
                        str(c["type"]),
                        c["nullable"],
                        str(c.get("default")),
                        c.get("comment"),
                    )
                    for c in inspector.get_columns(table)
                ],
                "indexes": sorted(
                    (
                        i["name"],
                        tuple(i["column_names"]),
                        bool(i["unique"]),
                        str(
                            sorted((k, str(v)) for k, v in (i.get("dialect_options") or {}).items())
                        ),
                    )
                    for i in inspector.get_indexes(table)
                ),
                "unique": sorted(
                    (u["name"], tuple(u["column_names"]))
                    for u in inspector.get_unique_constraints(table)
                ),
                "checks": sorted(
                    (str(c["name"]), " ".join(str(c["sqltext"]).split()))
                    for c in inspector.get_check_constraints(table)
                ),
                "pk": tuple(inspector.get_pk_constraint(table)["constrained_columns"]),
            }
        found["revision"] = conn.execute(
            sa.text("SELECT version_num FROM relay_alembic_version")
        ).scalar_one()
    return found


@contextlib.contextmanager
def _new_database(
    alias: str, tmp_path: Path, *, copy_of_test_database: bool
) -> Iterator[tuple[str, str]]:
    """A new database on ``alias``'s server, empty or a copy of the test database: (its name for
    Django, its SQLAlchemy URL)."""
    if connections[alias].vendor == "sqlite":
        path = str(tmp_path / "scratch.db")
        if copy_of_test_database:
            test_database = connections[alias].settings_dict["NAME"]
            with (
                contextlib.closing(sqlite3.connect(test_database)) as source,
                contextlib.closing(sqlite3.connect(path)) as copy,
            ):
                source.backup(copy)
        yield path, f"sqlite:///{path}"
        return
    name = f"relay_djs_{secrets.token_hex(4)}"
    server = sa.make_url(database_url(alias))
    create = f"CREATE DATABASE {name}"
    if copy_of_test_database:
        assert connections[alias].vendor == "postgresql", "only PostgreSQL copies a database"
        # PostgreSQL copies a database nobody is connected to: Django's connection closes (the
        # test's next query opens another) and this one goes to the maintenance database.
        connections[alias].close()
        create += f" TEMPLATE {server.database}"
        server = server.set(database="postgres")
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(create)
    try:
        yield name, server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if admin.dialect.name == "postgresql" else ""
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")


@pytest.fixture
def scratch(alias: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A new empty database on ``alias``'s server: (its name for Django, its SQLAlchemy URL)."""
    with _new_database(alias, tmp_path, copy_of_test_database=False) as database:
        yield database


@pytest.fixture
def migrated_scratch(alias: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A new database on ``alias``'s server (SQLite or PostgreSQL) that Django's ``migrate``
    took to head: a copy of the test database (pytest-django migrated it), which saves the test
    a ``migrate`` of its own (a child process) before the step it is about."""
    with _new_database(alias, tmp_path, copy_of_test_database=True) as database:
        yield database


def test_django_migrate_makes_exactly_relay_migrates_schema(
    alias: str, scratch: tuple[str, str]
) -> None:
    """The schema Django's migrate made equals the one ``relay migrate`` makes, at head."""
    _name, url = scratch
    reference = create_engine(url)
    try:
        schema_migrations.upgrade(reference)
        expected = snapshot(reference)
    finally:
        reference.dispose()
    made_by_django = snapshot(relay_engine(alias))
    for table in TABLES:
        for part in expected[table]:
            assert made_by_django[table][part] == expected[table][part], (table, part)
    assert made_by_django == expected
    assert expected["revision"] == schema_migrations.heads()[0]
    require_current_schema(relay_engine(alias))  # what relay run / drain check first


def test_relay_migrate_afterwards_changes_nothing(alias: str) -> None:
    """``relay migrate`` on a database Django migrated finds nothing to do."""
    before = snapshot(relay_engine(alias))
    done = manage("migrate", default=alias)
    assert done.returncode == 0, done.stderr
    assert snapshot(relay_engine(alias)) == before


def test_tables_made_by_relay_migrate_are_adopted(alias: str, scratch: tuple[str, str]) -> None:
    """Django's migrate over tables ``relay migrate`` made keeps them and their rows."""
    name, url = scratch
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    schema_migrations.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO relay_outbox (insert_id, event, distinct_id, time_ms, properties,"
                " state, attempts, next_attempt_at, created_at, updated_at) VALUES"
                " ('kept-1', 'e', 'd', 1, '{}', 'pending', 0, CURRENT_TIMESTAMP,"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    before = snapshot(engine)
    done = manage(
        "relay",
        default=alias,
        command="migrate",
        RELAY_TEST_DJANGO_NAME=name,
        RELAY_TEST_DJANGO_TEST_NAMES="",
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "Applying relay.0001_relay_schema... OK" in done.stdout
    assert snapshot(engine) == before
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT insert_id FROM relay_outbox")).scalars().all() == [
            "kept-1"
        ]
    engine.dispose()


@pytest.mark.parametrize("alias", ["default"])  # relay's downgrades are tested per dialect
def test_migrate_back_to_zero_drops_relays_tables(
    alias: str, migrated_scratch: tuple[str, str]
) -> None:
    """``migrate relay zero`` runs relay's downgrade: the tables are gone, then come back."""
    name, url = migrated_scratch
    env = {"RELAY_TEST_DJANGO_NAME": name, "RELAY_TEST_DJANGO_TEST_NAMES": ""}
    gone = manage("relay", "zero", default=alias, command="migrate", **env)
    assert gone.returncode == 0, gone.stderr
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    try:
        assert not sa.inspect(engine).has_table("relay_outbox")
        assert manage("relay", default=alias, command="migrate", **env).returncode == 0
        assert sa.inspect(engine).has_table("relay_outbox")
    finally:
        engine.dispose()


def _scratch_env(name: str, **extra: str) -> dict[str, str]:
    return {"RELAY_TEST_DJANGO_NAME": name, "RELAY_TEST_DJANGO_TEST_NAMES": "", **extra}


def _revision(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT version_num FROM relay_alembic_version")).scalar())


def test_project_migrated_by_fa9badf_reaches_the_current_schema(
    alias: str, scratch: tuple[str, str]
) -> None:
    """A project migrated by fa9badf's one relay migration gets today's schema from ``migrate``."""
    name, url = scratch
    old = manage(
        default=alias, command="migrate", **_scratch_env(name, RELAY_TEST_DJANGO_FA9BADF="1")
    )
    assert old.returncode == 0, old.stderr + old.stdout
    assert "Applying relay.0001_relay_schema... OK" in old.stdout
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    try:
        assert _revision(engine) == "0004"
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO relay_outbox (insert_id, event, distinct_id, time_ms, properties,"
                    " state, attempts, next_attempt_at, created_at, updated_at) VALUES"
                    " ('kept-1', 'e', 'd', 1, '{}', 'pending', 0, CURRENT_TIMESTAMP,"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
        new = manage(default=alias, command="migrate", **_scratch_env(name))
        assert new.returncode == 0, new.stderr + new.stdout
        assert "Applying relay.0001_relay_schema" not in new.stdout
        assert "Applying relay.0004_profile_updates... OK" in new.stdout
        assert snapshot(engine) == snapshot(relay_engine(alias))  # Django's migrate at head
        assert _revision(engine) == schema_migrations.heads()[0]
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT insert_id FROM relay_outbox")).scalars().all() == [
                "kept-1"
            ]
        checked = manage(
            "--database", "default", default=alias, command="check", **_scratch_env(name)
        )
        assert checked.returncode == 0, checked.stderr
        assert "relay." not in checked.stderr
    finally:
        engine.dispose()


@pytest.mark.parametrize("alias", ["default", "postgresql"])
def test_migrating_back_one_relay_migration_undoes_exactly_its_revision(
    alias: str, migrated_scratch: tuple[str, str]
) -> None:
    """``migrate relay 0003_...`` takes the tables to revision 0003; ``migrate`` redoes 0004."""
    name, url = migrated_scratch
    env = _scratch_env(name)
    back = manage("relay", "0003_pause_and_lanes", default=alias, command="migrate", **env)
    assert back.returncode == 0, back.stderr + back.stdout
    assert "Unapplying relay.0004_profile_updates... OK" in back.stdout
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    try:
        assert _revision(engine) == "0003"
        columns = {c["name"] for c in sa.inspect(engine).get_columns("relay_outbox")}
        assert "lane" in columns
        assert "kind" not in columns
        warned = manage("--database", "default", default=alias, command="check", **env)
        assert warned.returncode == 0, warned.stderr
        assert "relay.W002" in warned.stderr
        assert "revision 0003" in warned.stderr
        again = manage(default=alias, command="migrate", **env)
        assert again.returncode == 0, again.stderr
        assert "Applying relay.0004_profile_updates... OK" in again.stdout
        assert _revision(engine) == schema_migrations.heads()[0]
    finally:
        engine.dispose()


@pytest.mark.parametrize("alias", ["default"])
def test_check_errors_when_tables_are_behind_with_every_migration_applied(
    alias: str, migrated_scratch: tuple[str, str]
) -> None:
    """Tables behind relay's head that ``migrate`` cannot fix fail ``check --database``, E002."""
    name, url = migrated_scratch
    env = _scratch_env(name)
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    try:
        schema_migrations.downgrade(engine, "0003")  # behind Django's back
        failed = manage("--database", "default", default=alias, command="check", **env)
        assert failed.returncode != 0
        assert "relay.E002" in failed.stderr
        assert "at revision 0003" in failed.stderr
        assert "manage.py relay migrate" in failed.stderr
        assert manage("migrate", default=alias, **env).returncode == 0  # manage.py relay migrate
        fixed = manage("--database", "default", default=alias, command="check", **env)
        assert fixed.returncode == 0, fixed.stderr
        assert _revision(engine) == schema_migrations.heads()[0]
    finally:
        engine.dispose()


def test_unmanaged_models_match_relays_tables_column_for_column(alias: str) -> None:
    """Every column of relay's tables is a field of its model, with the same nullability."""
    inspector = sa.inspect(relay_engine(alias))
    for model in (OutboxEvent, AuditEntry, Pause):
        table = model._meta.db_table
        columns = {c["name"]: c["nullable"] for c in inspector.get_columns(table)}
        fields = {f.column: f.null for f in model._meta.concrete_fields}
        assert fields == columns, table


@pytest.mark.parametrize("alias", ["default"])
def test_a_fresh_project_gets_no_relay_check_message(alias: str, scratch: tuple[str, str]) -> None:
    """Before the first ``migrate`` (no relay tables, migrations pending) relay says nothing."""
    name, _url = scratch
    fresh = manage("--database", "default", default=alias, command="check", **_scratch_env(name))
    assert fresh.returncode == 0, fresh.stderr
    assert "relay." not in fresh.stderr
