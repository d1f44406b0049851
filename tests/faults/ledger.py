"""The fault suite's ledger: what the business committed against what Mixpanel accepted.

A scenario records every ``$insert_id`` whose business transaction committed (only after the
commit returned), with the event, ``distinct_id`` and ``time`` it was tracked with. At the end
it reconciles that with the records the Mixpanel stand-in accepted:

* **lost**: committed, never accepted (and not refused on purpose by the scenario);
* **phantom**: accepted, never committed, and not a re-keyed copy of a committed event;
* **different-key duplicates**: a committed event accepted under a second dedup key. Either its
  ``$insert_id`` arrived with another ``(event, distinct_id, time)`` (a re-stamped re-send), or
  a record with an unknown ``$insert_id`` carries exactly the same business content as a
  committed one (a re-keyed re-send). Mixpanel cannot drop these: the event is counted twice;
* **same-key re-sends**: the same dedup key accepted again. Allowed: at-least-once delivery
  re-sends after a crash, and Mixpanel deduplicates them.

Lost, phantom and different-key duplicates must all be zero. The report prints as a small
table, so ``pytest -s`` shows it, and every assertion message carries it.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from relay.testing.mixpanel_standin import RequestRecord

#: (event, distinct_id, time in ms, $insert_id): Mixpanel's deduplication key.
DedupKey = tuple[str, str, int, str]
#: How many offending ids a report quotes; the counts are always complete.
_SAMPLE = 5
_KEY_PROPERTIES = ("time", "distinct_id", "$insert_id")


@dataclass(frozen=True, slots=True)
class Committed:
    """The dedup key parts a committed event was tracked with."""

    event: str
    distinct_id: str
    time_ms: int


@dataclass(frozen=True)
class LedgerReport:
    """The reconciliation of one scenario; ``clean`` when nothing was lost, invented or doubled."""

    scenario: str
    committed: int
    refused_on_purpose: int
    accepted_records: int
    accepted_keys: int
    delivered: int
    lost: tuple[str, ...]
    phantom: tuple[str, ...]
    different_key_duplicates: tuple[str, ...]
    same_key_resends: int
    refused_but_accepted: tuple[str, ...]
    notes: Mapping[str, object] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        """No loss, no phantom, no event counted twice, no refused record accepted."""
        return not (
            self.lost or self.phantom or self.different_key_duplicates or self.refused_but_accepted
        )

    def __str__(self) -> str:
        def sample(ids: Sequence[str]) -> str:
            if not ids:
                return ""
            more = f", ... {len(ids) - _SAMPLE} more" if len(ids) > _SAMPLE else ""
            return f"  e.g. {', '.join(map(repr, ids[:_SAMPLE]))}{more}"

        rows = [
            f"ledger [{self.scenario}]",
            f"  committed (business)              {self.committed:>9,}",
            f"  refused on purpose                {self.refused_on_purpose:>9,}",
            f"  accepted records (all sends)      {self.accepted_records:>9,}",
            f"  accepted dedup keys               {self.accepted_keys:>9,}",
            f"  delivered (committed, seen)       {self.delivered:>9,}",
            f"  LOST                              {len(self.lost):>9,}{sample(self.lost)}",
            f"  PHANTOM                           {len(self.phantom):>9,}{sample(self.phantom)}",
            f"  DUPLICATES under another key      {len(self.different_key_duplicates):>9,}"
            f"{sample(self.different_key_duplicates)}",
            f"  refused yet accepted              {len(self.refused_but_accepted):>9,}"
            f"{sample(self.refused_but_accepted)}",
            f"  same-key re-sends (allowed)       {self.same_key_resends:>9,}",
        ]
        rows.extend(f"  {name:<34}{value}" for name, value in self.notes.items())
        return "\n".join(rows)

    def assert_clean(self) -> None:
        """Fail with the whole ledger unless lost, phantom and different-key duplicates are 0."""
        assert self.clean, f"the ledger does not balance:\n{self}"


class Ledger:
    """Committed events of one scenario, safe to record from several producer threads."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self._lock = threading.Lock()
        self._committed: dict[str, Committed] = {}
        self._refused: set[str] = set()

    def record_committed(
        self, insert_id: str, *, event: str, distinct_id: str, time_ms: int
    ) -> None:
        """Record one event whose business transaction has committed."""
        with self._lock:
            if insert_id in self._committed:
                raise ValueError(f"{insert_id} recorded as committed twice")
            self._committed[insert_id] = Committed(event, distinct_id, time_ms)

    def record_all_committed(self, events: Mapping[str, Committed]) -> None:
        """Record events (``insert_id`` -> key parts) of one transaction that has committed."""
        for insert_id, committed in events.items():
            self.record_committed(
                insert_id,
                event=committed.event,
                distinct_id=committed.distinct_id,
                time_ms=committed.time_ms,
            )

    def expect_refused(self, insert_ids: Iterable[str]) -> None:
        """Mark committed events the scenario makes Mixpanel refuse: never accepted, not lost."""
        with self._lock:
            self._refused.update(insert_ids)

    @property
    def committed_ids(self) -> frozenset[str]:
        """Every committed ``$insert_id`` so far."""
        with self._lock:
            return frozenset(self._committed)

    def __len__(self) -> int:
        with self._lock:
            return len(self._committed)

    def reconcile(
        self, accepted: Iterable[Mapping[str, Any]], *, notes: Mapping[str, object] | None = None
    ) -> LedgerReport:
        """Compare the committed events with ``accepted`` (every record accepted, re-sends too)."""
        with self._lock:
            committed = dict(self._committed)
            refused = set(self._refused)
        keys_by_id: dict[str, set[DedupKey]] = defaultdict(set)
        content_by_id: dict[str, bytes] = {}
        sends: Counter[DedupKey] = Counter()
        for record in accepted:
            properties = record["properties"]
            insert_id = str(properties["$insert_id"])
            key: DedupKey = (
                str(record["event"]),
                str(properties["distinct_id"]),
                int(properties["time"]),
                insert_id,
            )
            sends[key] += 1
            keys_by_id[insert_id].add(key)
            content_by_id.setdefault(insert_id, _business_content(record))

        lost = sorted(set(committed) - refused - keys_by_id.keys())
        refused_but_accepted = sorted(refused & keys_by_id.keys())
        duplicates: list[str] = []
        for insert_id, keys in keys_by_id.items():
            expected = committed.get(insert_id)
            if expected is None:
                continue  # not committed: judged below, phantom or re-keyed copy
            wanted = (expected.event, expected.distinct_id, expected.time_ms, insert_id)
            duplicates.extend(f"{insert_id} sent as {key}" for key in sorted(keys - {wanted}))
        committed_content = {
            content_by_id[insert_id]: insert_id
            for insert_id in committed.keys() & content_by_id.keys()
        }
        phantom: list[str] = []
        for insert_id in sorted(keys_by_id.keys() - committed.keys()):
            twin = committed_content.get(content_by_id[insert_id])
            if twin is not None:
                duplicates.append(f"{insert_id} re-keys committed {twin}")
            else:
                phantom.append(insert_id)
            # A phantom accepted under several keys is one more copy per extra key.
            duplicates.extend(
                f"{insert_id} sent as {key}" for key in sorted(keys_by_id[insert_id])[1:]
            )
        return LedgerReport(
            scenario=self.scenario,
            committed=len(committed),
            refused_on_purpose=len(refused),
            accepted_records=sum(sends.values()),
            accepted_keys=len(sends),
            delivered=len(committed.keys() & keys_by_id.keys()),
            lost=tuple(lost),
            phantom=tuple(phantom),
            different_key_duplicates=tuple(duplicates),
            same_key_resends=sum(sends.values()) - len(sends),
            refused_but_accepted=tuple(refused_but_accepted),
            notes=dict(notes or {}),
        )


