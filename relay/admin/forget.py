"""``relay forget``: erase one person from the outbox, audited under a keyed hash of their id.

Removes every outbox row of the person (events with that ``distinct_id``, any state, and
updates of that user's profile), rewrites any audit entry whose filter names the id (an
earlier ``relay replay --distinct-id``; by structure, never by substring: see
:func:`relay._store.audit.redact_person`), and records the erasure in the audit trail as action
``forget`` with ``HMAC-SHA256(RELAY_ERASURE_HASH_KEY, distinct_id)`` instead of the id: an
auditor holding the key can confirm that a given person was forgotten, nobody can read the id
back out of the table. All of it in one transaction. Optionally files a deletion request with
Mixpanel's GDPR API (through :mod:`relay._mixpanel.gdpr`), whose task id goes into the
audit entry.

Group profile updates are left alone: a group is an organization, not the person.

Ordered: a row a relay is sending when the erasure starts (claimed, under a live lease) could
reach Mixpanel after the GDPR deletion and bring the profile back. So the erasure first fences
the person's pending rows (leases them itself: no relay claims them any more) and waits until
no relay holds one, then files the deletion and erases. A relay's lease outlives its request
(the request deadline is under the lease), so the wait ends within ``RELAY_LEASE_SECONDS``;
if it does not, the fence is lifted, nothing is erased, and :class:`ErasureInFlightError` says
to run the command again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from relay._config import RelaySettings
from relay._errors import ConfigurationError, ErasureInFlightError, GdprRequestError
from relay._mixpanel.gdpr import file_deletion
from relay._store import audit as audit_store
from relay._store import transaction
from relay._store.profiles import (
    count_person_rows,
    delete_person_rows,
    fence_person_rows,
    release_fence,
)
from relay.admin._audit import default_actor

#: ``relay_audit.action`` of an erasure.
ACTION = "forget"
#: Pause between two looks at the person's rows in flight.
FENCE_POLL_SECONDS = 0.1
#: How long past a relay's lease the erasure waits for it before it gives up.
FENCE_MARGIN_SECONDS = 5.0


__all__ = [
    "ACTION",
    "ErasureInFlightError",
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
    #: Rows of the person a relay was sending when the erasure began, waited for.
    waited_for: int = 0

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
    clock: Callable[[], dt.datetime] | None = None,
    pause: Callable[[], None] | None = None,
) -> ForgetResult:
    """Count (``dry_run``) or erase every outbox row of ``distinct_id``; see the module.

    Not a dry run: the person's rows are fenced and the rows in flight waited for first
    (``clock`` reads the time while waiting, ``pause`` waits between two looks; defaults:
    the real clock, a sleep of ``FENCE_POLL_SECONDS``). With ``mixpanel`` the
    GDPR deletion request is filed next: when Mixpanel refuses it, the fence is lifted,
    nothing is erased here and :class:`GdprRequestError` says why, so the command can simply
    be run again. :class:`ErasureInFlightError` when a relay holds a row past its lease.
    """
    key = require_erasure_key(settings)
    if not distinct_id:
        raise ValueError("distinct_id must not be empty")
    person = person_hash(key, distinct_id)
    with transaction(engine) as conn:
        rows = count_person_rows(conn, distinct_id=distinct_id)
    if dry_run:
        return ForgetResult(person=person, rows=rows, dry_run=True)
    token, waited_for = _fence(
        engine, settings, distinct_id, clock=clock or _utc_now, pause=pause or _sleep
    )
    try:
        task_id = file_deletion(settings, distinct_id) if mixpanel else None
    except BaseException:
        with transaction(engine, write=True) as conn:
            release_fence(conn, token=token)
        raise
    now = now or dt.datetime.now(dt.UTC)
    with transaction(engine, write=True) as conn:
        rows = count_person_rows(conn, distinct_id=distinct_id)
        deleted = delete_person_rows(conn, distinct_id=distinct_id)
        rewritten = audit_store.redact_person(conn, distinct_id=distinct_id, replacement=person)
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
        waited_for=waited_for,
    )


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _sleep() -> None:
    time.sleep(FENCE_POLL_SECONDS)


def _fence(
    engine: Engine,
    settings: RelaySettings,
    distinct_id: str,
    *,
    clock: Callable[[], dt.datetime],
    pause: Callable[[], None],
) -> tuple[str, int]:
    """Fence the person's rows and wait until no relay holds one; returns the fence's token
    and how many rows were in flight at first (see the module)."""
    token = uuid.uuid4().hex
    start = clock()
    wait = dt.timedelta(seconds=settings.lease_seconds + FENCE_MARGIN_SECONDS)
    # The fence outlives the wait, the GDPR request and the erasure; should this process die,
    # it runs out by itself and the rows are claimable again.
    until = start + wait + dt.timedelta(seconds=settings.request_deadline_seconds) + wait
    first: int | None = None
    while True:
        now = clock()
        with transaction(engine, write=True) as conn:
            held = fence_person_rows(
                conn, distinct_id=distinct_id, token=token, until=until, now=now
            )
        first = held if first is None else first
        if not held:
            return token, first
        if now - start > wait:
            with transaction(engine, write=True) as conn:
                release_fence(conn, token=token)
            raise ErasureInFlightError(
                f"{held} row(s) of this person were still being sent by a relay after "
                f"{wait.total_seconds():.0f} s; nothing was erased: run relay forget again"
            )
        pause()
