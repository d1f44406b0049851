"""``relay forget``: erase one person from the outbox, audited under a keyed hash of their id.

Removes every outbox row of the person (events with that ``distinct_id``, any state, and
updates of that user's profile), rewrites any audit entry that named the id (an earlier
``relay replay --distinct-id``), and records the erasure in the audit trail as action
``forget`` with ``HMAC-SHA256(RELAY_ERASURE_HASH_KEY, distinct_id)`` instead of the id: an
auditor holding the key can confirm that a given person was forgotten, nobody can read the id
back out of the table. All of it in one transaction. Optionally files a deletion request with
Mixpanel's GDPR API (through :mod:`relay._mixpanel.gdpr`), whose task id goes into the
audit entry.

Group profile updates are left alone: a group is an organization, not the person.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from relay._config import RelaySettings
from relay._errors import ConfigurationError
from relay._mixpanel.gdpr import GdprRequestError, file_deletion
from relay._store import audit as audit_store
from relay._store import transaction
from relay._store.profiles import count_person_rows, delete_person_rows, redact_audit_mentions
from relay.admin._audit import default_actor

#: ``relay_audit.action`` of an erasure.
ACTION = "forget"

__all__ = [
    "ACTION",
    "ForgetResult",
    "GdprRequestError",
    "forget",
    "person_hash",
    "require_erasure_key",
]


def person_hash(key: str, distinct_id: str) -> str:
    """``hmac-sha256:<hex>`` of ``distinct_id`` under ``key``: how the audit names the person."""
    digest = hmac.new(key.encode(), distinct_id.encode(), hashlib.sha256).hexdigest()
    return f"hmac-sha256:{digest}"


def require_erasure_key(settings: RelaySettings) -> str:
    """The erasure hash key, or ``ConfigurationError`` naming the setting (exit 3)."""
    key = settings.erasure_hash_key
    if key is None or not key.get_secret_value():
        raise ConfigurationError(
            "relay forget needs RELAY_ERASURE_HASH_KEY: the audit trail names the person by "
            "an HMAC-SHA256 of the id under that key, never by the id"
        )
    return key.get_secret_value()


@dataclass(frozen=True, slots=True)
class ForgetResult:
    """What was (or, in a dry run, would be) removed: rows by ``kind/state``, and the hash."""

    person: str
    rows: dict[str, int]
    dry_run: bool
    deleted: int = 0
    audit_entries_rewritten: int = 0
    gdpr_task_id: str | None = None
    entry_id: int | None = None

    @property
    def total(self) -> int:
        """Rows of the person found."""
        return sum(self.rows.values())


def forget(
    engine: Engine,
    settings: RelaySettings,
    *,
    distinct_id: str,
    dry_run: bool,
    actor: str | None = None,
    mixpanel: bool = False,
    now: dt.datetime | None = None,
) -> ForgetResult:
    """Count (``dry_run``) or erase every outbox row of ``distinct_id``; see the module.

    With ``mixpanel`` (and not a dry run) the GDPR deletion request is filed first: when
    Mixpanel refuses it, nothing is erased here and :class:`GdprRequestError` says why, so
    the command can simply be run again.
    """
    key = require_erasure_key(settings)
    if not distinct_id:
        raise ValueError("distinct_id must not be empty")
    person = person_hash(key, distinct_id)
    with transaction(engine) as conn:
        rows = count_person_rows(conn, distinct_id=distinct_id)
    if dry_run:
        return ForgetResult(person=person, rows=rows, dry_run=True)
    task_id = file_deletion(settings, distinct_id) if mixpanel else None
    now = now or dt.datetime.now(dt.UTC)
    with transaction(engine, write=True) as conn:
        rows = count_person_rows(conn, distinct_id=distinct_id)
        deleted = delete_person_rows(conn, distinct_id=distinct_id)
        rewritten = redact_audit_mentions(conn, distinct_id=distinct_id, replacement=person)
        detail = f"erased {deleted} row(s); {rewritten} audit entr(y/ies) rewritten"
        if task_id is not None:
            detail += f"; Mixpanel GDPR deletion task {task_id}"
        entry_id = audit_store.add_entry(
            conn,
            at=now,
            actor=actor or default_actor(),
            action=ACTION,
            filter={"person": person, "rows": rows},
            count=deleted,
            detail=detail,
        )
    return ForgetResult(
        person=person,
        rows=rows,
        dry_run=False,
        deleted=deleted,
        audit_entries_rewritten=rewritten,
        gdpr_task_id=task_id,
        entry_id=entry_id,
    )
