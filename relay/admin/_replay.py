"""Replay: put selected events back in the queue, with their original ``time`` and ``$insert_id``.

A replayed row is pending, due now, with its attempts, lease, last error and finish time reset;
its event name, ``distinct_id``, ``time`` and ``$insert_id`` are untouched, so whatever Mixpanel
already holds is deduplicated and only missing events appear.

Rows are changed in bounded batches, each one transaction that chooses the next ids by keyset
(``id > last``), updates them, and adds to the audit entry's count: a kill between or during
batches leaves every row either replayed or untouched, and the audit count exact. Rows a relay
holds under a live lease are skipped, never yanked from under it, and reported as skipped.

Profile updates are not events: Mixpanel applies every profile update it receives, in the
order received, and deduplicates none. A profile update that a later update of the same
profile follows (a higher outbox id, in any state) is therefore never replayed: re-sent, it
would put the profile back in time (a ``$set plan=free`` over the later ``plan=pro``). Such
rows are skipped and counted as ``superseded``; of one profile's updates a replay re-sends at
most the latest. The dry run counts events, profile updates and superseded ones apart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Engine

from relay._store import audit as audit_store
from relay._store import requeue as requeue_store
from relay._store import selection, transaction
from relay._store.selection import BreakdownRow, Candidate, EventFilter, KindCounts, StoredRow
from relay.admin._audit import UNFINISHED, begin_entry, finish_entry
from relay.admin._filters import check_filter

#: Rows changed per transaction.
DEFAULT_BATCH_SIZE = 1000
#: Rows shown by a dry run.
DEFAULT_SAMPLE_SIZE = 10


@dataclass(frozen=True, slots=True)
class Preview:
    """What an operation would select: the dry run's answer. Nothing was changed.

    ``count`` rows match, ``leased`` of them held by a relay right now (a replay would skip
    those); ``kinds`` splits them into events and profile updates, and counts the profile
    updates a later update of the same profile superseded (a replay or requeue skips those);
    ``breakdown`` counts them per (event, state); ``sample`` shows the first few.
    """

    count: int
    leased: int
    breakdown: list[BreakdownRow]
    sample: list[StoredRow]
    kinds: KindCounts

    def to_json(self) -> dict[str, Any]:
        """JSON-ready values, marked ``"dry_run": true``."""
        return {
            "dry_run": True,
            "count": self.count,
            "events": self.kinds.events,
            "profile_updates": self.kinds.profile_updates,
            "superseded": self.kinds.superseded,
            "leased": self.leased,
            "breakdown": [b.to_json() for b in self.breakdown],
            "sample": [r.to_json() for r in self.sample],
        }


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """Reported after each committed batch: rows ``done`` so far out of about ``total``."""

    batch: int
    changed: int
    skipped: int
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class BatchResult:
    """A finished batched operation: rows ``changed`` and rows ``skipped``, and its audit entry.

    For a replay or requeue, ``skipped`` rows were leased by a relay (or changed by one while
    chosen) and were left alone; replay them again once their lease has ended. ``superseded``
    profile updates were left alone for good: a later update of the same profile follows them.
    """

    audit_id: int
    changed: int
    skipped: int
    batches: int
    superseded: int = 0

    def to_json(self, *, done: str = "changed") -> dict[str, Any]:
        """JSON-ready values; the count of changed rows under the key ``done`` (``replayed``)."""
        return {
            "dry_run": False,
            done: self.changed,
            "skipped": self.skipped,
            "superseded": self.superseded,
            "batches": self.batches,
            "audit_id": self.audit_id,
        }


OnBatch = Callable[[BatchProgress], None]
#: Changes the chosen rows in the batch's transaction; returns how many it changed, and how
#: many it left alone because a later update of the same profile superseded them.
Change = Callable[[Connection, list[Candidate]], tuple[int, int]]


def preview(
    engine: Engine,
    f: EventFilter,
    *,
    now: dt.datetime,
    allow_all: bool = False,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
) -> Preview:
    """Check ``f`` and describe the rows it selects at ``now``; changes nothing.

    Raises :class:`relay.admin.FilterError` for a bad or (without ``allow_all``) empty filter.
    """
    with transaction(engine) as conn:
        check_filter(conn, f, allow_all=allow_all)
        return describe(conn, f, now=now, sample_size=sample_size)


def describe(conn: Connection, f: EventFilter, *, now: dt.datetime, sample_size: int) -> Preview:
    """The :class:`Preview` of ``f``, unchecked, in the caller's transaction."""
    counts = selection.breakdown(conn, f, now=now)
    sample = selection.rows(conn, f, limit=sample_size) if sample_size > 0 else []
    return Preview(
        count=sum(r.count for r in counts),
        leased=sum(r.leased for r in counts),
        breakdown=counts,
        sample=sample,
        kinds=selection.kind_counts(conn, f),
    )


