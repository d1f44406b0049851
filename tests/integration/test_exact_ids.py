"""Ids are compared byte for byte on every database: case and trailing spaces tell ids apart.

MariaDB's default collation compared ``alice``, ``Alice``, ``ALICE`` and ``"alice "`` as one id
(migration 0005 gives the id columns a binary collation without padding); Mixpanel's ids are
case-sensitive, so relay must be too, through ``track()``, ``relay forget`` and ``relay
migrate``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hr_catalog import MixPanelEvent
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from relay import _migrations
from relay._database import create_engine
from relay._errors import RelayError
from relay._tables import outbox
from relay._tracking import track
from relay.cli import main
from relay.testing.scratch import MARIADB_ADMIN_URL, fresh_tables, scratch_database

KEY = "exact-ids-test-key"
#: Ids MariaDB's default collation took for one: case and trailing-space variants.
ALICES = ("alice", "Alice", "ALICE", "alice ")
ID_COLUMNS = ("insert_id", "distinct_id", "profile_key")


def _properties(employee: str) -> dict[str, object]:
    return {
        "employee_id": employee,
        "organization_id": "0b6a3a7e-0000-4000-8000-000000000001",
        "organization_name": "Exact Ids",
        "role": "employee",
        "impersonation": False,
        "survey_id": str(uuid.uuid4()),
        "survey_run_id": "run-1",
        "survey_type": "pulse",
        "channel": "slack",
        "question_count": 3,
        "is_reminder": False,
    }


def _track(
    engine: Engine, distinct_id: str, insert_id: str | None = None, *, strict: bool = True
) -> str | None:
    with Session(engine) as session, session.begin():
        return track(
            session,
            event=MixPanelEvent.SURVEY_DELIVERED,
            distinct_id=distinct_id,
            properties=_properties(str(uuid.uuid4())),
            insert_id=insert_id,
            strict=strict,
        )


def _distinct_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(outbox.c.distinct_id)).scalars())


def _insert_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(outbox.c.insert_id)).scalars())


def test_insert_ids_that_differ_only_in_case_are_two_events(engine: Engine) -> None:
    """`ORD-7fQ2-AA` tracked after `ord-7Fq2-aa` is stored as a second event, not a duplicate."""
    assert _track(engine, "buyer", "ord-7Fq2-aa") == "ord-7Fq2-aa"

    assert _track(engine, "buyer", "ORD-7fQ2-AA", strict=False) == "ORD-7fQ2-AA"

    assert _insert_ids(engine) == sorted(["ord-7Fq2-aa", "ORD-7fQ2-AA"])


def test_the_same_insert_id_twice_is_still_a_duplicate(engine: Engine) -> None:
    """Byte-equal `$insert_id`s stay one event: the exact comparison keeps deduplication."""
    assert _track(engine, "buyer", "ord-7Fq2-aa") == "ord-7Fq2-aa"

    assert _track(engine, "buyer", "ord-7Fq2-aa", strict=False) is None

    assert _insert_ids(engine) == ["ord-7Fq2-aa"]


def test_forget_erases_only_the_exact_distinct_id(engine: Engine) -> None:
    """`relay forget --distinct-id alice --yes` leaves the rows of Alice, ALICE and "alice "."""
    for who in ALICES:
        assert _track(engine, who) is not None
    url = engine.url.render_as_string(hide_password=False)

    result = CliRunner().invoke(
        main,
        ["--database-url", url, "forget", "--distinct-id", "alice", "--yes"],
        env={"RELAY_ERASURE_HASH_KEY": KEY},
        catch_exceptions=False,
    )

    assert result.exit_code == 0, result.output
    assert "erased 1 row" in result.output, result.output
    assert _distinct_ids(engine) == sorted(["Alice", "ALICE", "alice "])


@pytest.fixture
def mariadb_at_0004() -> Iterator[Engine]:
    """A MariaDB database of its own with relay's tables migrated to revision 0004."""
    with scratch_database(MARIADB_ADMIN_URL) as url:
        engine = create_engine(url)
        try:
            _migrations.upgrade(engine, "0004")
            yield engine
        finally:
            engine.dispose()


def _collations(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT column_name, collation_name FROM information_schema.columns "
                "WHERE table_schema = DATABASE() AND table_name = 'relay_outbox'"
            )
        )
        return {str(name).lower(): str(collation) for name, collation in rows}


def test_migrating_mariadb_gives_the_id_columns_the_models_binary_collation(
    mariadb_at_0004: Engine,
) -> None:
    """`relay migrate` from 0004 gives each id column the no-pad binary collation the models
    declare (alembic check does not compare collations, so this test does)."""
    engine = mariadb_at_0004
    _track(engine, "alice", "ord-7Fq2-aa")

    _migrations.upgrade(engine)

    migrated = _collations(engine)
    assert {c: migrated[c] for c in ID_COLUMNS} == dict.fromkeys(ID_COLUMNS, "utf8mb4_nopad_bin")
    assert _track(engine, "alice", "ORD-7fQ2-AA") == "ORD-7fQ2-AA"
    assert _distinct_ids(engine) == ["alice", "alice"]


def test_models_and_migration_declare_the_same_id_collations(
    mariadb_at_0004: Engine, mariadb_url: str
) -> None:
    """The tables `metadata.create_all` makes and the migrated ones collate ids alike."""
    _migrations.upgrade(mariadb_at_0004)
    with fresh_tables(mariadb_url) as created:
        from_models = _collations(created)

    migrated = _collations(mariadb_at_0004)
    assert {c: from_models[c] for c in ID_COLUMNS} == {c: migrated[c] for c in ID_COLUMNS}


def test_downgrade_below_0005_refuses_while_insert_ids_differ_only_in_case(
    mariadb_at_0004: Engine,
) -> None:
    """With `ord-7Fq2-aa` and `ORD-7fQ2-AA` stored, the downgrade to 0004 refuses in one line
    naming the two rows, and the schema stays at 0005 with both rows."""
    engine = mariadb_at_0004
    _migrations.upgrade(engine, "0005")
    _track(engine, "buyer", "ord-7Fq2-aa")
    _track(engine, "buyer", "ORD-7fQ2-AA")

    with pytest.raises(RelayError, match="2 rows") as refused:
        _migrations.downgrade(engine, "0004")

    assert "\n" not in str(refused.value)
    assert _collations(engine)["insert_id"] == "utf8mb4_nopad_bin"
    assert _insert_ids(engine) == sorted(["ord-7Fq2-aa", "ORD-7fQ2-AA"])
    with engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM relay_alembic_version"))
        assert version.scalar_one() == "0005"
