"""Bulk loaders: outbox rows shaped like what ``track()`` stores, and the same events in Python.

Rows are bulk-loaded with ``INSERT ... SELECT generate_series`` (a recursive CTE on SQLite),
shaped like what ``track()`` stores for ``svc.surveys.survey_delivered``: 13 properties,
420 bytes of JSON. :func:`event_properties` and :func:`insert_id` build the very same events
in Python, for the baseline that sends them without a database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

EVENT_NAME = "svc.surveys.survey_delivered"


_PG_PROPERTIES = """jsonb_build_object(
    'employee_id', '5d1c7a3e-0000-4000-8000-' || lpad((g % 5000)::text, 12, '0'),
    'organization_id', '8a0e8d1c-1111-4222-8333-' || lpad((g % 40)::text, 12, '0'),
    'organization_name', 'Example Org', 'role', 'admin', 'impersonation', false,
    'is_cron_job', false, 'cron_execution_timestamp', null,
    'survey_id', '0c6f4a8e-2222-4333-8444-' || lpad((g % 300)::text, 12, '0'),
    'survey_run_id', '1d7a5b9f-3333-4444-8555-' || lpad((g % 900)::text, 12, '0'),
    'survey_type', 'pulse', 'channel', 'email', 'question_count', g % 40,
    'is_reminder', g % 7 = 0)"""

# Built from this module's constants only, never from input.
_PG_LOAD = f"""
INSERT INTO relay_outbox (insert_id, event, distinct_id, time_ms, properties, state, attempts,
    next_attempt_at, lease_token, last_error, created_at, updated_at, finished_at)
SELECT
    substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4) || '-'
        || substr(h, 17, 4) || '-' || substr(h, 21, 12),
    '{EVENT_NAME}',
    '5d1c7a3e-0000-4000-8000-' || lpad((g % 5000)::text, 12, '0'),
    CAST(:base_ms AS bigint) - g,
    {_PG_PROPERTIES},
    CAST(:state AS text),
    CASE WHEN CAST(:state AS text) = 'pending' THEN 0 ELSE 1 END,
    :now - (CAST(:newest AS bigint) - g) * interval '1 microsecond',
    NULL, NULL,
    :now - (CAST(:newest AS bigint) - g) * interval '1 microsecond',
    :now,
    CASE WHEN CAST(:state AS text) = 'pending' THEN NULL
        ELSE :now - (g % 86400) * interval '1 second' END
FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g,
    LATERAL (SELECT CASE WHEN :ordered
        THEN lpad(to_hex(CAST(:base_ms AS bigint)), 12, '0') || lpad(to_hex(g), 20, '0')
        ELSE md5(:tag || g::text) END AS h) AS hashed
"""  # noqa: S608

_SQLITE_LOAD = f"""
WITH RECURSIVE seq(g) AS (SELECT :first UNION ALL SELECT g + 1 FROM seq WHERE g < :last)
INSERT INTO relay_outbox (insert_id, event, distinct_id, time_ms, properties, state, attempts,
    next_attempt_at, lease_token, last_error, created_at, updated_at, finished_at)
SELECT
    :tag || '-0000-4000-8000-' || printf('%012d', g),  -- SQLite has no md5(): sequential
    '{EVENT_NAME}',
    '5d1c7a3e-0000-4000-8000-' || printf('%012d', g % 5000),
    :base_ms - g,
    json_object(
        'employee_id', '5d1c7a3e-0000-4000-8000-' || printf('%012d', g % 5000),
        'organization_id', '8a0e8d1c-1111-4222-8333-' || printf('%012d', g % 40),
        'organization_name', 'Example Org', 'role', 'admin', 'impersonation', json('false'),
        'is_cron_job', json('false'), 'cron_execution_timestamp', NULL,
        'survey_id', '0c6f4a8e-2222-4333-8444-' || printf('%012d', g % 300),
        'survey_run_id', '1d7a5b9f-3333-4444-8555-' || printf('%012d', g % 900),
        'survey_type', 'pulse', 'channel', 'email', 'question_count', g % 40,
        'is_reminder', json(CASE WHEN g % 7 = 0 THEN 'true' ELSE 'false' END)),
    :state,
    CASE WHEN :state = 'pending' THEN 0 ELSE 1 END,
    :now, NULL, NULL, :now, :now,
    CASE WHEN :state = 'pending' THEN NULL ELSE :now END
