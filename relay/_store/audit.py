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


#: The fields of an entry's ``filter`` that hold a person's ``distinct_id``: a list of ids
#: (``relay replay --distinct-id``, ``relay.admin.EventFilter.distinct_ids``).
PERSON_ID_FIELDS = ("distinct_ids",)


@translate_errors
def redact_person(conn: Connection, *, distinct_id: str, replacement: str) -> int:
    """Replace ``distinct_id`` by ``replacement`` where an entry's filter holds it as an id.

    By structure, never by substring: only an element of a :data:`PERSON_ID_FIELDS` list equal
    to ``distinct_id`` is replaced, so another person's ``1420``, a time ``00:42:00`` or a
    reason ``INC-4242`` stay as they are when ``42`` is erased. Free text (``detail``: an
    operator's reason) is not searched. The audit table is small (one row per operator action):
    every entry is read, and those that change rewritten. Returns how many entries changed.
    Lock: the entries rewritten. Guard: none needed (the caller's erasure transaction).
    """
    changed = 0
    for entry_id, filter_value in conn.execute(sa.select(audit.c.id, audit.c.filter)).all():
        if not isinstance(filter_value, dict):
            continue
        new_filter = dict(filter_value)
        for name in PERSON_ID_FIELDS:
            ids = filter_value.get(name)
            if isinstance(ids, list) and distinct_id in ids:
                new_filter[name] = [replacement if i == distinct_id else i for i in ids]
        if new_filter != filter_value:
            conn.execute(sa.update(audit).where(audit.c.id == entry_id).values(filter=new_filter))
            changed += 1
    return changed
