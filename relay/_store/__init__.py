"""All relay-side SQL on the outbox, one function per statement, dialect differences inside.

A package so that each part has one owner, in the order an event flows through them: ``outbox``
(the row ``track()`` writes and its insert; ``pipeline``, its one-round-trip PostgreSQL path),
``profiles`` (profile updates' rows, per-profile claims and erasure), ``claims`` (the lease),
``acks`` (the fenced acks and hand-backs that end a claim), ``maintenance`` (retention and the
cheap gauges), ``lanes`` (the claim's fair lane and the pauses it passes over), and the modules
behind the admin commands (``selection``, ``requeue``, ``stats``, ``audit``, ``capture``,
``pauses``). ``_base`` holds what they share: :func:`transaction`, the one error translation and
the predicates. Nothing outside this package builds SQL, and driver errors leave it only as
:class:`relay._errors.StoreError` or a typed subclass.

The names below are the store's interface to the rest of relay (all private to relay).
"""

from relay._store._base import clip_error, is_mysql, state_is, transaction, translate_errors
from relay._store.acks import (
    DENSE_CLAIM_SPAN,
    Retry,
    mark_claim_delivered,
    mark_dead,
    mark_delivered,
    postpone,
    release,
    schedule_retry,
)
from relay._store.claims import (
    Claim,
    claim,
    claimed_columns,
    is_due,
    lease_is_live,
    stored_size,
    too_large_reason,
)
from relay._store.outbox import (
    check_writable,
    connection_of,
    insert_event,
    insert_rows,
    newest_row_id,
    pending_row,
    write_event,
)
from relay._store.pipeline import insert_in_one_round_trip

__all__ = [
    "DENSE_CLAIM_SPAN",
    "Claim",
    "Retry",
    "check_writable",
    "claim",
    "claimed_columns",
    "clip_error",
    "connection_of",
    "insert_event",
    "insert_in_one_round_trip",
    "insert_rows",
    "is_due",
    "is_mysql",
    "lease_is_live",
    "mark_claim_delivered",
    "mark_dead",
    "mark_delivered",
    "newest_row_id",
    "pending_row",
    "postpone",
    "release",
    "schedule_retry",
    "state_is",
    "stored_size",
    "too_large_reason",
    "transaction",
    "translate_errors",
    "write_event",
]
