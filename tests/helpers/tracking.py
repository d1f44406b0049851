"""Writing test events into the outbox."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from relay._tracking import track


def track_numbered(engine: Engine, event: str, count: int) -> list[str]:
    """Track ``count`` events ``event`` (a schema with the super properties and ``n: int``),
    numbered from 0, for ``user-1``, in one committed transaction; their ``$insert_id``s."""
    ids = []
    with engine.begin() as conn:
        for n in range(count):
            insert_id = track(
                conn,
                event=event,
                distinct_id="user-1",
                properties={
                    "employee_id": "user-1",
                    "organization_id": "org-1",
                    "organization_name": "Acme",
                    "role": None,
                    "impersonation": False,
                    "n": n,
                },
                strict=True,
            )
            assert insert_id is not None
            ids.append(insert_id)
    return ids
