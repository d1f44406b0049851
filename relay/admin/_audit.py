"""Who changed the outbox by hand: the actor, and the audit trail's entries.

Every replay, requeue, discard and purge writes one entry to ``relay_audit`` before its first
batch; its count grows with each committed batch (in that batch's transaction) and its detail
says how the operation ended, so an interrupted run reads "not finished" with the exact number
of rows it did change. Dry runs write nothing.
"""

from __future__ import annotations

import datetime as dt
import getpass
from typing import Any

from sqlalchemy.engine import Engine

from relay._store import audit as audit_store
from relay._store import transaction
from relay._store.audit import AuditEntry

#: Detail of an entry whose operation has not (yet) finished: still running, or killed.
UNFINISHED = "not finished (still running, or interrupted)"
#: What ``relay audit`` shows by default.
DEFAULT_AUDIT_LIMIT = 20


def default_actor() -> str:
    """The OS user running this process (``getpass.getuser()``), or ``"unknown"``."""
    try:
        return getpass.getuser()
    except OSError:  # no login name and no USER/LOGNAME variable (some containers)
        return "unknown"


def begin_entry(
    engine: Engine,
    *,
    now: dt.datetime,
    actor: str | None,
    action: str,
    filter_json: dict[str, Any],
    detail: str = UNFINISHED,
) -> int:
    """Write an entry with count 0 in its own transaction; returns its id."""
    with transaction(engine, write=True) as conn:
        return audit_store.add_entry(
            conn,
            at=now,
            actor=actor or default_actor(),
            action=action,
            filter=filter_json,
            count=0,
            detail=detail,
        )


def finish_entry(engine: Engine, entry_id: int, *, detail: str) -> None:
    """Record how an operation ended."""
    with transaction(engine, write=True) as conn:
        audit_store.add_to_entry(conn, entry_id=entry_id, detail=detail)


def audit_entries(engine: Engine, *, limit: int = DEFAULT_AUDIT_LIMIT) -> list[AuditEntry]:
    """The ``limit`` newest audit entries, newest first."""
    with transaction(engine) as conn:
        return audit_store.latest_entries(conn, limit=limit)
