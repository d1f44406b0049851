"""What is stored is what was checked: the stored size of properties, measured on real databases."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from relay import _store as store
from relay._database import create_engine
from relay._event.limits import stored_json_size
from relay._tables import metadata, outbox

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)

_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=8)
)
_KEY = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=6)
_FIXTURE_REUSED = [HealthCheck.function_scoped_fixture]
_PROPERTIES = st.dictionaries(
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=6),
    st.recursive(
        _LEAF,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(_KEY, children, max_size=3)
        ),
        max_leaves=12,
    ),
    max_size=6,
)


def _stored_octets(engine: Engine, properties: dict[str, Any]) -> int:
    values = {
        "insert_id": str(uuid.uuid4()),
        "event": "svc.test.thing_done",
        "distinct_id": "user-1",
        "time_ms": 1_767_225_600_000,
        "properties": properties,
        "next_attempt_at": NOW,
        "created_at": NOW,
        "updated_at": NOW,
    }
    with store.transaction(engine) as conn:
        store.insert_event(conn, values=values)
        text = (
            sa.cast(outbox.c.properties, sa.Text)
            if engine.dialect.name == "postgresql"
            else sa.type_coerce(outbox.c.properties, sa.Text)
        )
        size = conn.execute(
            sa.select(sa.func.octet_length(text)).where(outbox.c.insert_id == values["insert_id"])
        ).scalar_one()
    return int(size)


@settings(deadline=None, suppress_health_check=_FIXTURE_REUSED)
@given(properties=_PROPERTIES)
def test_postgresql_stores_properties_at_exactly_the_computed_size(
    pg_engine: Engine, properties: dict[str, Any]
) -> None:
    """octet_length(properties::text) on PostgreSQL equals stored_json_size, for any numbers."""
    assert _stored_octets(pg_engine, properties) == stored_json_size(properties)


def test_postgresql_writes_exponent_numbers_out_in_full(pg_engine: Engine) -> None:
    """1e308 and 1e-300 take 309 and 302 bytes once stored, as computed."""
    properties = {"big": 1e308, "small": 1e-300}
    assert len(orjson.dumps(properties)) == 29
    stored = _stored_octets(pg_engine, properties)
    assert stored == stored_json_size(properties) == len('{"big": , "small": }') + 309 + 302


@settings(deadline=None, suppress_health_check=_FIXTURE_REUSED)
@given(properties=_PROPERTIES)
def test_mariadb_stores_the_json_text_it_was_given(
    maria_engine: Engine, properties: dict[str, Any]
) -> None:
    """MariaDB's JSON is LONGTEXT: the stored text is orjson's, byte for byte."""
    assert _stored_octets(maria_engine, properties) == len(orjson.dumps(properties))


@pytest.fixture(scope="module")
def maria_engine(mariadb_url: str) -> Iterator[Engine]:
    """One MariaDB engine with the relay tables for the module (hypothesis reuses it)."""
    engine = create_engine(mariadb_url)
    metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()
