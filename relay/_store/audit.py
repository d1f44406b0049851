"""The operator audit trail in ``relay_audit``: one row per mutating admin command.

An entry is written before the first batch of an operation and its ``count`` grows inside each
batch's own transaction (:func:`add_to_entry`), so after a crash the entry still says exactly
how many rows were changed; ``detail`` is rewritten when the operation ends.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from relay._store._base import translate_errors
from relay._tables import audit


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who did what, when, to which rows (``filter``), and to how many (``count``)."""

    id: int
    at: dt.datetime
    actor: str
    action: str
    filter: dict[str, Any]
    count: int
    detail: str | None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready values (``at`` in ISO 8601)."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "filter": self.filter,
            "count": self.count,
            "detail": self.detail,
        }


@translate_errors
def add_entry(
    conn: Connection,
    *,
    at: dt.datetime,
    actor: str,
    action: str,
    filter: dict[str, Any],
    count: int,
    detail: str | None,
) -> int:
    """Insert one audit entry; returns its id. Lock: the new row. Guard: none needed."""
    result = conn.execute(
        sa.insert(audit).values(
            at=at, actor=actor, action=action, filter=filter, count=count, detail=detail
        )
    )
    key = result.inserted_primary_key
    assert key is not None  # an INSERT of one row always has one
    return int(key[0])


@translate_errors
def add_to_entry(
    conn: Connection, *, entry_id: int, count: int = 0, detail: str | None = None
) -> None:
    """Add ``count`` to an entry's count and, if given, replace its ``detail``.

    Lock: the entry's row. Guard: ``count = count + :n`` in the database, so batches never
    overwrite each other's totals.
    """
    values: dict[str, Any] = {"count": audit.c.count + count}
    if detail is not None:
        values["detail"] = detail
    conn.execute(sa.update(audit).where(audit.c.id == entry_id).values(values))


@translate_errors
def latest_entries(conn: Connection, *, limit: int) -> list[AuditEntry]:
    """The ``limit`` newest entries, newest first. Lock: none (a plain read). Guard: none.

    Reads ``ix_relay_audit_at`` backwards.
    """
    found = conn.execute(
        sa.select(audit).order_by(audit.c.at.desc(), audit.c.id.desc()).limit(limit)
    ).all()
    return [AuditEntry(*row) for row in found]