FROM seq
"""  # noqa: S608


def survey_properties(n: int, *, organization_name: str = "Example Org") -> dict[str, Any]:
    """The ``svc.surveys.survey_delivered`` properties of event ``n`` (what a catalog helper
    passes): ids cycle over a few thousand employees, hundreds of surveys."""
    return {
        "employee_id": f"5d1c7a3e-0000-4000-8000-{n % 5000:012d}",
        "organization_id": "8a0e8d1c-1111-4222-8333-944455556666",
        "organization_name": organization_name,
        "role": "admin",
        "impersonation": False,
        "survey_id": f"0c6f4a8e-2222-4333-8444-{n % 300:012d}",
        "survey_run_id": f"1d7a5b9f-3333-4444-8555-{n % 900:012d}",
        "survey_type": "pulse",
        "channel": "email",
        "question_count": n % 40,
        "is_reminder": n % 7 == 0,
    }


def event_properties(g: int) -> dict[str, Any]:
    """Row ``g``'s properties, exactly as the bulk loaders store them."""
    return {
        "employee_id": f"5d1c7a3e-0000-4000-8000-{g % 5000:012d}",
        "organization_id": f"8a0e8d1c-1111-4222-8333-{g % 40:012d}",
        "organization_name": "Example Org",
        "role": "admin",
        "impersonation": False,
        "is_cron_job": False,
        "cron_execution_timestamp": None,
        "survey_id": f"0c6f4a8e-2222-4333-8444-{g % 300:012d}",
        "survey_run_id": f"1d7a5b9f-3333-4444-8555-{g % 900:012d}",
        "survey_type": "pulse",
        "channel": "email",
        "question_count": g % 40,
        "is_reminder": g % 7 == 0,
    }


def insert_id(tag: str, g: int) -> str:
    """Row ``g``'s ``$insert_id`` on PostgreSQL: UUID-shaped and scattered like ``uuid4()``'s,
    so the unique index is written at random places as it is in production."""
    h = hashlib.md5(f"{tag}{g}".encode()).hexdigest()  # noqa: S324 - not for security
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def new_tag() -> str:
    """Eight hex digits that make one load's ``$insert_id``s unique."""
    return secrets.token_hex(4)


def load_rows(
    engine: Engine,
    *,
    count: int,
    state: str = "pending",
    tag: str,
    first: int = 1,
    base_ms: int | None = None,
    chunk: int = 500_000,
    ordered_ids: bool = True,
) -> None:
    """Bulk-load ``count`` rows in ``state`` numbered from ``first``, in chunks of ``chunk``.

    ``$insert_id``\\ s rise with time like the UUIDv7s ``track()`` makes (PostgreSQL), so that
    new entries land at the end of the unique index, or with ``ordered_ids=False`` are
    scattered like ``uuid4()``'s (what ``track()`` made before).
    """
    now = dt.datetime.now(dt.UTC)
    base_ms = base_ms if base_ms is not None else int(now.timestamp() * 1000)
    sql = sa.text(_PG_LOAD if engine.dialect.name == "postgresql" else _SQLITE_LOAD)
    bind_now: Any = now if engine.dialect.name == "postgresql" else now.replace(tzinfo=None)
    start = first
    last_row = first + count - 1
    while start <= last_row:
        stop = min(start + chunk - 1, last_row)
        with engine.begin() as conn:
            conn.execute(
                sql,
                {
                    "tag": tag,
                    "base_ms": base_ms,
                    "state": state,
                    "now": bind_now,
                    "first": start,
                    "last": stop,
                    "newest": last_row,
                    "ordered": ordered_ids,
                },
            )
        start = stop + 1
