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

Data residency: the deletion is filed with *every* configured destination (each with its own
app API host, GDPR token and project token), not only those the outbox shows rows for. relay
cannot know where a person's data went once delivered rows are purged (retention), after a
``relay reroute``, or when the host tracked them before routing existed; and a per-person
record of destinations would be personal data relay keeps after the erasure, the very thing
the erasure removes. A deletion filed with a project that holds nothing of the person deletes
nothing there. Each destination's outcome is reported (:class:`GdprFiling`). When at least one
destination filed, the outbox rows are erased (leaving them would let a relay deliver them
after that deletion) and the others are reported as refused or failed: filing again is safe.
When none filed, nothing is erased, as before.

Group profile updates are left alone: a group is an organization, not the person.

Ordered (in every destination at once: the fence covers the person's rows whatever their
destination, and no deletion is filed anywhere while one of them is in flight): a row a relay
is sending when the erasure starts (claimed, under a live lease) could
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
from relay._mixpanel.destinations import acted_on
from relay._mixpanel.gdpr import (
    FILED,
    PACING,
    REFUSED,
    Deletion,
    request_deletion,
    require_tokens,
)
from relay._store import audit as audit_store
from relay._store import transaction
from relay._store.profiles import (
    count_person_rows,
    delete_person_rows,
    fence_person_rows,
    release_fence,
)
from relay._tables import DEFAULT_DESTINATION
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
    "GdprFiling",
    "GdprRequestError",
    "acted_on",
    "forget",
    "person_hash",
    "require_erasure_key",
    "require_gdpr_destinations",
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
class GdprFiling:
    """One destination's answer to the deletion request: ``outcome`` is ``filed`` (with
    ``task_id``), ``refused``, ``failed`` or ``skipped`` (``default`` with no project), and
    ``problem`` one line saying why, without a secret or the person's id."""

    destination: str
    outcome: str
    task_id: str | None = None
    problem: str | None = None
    #: Mixpanel refused this destination's credentials or URL (a configuration error).
    configuration: bool = False

    def as_dict(self) -> dict[str, object]:
        """The JSON form ``--json`` prints."""
        return {
            "destination": self.destination,
            "outcome": self.outcome,
            "task_id": self.task_id,
            "problem": self.problem,
        }


SKIPPED = "skipped"


def require_gdpr_destinations(settings: RelaySettings) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(destinations to file with, destinations skipped)``, or ``ConfigurationError``
    naming the first missing token: nothing is filed anywhere unless every destination can
    be (an erasure that silently missed a region would look complete)."""
    names, skipped = acted_on(settings)
    for name in names:
        require_tokens(settings.for_destination(name), destination=name)
    return names, skipped


@dataclass(frozen=True, slots=True)
class ForgetResult:
    """What was (or, in a dry run, would be) removed: rows by ``kind/state``, and the hash."""

    person: str
    rows: dict[str, int]
    dry_run: bool
    deleted: int = 0
    audit_entries_rewritten: int = 0
    #: One per destination, in configuration order (empty without ``mixpanel``).
    gdpr: tuple[GdprFiling, ...] = ()
    entry_id: int | None = None
    #: Rows of the person a relay was sending when the erasure began, waited for.
    waited_for: int = 0

    @property
    def total(self) -> int:
        """Rows of the person found."""
        return sum(self.rows.values())

    @property
    def gdpr_task_id(self) -> str | None:
        """The task id of the first destination that filed (one destination: its task id)."""
        return next((f.task_id for f in self.gdpr if f.task_id is not None), None)

    @property
    def gdpr_complete(self) -> bool:
        """Whether every destination acted on filed the deletion."""
        return all(f.outcome in (FILED, SKIPPED) for f in self.gdpr)


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
    GDPR deletion request is filed next, with every destination (see the module): when no
    destination files it, the fence is lifted, nothing is erased here and
    :class:`GdprRequestError` (``ConfigurationError`` when a destination refused its
    credentials) says why, so the command can simply be run again. When some filed and
    others did not, the rows are erased and ``ForgetResult.gdpr`` says which did not.
    :class:`ErasureInFlightError` when a relay holds a row past its lease.
    """
    key = require_erasure_key(settings)
    if not distinct_id:
        raise ValueError("distinct_id must not be empty")
    person = person_hash(key, distinct_id)
    with transaction(engine) as conn:
        rows = count_person_rows(conn, distinct_id=distinct_id)
    if dry_run:
        return ForgetResult(person=person, rows=rows, dry_run=True)
    destinations, skipped = require_gdpr_destinations(settings) if mixpanel else ((), ())
    # The fence must outlast every filing: a relay claiming the person's row after the fence
    # ran out could deliver it to a project that has just been sent its deletion.
    filing = len(destinations) * PACING.bound(settings.request_deadline_seconds)
    token, waited_for = _fence(
        engine,
        settings,
        distinct_id,
        filing_seconds=max(filing, settings.request_deadline_seconds),
        clock=clock or _utc_now,
        pause=pause or _sleep,
    )
    try:
        filings = _file_everywhere(settings, distinct_id, destinations, skipped)
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
        detail += "".join(_audit_detail(filing) for filing in filings)
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
        gdpr=filings,
        entry_id=entry_id,
        waited_for=waited_for,
    )


