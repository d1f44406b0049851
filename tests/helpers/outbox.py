"""Outbox rows written with their columns set directly, for the tests of the store and the drain."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from relay import _store as store
from relay._tables import outbox


def row_values(*, at: dt.datetime, time_ms: int, **columns: Any) -> dict[str, Any]:
    """The columns of one pending row: ``svc.test.thing_done`` of ``user-1`` in ``org-1``,
    happened at ``time_ms``, due, created and updated ``at``; ``columns`` set or replace any."""
    return {
        "insert_id": str(uuid.uuid4()),
        "event": "svc.test.thing_done",
        "distinct_id": "user-1",
        "time_ms": time_ms,
        "properties": {"organization_id": "org-1"},
        "next_attempt_at": at,
        "created_at": at,
        "updated_at": at,
        **columns,
    }


def add_rows(
    engine: Engine, count: int = 1, *, at: dt.datetime, time_ms: int, **columns: Any
) -> list[str]:
    """``count`` rows of ``row_values`` inserted one by one (``store.insert_event``) in one
    transaction; their ``insert_id``s, in insertion order."""
    rows = [row_values(at=at, time_ms=time_ms, **columns) for _ in range(count)]
    with store.transaction(engine) as conn:
        for values in rows:
            store.insert_event(conn, values=values)
    return [values["insert_id"] for values in rows]


def states_of(engine: Engine, destination: str) -> list[tuple[str, int]]:
    """``(state, attempts)`` of each of ``destination``'s rows, in id order."""
    with engine.connect() as conn:
        return [
            (str(state), int(attempts))
            for state, attempts in conn.execute(
                sa.select(outbox.c.state, outbox.c.attempts)
                .where(outbox.c.destination == destination)
                .order_by(outbox.c.id)
            )
        ]