def _business_content(record: Mapping[str, Any]) -> bytes:
    """The event without its dedup key parts: equal for two copies of one business event."""
    properties = {k: v for k, v in record["properties"].items() if k not in _KEY_PROPERTIES}
    return orjson.dumps(
        [record["event"], record["properties"].get("distinct_id"), properties],
        option=orjson.OPT_SORT_KEYS,
    )


def sends_by_insert_id(log: Iterable[RequestRecord]) -> dict[str, list[RequestRecord]]:
    """Every request that carried each ``$insert_id``, in arrival order (answered or not)."""
    sends: dict[str, list[RequestRecord]] = defaultdict(list)
    for request in sorted(log, key=lambda r: r.at):
        for insert_id in request.insert_ids:
            sends[insert_id].append(request)
    return dict(sends)


def resends_within(log: Iterable[RequestRecord], seconds: float) -> list[str]:
    """``$insert_id``\\ s sent again less than ``seconds`` after their previous send.

    With no timeout or transient failure in play, a row may only be sent again once the lease
    of the relay that sent it has expired: a shorter gap means two relays held it at once.
    """
    violations = []
    for insert_id, requests in sends_by_insert_id(log).items():
        for first, second in itertools.pairwise(requests):
            gap = second.at - first.at
            if gap < seconds:
                violations.append(f"{insert_id} re-sent after {gap:.2f} s")
    return violations


