"""``plain_rows``: the driver's tuples where the cursor holds the rows, SQLAlchemy's otherwise."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from relay._errors import StoreError
from relay._store._base import plain_rows, translate_errors


def _table() -> tuple[sa.Engine, sa.Table]:
    engine = sa.create_engine("sqlite://")
    table = sa.Table(
        "t",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("v", sa.String),
    )
    table.metadata.create_all(engine)
    return engine, table


def test_plain_rows_are_the_rows_as_tuples_and_the_result_is_closed() -> None:
    engine, table = _table()
    with engine.begin() as conn:
        conn.execute(sa.insert(table), [{"v": "a"}, {"v": "b"}])
        result = conn.execute(sa.select(table.c.id, table.c.v).order_by(table.c.id))
        rows = plain_rows(result)
        assert rows == [(1, "a"), (2, "b")]
        assert all(type(row) is tuple for row in rows)
        assert result.closed
        assert plain_rows(conn.execute(sa.select(table.c.id).where(table.c.id > 5))) == []


def test_rows_sqlalchemy_fetched_itself_are_not_lost() -> None:
    """An executemany's ``RETURNING`` (SQLAlchemy's "insertmanyvalues") is fetched by
    SQLAlchemy into its own buffer while the cursor stays open and empty: read from the cursor,
    those rows were silently gone."""
    engine, table = _table()
    with engine.begin() as conn:
        result = conn.execute(
            sa.insert(table).returning(table.c.id, table.c.v), [{"v": "a"}, {"v": "b"}]
        )
        assert sorted(plain_rows(result)) == [(1, "a"), (2, "b")]


def test_a_driver_error_while_fetching_becomes_a_store_error_naming_no_value() -> None:
    """SQLite steps a query as its rows are fetched: an error on the second row comes out of the
    cursor's fetch, not the execute. It leaves as SQLAlchemy's DBAPIError (as SQLAlchemy's own
    fetch would raise it), so the store's translation names its type, never the driver's text,
    which here quotes the row's value."""
    engine, table = _table()

    def refuse(value: str) -> str:
        if value == "secret-b":
            raise ValueError(f"refused {value}")
        return value

    with engine.begin() as conn:
        conn.execute(sa.insert(table), [{"v": "a"}, {"v": "secret-b"}])
    with engine.connect() as conn:
        conn.connection.driver_connection.create_function("refuse", 1, refuse)  # type: ignore[union-attr]

        @translate_errors
        def read() -> list[tuple[Any, ...]]:
            return plain_rows(
                conn.execute(sa.select(sa.func.refuse(table.c.v)).order_by(table.c.id))
            )

        with pytest.raises(StoreError) as raised:
            read()
    assert isinstance(raised.value.__cause__, sa.exc.DBAPIError)
    assert "secret-b" not in str(raised.value)
