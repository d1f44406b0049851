"""Reroute: move an organization's undelivered rows to another destination, audited.

For the day a customer moves region: its rows still waiting (pending) or refused (dead) go to
the new destination's Mixpanel project instead of the old one's. Delivered rows are never
touched (they are in the old project; relay does not copy Mixpanel data between projects), and
rows a relay is sending right now are skipped, reported, and left where they are: run the same
command again once their lease has ended (if the send succeeds they are delivered to the old
destination, like every row delivered before the move).

The organization is the one a router sees (:class:`relay.Route`): an event's
``organization_id`` property, a group profile update's group id when its group key is
``organization_id``, a user profile update's ``$set``/``$set_once`` ``organization_id``. A
user profile update that names no organization cannot be told apart and is not moved.

Rows change in bounded batches, each one transaction adding to the audit entry's count (action
``reroute``; the filter names the organization and the new destination), as a replay does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Engine

from relay._store import reroute as reroute_store
from relay._store import selection, transaction
from relay._store.reroute import MOVABLE, RerouteGroup
from relay._store.selection import Candidate, EventFilter, StoredRow
from relay.admin._filters import (
    MAX_ORGANIZATION_LENGTH,  # noqa: F401 - still importable from here, where it was defined
    check_organization,
)
from relay.admin._replay import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_SAMPLE_SIZE,
    BatchResult,
    OnBatch,
    run_operation,
)
from relay.admin.pauses import check_destination_name


@dataclass(frozen=True, slots=True)
class ReroutePreview:
    """What a reroute would move (a dry run; nothing was changed): ``count`` rows, ``leased`` of
    them held by a relay right now (they would be skipped), per (kind, state, destination)."""

    organization: str
    to: str
    count: int
    leased: int
    groups: list[RerouteGroup]
    sample: list[StoredRow]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready values, marked ``"dry_run": true``."""
        return {
            "dry_run": True,
            "organization": self.organization,
            "to": self.to,
            "count": self.count,
            "leased": self.leased,
            "breakdown": [g.to_json() for g in self.groups],
            "sample": [r.to_json() for r in self.sample],
        }


def reroute_filter(organization: str, to: str) -> EventFilter:
    """The rows a reroute of ``organization`` to ``to`` selects: the organization's pending and
    dead rows going elsewhere. Raises :class:`FilterError` for an empty or over-long id or a
    malformed destination name."""
    check_organization(organization)
    check_destination_name(to, option="--to")
    return EventFilter(organizations=(organization,), states=MOVABLE, not_destinations=(to,))


def preview_reroute(
    engine: Engine,
    *,
    organization: str,
    to: str,
    now: dt.datetime,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
) -> ReroutePreview:
    """Describe what :func:`reroute` would move at ``now``; changes nothing.

    Whether ``to`` is a configured destination is the caller's check (``relay reroute`` makes
    it against ``RelaySettings.destination_names()``).
    """
    f = reroute_filter(organization, to)
    with transaction(engine) as conn:
        groups = reroute_store.reroute_breakdown(conn, f, now=now)
        sample = selection.rows(conn, f, limit=sample_size) if sample_size > 0 else []
    return ReroutePreview(
        organization=organization,
        to=to,
        count=sum(g.count for g in groups),
        leased=sum(g.leased for g in groups),
        groups=groups,
        sample=sample,
    )


def reroute(
    engine: Engine,
    *,
    organization: str,
    to: str,
    now: dt.datetime,
    actor: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: OnBatch | None = None,
) -> BatchResult:
    """Move ``organization``'s pending and dead rows to destination ``to``, in audited batches.

    Returns the rows moved (``changed``) and those skipped (leased by a relay, or changed by
    one meanwhile). Raises :class:`FilterError` before changing anything for a bad
    organization or destination name; :class:`relay._errors.StoreError` if the database fails
    (the batches already committed stay moved and counted in the audit entry).
    """
    f = reroute_filter(organization, to)

    def change(conn: Connection, chosen: list[Candidate]) -> tuple[int, int]:
        free = [c.id for c in chosen if not c.leased]
        return reroute_store.reroute(conn, f, ids=free, to=to, now=now), 0

    return run_operation(
        engine,
        f,
        checked=f,
        allow_all=False,
        action="reroute",
        done=f"moved to {to}",
        change=change,
        now=now,
        actor=actor,
        batch_size=batch_size,
        on_batch=on_batch,
    )
