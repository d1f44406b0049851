"""relay's Alembic history: one head, reversible, and identical to the models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine

from relay import _migrations
from relay._database import create_engine
from relay._tables import metadata


@pytest.fixture
def bare_engine(db_url: str) -> Iterator[Engine]:
    """An engine on each dialect with none of relay's tables or version table."""
    engine = create_engine(db_url)
    metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS relay_alembic_version"))
    yield engine
    _migrations.downgrade(engine, "base")
    engine.dispose()


def _tables(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_history_has_a_single_head() -> None:
    """Exactly one head revision exists, so `relay migrate` has one target."""
    assert _migrations.heads() == ["0007"]


def test_upgrade_downgrade_upgrade_round_trips(bare_engine: Engine) -> None:
    """Upgrading, downgrading to base and upgrading again leaves the tables in place."""
    _migrations.upgrade(bare_engine)
    assert {"relay_outbox", "relay_audit", "relay_alembic_version"} <= _tables(bare_engine)
    _migrations.downgrade(bare_engine, "base")
    assert not {"relay_outbox", "relay_audit"} & _tables(bare_engine)
    _migrations.upgrade(bare_engine)
    assert {"relay_outbox", "relay_audit"} <= _tables(bare_engine)


def test_alembic_check_finds_no_difference_between_models_and_migrations(
    bare_engine: Engine,
) -> None:
    """`alembic check` after upgrading reports nothing: the models equal the migrations."""
    _migrations.upgrade(bare_engine)
    config = _migrations.alembic_config(bare_engine)
    command.check(config)


def test_check_ignores_a_host_applications_own_tables(bare_engine: Engine) -> None:
    """A host table in the same database is not reported as a difference."""
    _migrations.upgrade(bare_engine)
    host = sa.MetaData()
    sa.Table("host_orders", host, sa.Column("id", sa.Integer, primary_key=True))
    host.create_all(bare_engine)
    try:
        command.check(_migrations.alembic_config(bare_engine))
    finally:
        host.drop_all(bare_engine)