# --- profile updates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileLedgerReport:
    """Profile updates committed against the profiles the stand-in built.

    Each business transaction of a profile scenario writes two updates of one profile: a
    ``$union`` of a fresh token into ``seen`` and a ``$set`` of ``step`` (its position among
    that profile's commits). The union accumulates whatever was ever applied, the set keeps
    whatever was applied last, so the final profiles tell: **lost** (a committed token missing
    from ``seen``), **phantom** (a token in ``seen`` that no committed transaction wrote: a
    rolled-back one), **out of order** (``step`` is not the profile's last committed step: an
    older update applied after a newer one).
    """

    scenario: str
    profiles: int
    committed: int
    rolled_back: int
    lost: tuple[str, ...]
    phantom: tuple[str, ...]
    out_of_order: tuple[str, ...]

    @property
    def clean(self) -> bool:
        """Nothing lost, nothing invented, every profile at its last committed step."""
        return not (self.lost or self.phantom or self.out_of_order)

    def __str__(self) -> str:
        def sample(ids: Sequence[str]) -> str:
            return f"  e.g. {', '.join(map(repr, ids[:_SAMPLE]))}" if ids else ""

        return "\n".join(
            [
                f"profile ledger [{self.scenario}]",
                f"  profiles                          {self.profiles:>9,}",
                f"  committed transactions            {self.committed:>9,}",
                f"  rolled back                       {self.rolled_back:>9,}",
                f"  LOST                              {len(self.lost):>9,}{sample(self.lost)}",
                f"  PHANTOM                           {len(self.phantom):>9,}"
                f"{sample(self.phantom)}",
                f"  OUT OF ORDER (profiles)           {len(self.out_of_order):>9,}"
                f"{sample(self.out_of_order)}",
            ]
        )

    def assert_clean(self) -> None:
        """Fail with the whole report unless nothing was lost, invented or reordered."""
        assert self.clean, f"the profile ledger does not balance:\n{self}"


class ProfileLedger:
    """Committed and rolled-back profile transactions of one scenario (thread-safe)."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self._lock = threading.Lock()
        self._committed: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self._rolled_back: set[str] = set()

    def record_committed(self, distinct_id: str, *, step: int, token: str) -> None:
        """Record a transaction of ``distinct_id`` that committed (after the commit returned)."""
        with self._lock:
            self._committed[distinct_id].append((step, token))

    def record_rolled_back(self, token: str) -> None:
        """Record the token of a transaction that rolled back."""
        with self._lock:
            self._rolled_back.add(token)

    def reconcile(
        self, profiles: Mapping[tuple[str, str, str], Mapping[str, Any]]
    ) -> ProfileLedgerReport:
        """Compare with the stand-in's ``profiles()``."""
        with self._lock:
            committed = {d: list(steps) for d, steps in self._committed.items()}
            rolled_back = set(self._rolled_back)
        lost: list[str] = []
        phantom: list[str] = []
        out_of_order: list[str] = []
        for distinct_id, steps in sorted(committed.items()):
            profile = profiles.get(("user", "", distinct_id), {})
            seen = set(profile.get("seen", []))
            tokens = {token for _, token in steps}
            lost.extend(sorted(tokens - seen))
            phantom.extend(sorted(seen - tokens))
            if profile.get("step") != max(step for step, _ in steps):
                out_of_order.append(distinct_id)
        unknown = [key[2] for key in profiles if key[0] == "user" and key[2] not in committed]
        phantom.extend(unknown)
        return ProfileLedgerReport(
            scenario=self.scenario,
            profiles=len(committed),
            committed=sum(len(s) for s in committed.values()),
            rolled_back=len(rolled_back),
            lost=tuple(lost),
            phantom=tuple(phantom),
            out_of_order=tuple(out_of_order),
        )
