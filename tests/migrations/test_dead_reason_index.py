"""Revision 0007: the dead letters of one reason are found through ``ix_relay_outbox_dead_reason``.

On each database the index exists after the upgrade with the shape the revision documents
(PostgreSQL: hash, partial on dead rows; SQLite: partial; MariaDB: a 200-character prefix), is
gone after the downgrade with every row kept, and the one-reason lookup the admin makes uses it.
A dead row's reason of 1,000 non-Latin characters (3,000 bytes, more than a PostgreSQL B-tree
entry may hold) is still written.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from migration_rig import drop_relay_tables, revision
from sqlalchemy.engine import Engine

from relay import _migrations
from relay._database import create_engine
from relay._tables import LAST_ERROR_MAX_LENGTH, outbox

INDEX = "ix_relay_outbox_dead_reason"
T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def bare(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    drop_relay_tables(engine)
    yield engine
    drop_relay_tables(engine)
    engine.dispose()


def _rows(n: int, *, state: str, reason: str | None) -> list[dict[str, object]]:
    return [
        {
            "insert_id": f"{state}-{i}-{random.getrandbits(40):x}",
            "event": "svc.surveys.survey_delivered",
            "distinct_id": f"p-{i}",
            "time_ms": 1_796_000_000_000 + i,
            "properties": {"n": i},
            "state": state,
            "attempts": 1,
            "next_attempt_at": T0,
            "last_error": reason,
            "created_at": T0,
            "updated_at": T0,
            "finished_at": None if state == "pending" else T0,
        }
        for i in range(n)
    ]


def _index(engine: Engine) -> dict[str, object] | None:
    found = [i for i in sa.inspect(engine).get_indexes("relay_outbox") if i["name"] == INDEX]
    return dict(found[0]) if found else None


def _definition(engine: Engine) -> str:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            return str(
                conn.execute(
                    sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"), {"n": INDEX}
                ).scalar_one()
            )
        if engine.dialect.name == "sqlite":
            return str(
                conn.execute(
                    sa.text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": INDEX}
                ).scalar_one()
            )
        rows = conn.execute(sa.text(f"SHOW INDEX FROM relay_outbox WHERE Key_name = '{INDEX}'"))
        return " ".join(f"{r.Column_name}({r.Sub_part})" for r in rows)


def test_the_index_comes_with_0007_and_goes_with_its_downgrade(bare: Engine) -> None:
    _migrations.upgrade(bare, "0006")
    with bare.begin() as conn:
        conn.execute(sa.insert(outbox), _rows(3, state="dead", reason="HTTP 400: refused"))
        conn.execute(sa.insert(outbox), _rows(2, state="delivered", reason=None))
    assert _index(bare) is None

    _migrations.upgrade(bare, "0007")

    assert revision(bare) == "0007"
    assert _index(bare) is not None
    definition = _definition(bare)
    if bare.dialect.name == "postgresql":
        assert "USING hash (last_error)" in definition
        assert "WHERE ((state)::text = 'dead'::text)" in definition
    elif bare.dialect.name == "sqlite":
        assert "last_error" in definition
        assert "WHERE state = 'dead'" in definition
    else:
        assert definition == "last_error(200)"

    _migrations.downgrade(bare, "0006")

    assert revision(bare) == "0006"
    assert _index(bare) is None
    with bare.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one() == 5


def test_the_one_reason_lookup_uses_the_index(bare: Engine) -> None:
    """The admin's one-reason page asks for dead rows with one reason, newest first; the
    database's plan reads the new index for it (not the whole table)."""
    _migrations.upgrade(bare)
    with bare.begin() as conn:
        for k in range(20):
            conn.execute(sa.insert(outbox), _rows(50, state="dead", reason=f"HTTP 400: reason {k}"))
        conn.execute(sa.insert(outbox), _rows(500, state="delivered", reason=None))
        if bare.dialect.name == "postgresql":
            conn.execute(sa.text("ANALYZE relay_outbox"))
            conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        elif bare.dialect.name == "sqlite":
            conn.execute(sa.text("ANALYZE"))
        else:
            conn.execute(sa.text("ANALYZE TABLE relay_outbox"))
        query = (
            "SELECT id FROM relay_outbox WHERE state = 'dead' "
            "AND last_error = 'HTTP 400: reason 7' ORDER BY id DESC LIMIT 100"
        )
        explain = "EXPLAIN QUERY PLAN " if bare.dialect.name == "sqlite" else "EXPLAIN "
        plan = " ".join(str(row) for row in conn.execute(sa.text(explain + query)))
        assert INDEX in plan, plan
        assert len(conn.execute(sa.text(query)).all()) == 50


def test_a_dead_row_with_the_longest_non_latin_reason_is_written(bare: Engine) -> None:
    """1,000 CJK characters (3,000 bytes of UTF-8, barely compressible): over a PostgreSQL
    B-tree entry's 2,704 bytes, so a B-tree on last_error would fail the write that marks the
    row dead; the hash index takes it."""
    _migrations.upgrade(bare)
    rng = random.Random(21)
    reason = "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(LAST_ERROR_MAX_LENGTH))
    with bare.begin() as conn:
        conn.execute(sa.insert(outbox), _rows(1, state="pending", reason=None))
        conn.execute(sa.update(outbox).values(state="dead", last_error=reason, finished_at=T0))
    with bare.connect() as conn:
        stored = conn.execute(
            sa.select(outbox.c.id).where(outbox.c.state == "dead", outbox.c.last_error == reason)
        ).all()
    assert len(stored) == 1
