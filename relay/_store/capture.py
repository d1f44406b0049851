"""Reading the outbox back, for tests: the query behind :mod:`relay.testing`'s ``relay_outbox``.

Test support only; the relay itself never reads rows this way. One function, one statement,
on a connection whose transaction the caller owns.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from relay._store._base import translate_errors
from relay._tables import RowKind, outbox

#: A row of :func:`select_events`:
#: ``id, insert_id, event, distinct_id, time_ms, properties, state``.
#: (A string because SQLAlchemy 2.0's ``Row`` takes one tuple parameter, 2.1's one per column.)
CapturedRow: TypeAlias = "sa.Row[int, str, str, str, int, Any, str]"


@translate_errors
def select_events(conn: Connection, *, event: str | None = None) -> list[CapturedRow]:
    """Every outbox event (or every ``event`` event), in insertion order (by ``id``).

    Events only: profile updates (kind user/group) are not events.

    Reads in the caller's transaction, so it sees the caller's own uncommitted rows. Lock:
    none (a plain, non-locking read; it never blocks the relay's claims). Guard: none needed,
    nothing is written.
    """
    statement = (
        sa.select(
            outbox.c.id,
            outbox.c.insert_id,
            outbox.c.event,
            outbox.c.distinct_id,
            outbox.c.time_ms,
            outbox.c.properties,
            outbox.c.state,
        )
        .where(outbox.c.kind == RowKind.EVENT.value)
        .order_by(outbox.c.id)
    )
    if event is not None:
        statement = statement.where(outbox.c.event == event)
    return list(conn.execute(statement).all())