def _file_everywhere(
    settings: RelaySettings,
    distinct_id: str,
    destinations: tuple[str, ...],
    skipped: tuple[str, ...],
) -> tuple[GdprFiling, ...]:
    """File the deletion with each destination in turn; raise when none filed (see
    :func:`forget`), else every destination's outcome, skipped ones included."""
    filings = [
        GdprFiling(name, SKIPPED, problem="no Mixpanel project configured") for name in skipped
    ]
    for name in destinations:
        deletion: Deletion = request_deletion(
            settings.for_destination(name), distinct_id, destination=name
        )
        filings.append(
            GdprFiling(
                name,
                deletion.outcome,
                task_id=deletion.task_id,
                problem=deletion.problem,
                configuration=deletion.configuration,
            )
        )
    if destinations and not any(f.outcome == FILED for f in filings):
        tried = [f for f in filings if f.outcome != SKIPPED]
        if len(tried) == 1:
            message = f"{tried[0].problem}; nothing was erased"
        else:
            parts = "; ".join(
                f"destination {f.destination}: {f.outcome}: {f.problem}" for f in tried
            )
            message = f"no destination filed the deletion ({parts}); nothing was erased"
        if any(f.configuration for f in tried):
            raise ConfigurationError(message)
        raise GdprRequestError(message)
    return tuple(filings)


def _audit_detail(filing: GdprFiling) -> str:
    """The audit entry's words for one destination (the default alone keeps the old wording)."""
    where = "" if filing.destination == DEFAULT_DESTINATION else f" ({filing.destination})"
    if filing.outcome == FILED:
        return f"; Mixpanel GDPR deletion task {filing.task_id}{where}"
    if filing.outcome == SKIPPED:
        return ""
    verb = "refused" if filing.outcome == REFUSED else "failed"
    return f"; Mixpanel GDPR deletion {verb}{where or ' (default)'}"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _sleep() -> None:
    time.sleep(FENCE_POLL_SECONDS)


def _fence(
    engine: Engine,
    settings: RelaySettings,
    distinct_id: str,
    *,
    filing_seconds: float,
    clock: Callable[[], dt.datetime],
    pause: Callable[[], None],
) -> tuple[str, int]:
    """Fence the person's rows and wait until no relay holds one; returns the fence's token
    and how many rows were in flight at first (see the module). ``filing_seconds`` bounds the
    GDPR requests filed after the wait (every destination's, retries included)."""
    token = uuid.uuid4().hex
    start = clock()
    wait = dt.timedelta(seconds=settings.lease_seconds + FENCE_MARGIN_SECONDS)
    # The fence outlives the wait, the GDPR requests and the erasure; should this process die,
    # it runs out by itself and the rows are claimable again.
    until = start + wait + dt.timedelta(seconds=filing_seconds) + wait
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
