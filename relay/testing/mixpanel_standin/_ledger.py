"""What the stand-in accepted: records, dedup keys, the request log and counters.

The :class:`Ledger` is written once per answered request (``record``, atomically) and read by
tests, benchmarks and the control plane; it shares the stand-in's lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from relay.testing.mixpanel_standin import _rules as rules
from relay.testing.mixpanel_standin._rules import Key
from relay.testing.mixpanel_standin._wire import Note

#: ``RequestRecord.status`` of a request whose connection was dropped without an answer.
NO_ANSWER = 0

Stored = tuple[Key, dict[str, Any]]

_NOT_RETAINED: dict[str, Any] = {}


@dataclass(frozen=True, slots=True)
class StandinStats:
    """Counters since start or the last ``reset``.

    ``requests`` counts ingestion requests (``/import``), ``accepted`` every stored record
    including re-sends, ``duplicates`` the accepted records whose dedup key was already stored,
    ``rejected`` the records refused one by one (not whole refused requests), ``unique`` the
    distinct dedup keys, ``by_status`` requests per answered status (0: dropped unanswered).
    """

    requests: int
    accepted: int
    duplicates: int
    rejected: int
    unique: int
    by_status: dict[int, int]


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One ingestion request: arrival time (monotonic), answer, and the records it carried.

    ``events`` counts the records in the body (0 if it could not be read); ``body_bytes`` is the
    uncompressed body size; ``status`` is ``NO_ANSWER`` (0) when the connection was dropped.
    """

    at: float
    status: int
    events: int
    insert_ids: tuple[str, ...]
    path: str = "/import"
    content_encoding: str | None = None
    body_bytes: int = 0


@dataclass(frozen=True, slots=True)
class IngestedEvent:
    """One accepted record as Mixpanel would store it, and what ingestion did to it.

    ``event`` is the record as stored (a future ``time`` replaced by the ingestion time, which
    ``key`` also carries); ``sent_time_ms`` is the time as sent, in ms; ``duplicate`` says its
    key was already stored; ``geolocated`` whether Mixpanel would run GeoIP on it (no ``ip`` of
    ``0``/``"0"``); ``truncated`` the paths of strings Mixpanel would silently cut to 255.
    """

    key: Key
    event: dict[str, Any]
    sent_time_ms: int
    duplicate: bool
    geolocated: bool
    truncated: tuple[str, ...]

    @property
    def time_overwritten(self) -> bool:
        """Whether Mixpanel replaced a future ``time`` with its ingestion time."""
        return self.key[2] != self.sent_time_ms

    def to_json(self) -> dict[str, Any]:
        """The JSON object ``GET /_standin/events`` lists for this record."""
        event, distinct_id, time_ms, insert_id = self.key
        return {
            "key": {
                "event": event,
                "distinct_id": distinct_id,
                "time": time_ms,
                "$insert_id": insert_id,
            },
            "event": self.event,
            "sent_time": self.sent_time_ms,
            "time_overwritten": self.time_overwritten,
            "duplicate": self.duplicate,
            "geolocated": self.geolocated,
            "truncated": list(self.truncated),
        }


class Ledger:
    """Accepted records and the request log; ``retain_events=False`` keeps counters and keys."""

    def __init__(self, lock: threading.Lock, *, retain_events: bool) -> None:
        self._lock = lock
        self.retain_events = retain_events
        self.clear()

    def clear(self) -> None:
        """Forget everything; the caller holds the lock (or nobody else can see the ledger)."""
        self._accepted: list[dict[str, Any]] = []
        self._accepted_keys: list[Key] = []  # parallel to _accepted
        self._notes: dict[int, Note] = {}  # index in _accepted -> what ingestion did
        self._unique: dict[Key, dict[str, Any]] = {}
        self._log: list[RequestRecord] = []
        self._requests = 0
        self._accepted_count = 0
        self._duplicates = 0
        self._rejected = 0
        self._by_status: dict[int, int] = {}

    def record(
        self, entry: RequestRecord, stored: list[Stored], *, rejected: int, notes: dict[int, Note]
    ) -> None:
        """Log one answered request and store what it had accepted, atomically."""
        with self._lock:
            self._requests += 1
            self._rejected += rejected
            self._by_status[entry.status] = self._by_status.get(entry.status, 0) + 1
            self._log.append(entry)
            unique = self._unique
            for key, record in stored:
                if key in unique:
                    self._duplicates += 1
                unique[key] = record if self.retain_events else _NOT_RETAINED
            self._accepted_count += len(stored)
            if self.retain_events:
                start = len(self._accepted)
                self._accepted.extend([record for _, record in stored])
                self._accepted_keys.extend([key for key, _ in stored])
                for offset, note in notes.items():
                    self._notes[start + offset] = note

    def accepted_events(self) -> list[dict[str, Any]]:
        """Every accepted record, in arrival order, re-sends included."""
        self._require_retained()
        with self._lock:
            return list(self._accepted)

    def unique_events(self) -> dict[Key, dict[str, Any]]:
        """Latest accepted record per dedup key."""
        self._require_retained()
        with self._lock:
            return dict(self._unique)

    def ingested(self) -> list[IngestedEvent]:
        """Every accepted record as Mixpanel would store it (see ``MixpanelStandin.ingested``)."""
        self._require_retained()
        with self._lock:
            records = list(self._accepted)
            keys = list(self._accepted_keys)
            notes = dict(self._notes)
        seen: set[Key] = set()
        found: list[IngestedEvent] = []
        for index, (key, record) in enumerate(zip(keys, records, strict=True)):
            note = notes.get(index)
            properties = record["properties"]
            found.append(
                IngestedEvent(
                    key=key,
                    event=record,
                    sent_time_ms=key[2] if note is None else note.sent_time_ms,
                    duplicate=key in seen,
                    geolocated=rules.geolocated(
                        properties, request_ip_used=note is None or note.request_ip_used
                    ),
                    truncated=rules.truncated_strings(record),
                )
            )
            seen.add(key)
        return found

    def stats(self) -> StandinStats:
        """Counters since start or the last ``clear``."""
        with self._lock:
            return StandinStats(
                requests=self._requests,
                accepted=self._accepted_count,
                duplicates=self._duplicates,
                rejected=self._rejected,
                unique=len(self._unique),
                by_status=dict(self._by_status),
            )

    def request_log(self) -> list[RequestRecord]:
        """Every ingestion request, in the order answered."""
        with self._lock:
            return list(self._log)

    def _require_retained(self) -> None:
        if not self.retain_events:
            raise RuntimeError("the stand-in was started with retain_events=False")