def run_batches(
    engine: Engine,
    f: EventFilter,
    *,
    change: Change,
    entry_id: int,
    now: dt.datetime,
    total: int,
    batch_size: int,
    on_batch: OnBatch | None,
) -> tuple[int, int, int, int]:
    """Walk the rows matching ``f`` in id order, ``batch_size`` per transaction, through
    ``change``; each batch also adds its count to audit entry ``entry_id``.

    Returns (changed, skipped, superseded, batches).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    changed = skipped = superseded = batches = 0
    after = 0
    while True:
        with transaction(engine, write=True) as conn:
            chosen = selection.next_batch(conn, f, after_id=after, limit=batch_size, now=now)
            if not chosen:
                break
            n, stale = change(conn, chosen)
            audit_store.add_to_entry(conn, entry_id=entry_id, count=n)
        after = chosen[-1].id
        batches += 1
        changed += n
        superseded += stale
        skipped += len(chosen) - n - stale
        if on_batch is not None:
            done = changed + skipped + superseded
            on_batch(
                BatchProgress(
                    batch=batches,
                    changed=n,
                    skipped=len(chosen) - n,
                    done=done,
                    total=max(total, done),
                )
            )
        if len(chosen) < batch_size:
            break
    return changed, skipped, superseded, batches


def run_operation(
    engine: Engine,
    f: EventFilter,
    *,
    checked: EventFilter,
    allow_all: bool,
    action: str,
    done: str,
    change: Change,
    now: dt.datetime,
    actor: str | None,
    batch_size: int,
    on_batch: OnBatch | None,
    note: str | None = None,
) -> BatchResult:
    """Check ``checked`` (the filter as the operator gave it; ``f`` may add to it), open an
    audit entry for ``action``, run ``change`` over ``f``'s rows in batches, close the entry.

    ``done`` is the past tense for the audit detail (``requeued``); ``note`` prefixes it.
    """
    with transaction(engine) as conn:
        check_filter(conn, checked, allow_all=allow_all)
        total = sum(r.count for r in selection.breakdown(conn, f, now=now))
    prefix = f"{note}; " if note else ""
    entry_id = begin_entry(
        engine,
        now=now,
        actor=actor,
        action=action,
        filter_json=f.to_json(),
        detail=prefix + UNFINISHED,
    )
    changed, skipped, superseded, batches = run_batches(
        engine,
        f,
        change=change,
        entry_id=entry_id,
        now=now,
        total=total,
        batch_size=batch_size,
        on_batch=on_batch,
    )
    skips = f", {skipped} skipped (leased by a relay, or changed meanwhile)" if skipped else ""
    if superseded:
        skips += (
            f", {superseded} profile update(s) not re-sent (a later update of the same "
            "profile superseded them)"
        )
    finish_entry(engine, entry_id, detail=f"{prefix}finished: {changed} {done}{skips}")
    return BatchResult(
        audit_id=entry_id,
        changed=changed,
        skipped=skipped,
        batches=batches,
        superseded=superseded,
    )


def requeue_change(f: EventFilter, *, now: dt.datetime) -> Change:
    """The batch step of a replay: requeue the chosen rows no relay holds and no later update
    of the same profile superseded."""

    def change(conn: Connection, chosen: list[Candidate]) -> tuple[int, int]:
        free = [c.id for c in chosen if not c.leased]
        return requeue_store.requeue(conn, f, ids=free, now=now)

    return change


def replay(
    engine: Engine,
    f: EventFilter,
    *,
    now: dt.datetime,
    actor: str | None = None,
    allow_all: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: OnBatch | None = None,
) -> BatchResult:
    """Requeue every row matching ``f`` for the relay, due at ``now``, in audited batches.

    ``actor`` defaults to the OS user. ``on_batch`` is called after each committed batch.
    Raises :class:`relay.admin.FilterError` before changing anything for a bad or (without
    ``allow_all``) empty filter, and :class:`relay._errors.StoreError` if the database fails
    (the batches already committed stay replayed and counted in the audit entry).
    """
    return run_operation(
        engine,
        f,
        checked=f,
        allow_all=allow_all,
        action="replay",
        done="requeued",
        change=requeue_change(f, now=now),
        now=now,
        actor=actor,
        batch_size=batch_size,
        on_batch=on_batch,
    )
