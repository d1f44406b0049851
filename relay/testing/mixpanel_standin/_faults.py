"""Fault injection: queued errors and delays, per-record refusals, and outages.

A :class:`FaultPlan` holds what the next ingestion requests should suffer; the stand-in asks
it, request by request, what to do. It shares the stand-in's lock and condition, so an outage
ending, a change of plan or the stand-in stopping wakes every request held by a fault.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from relay.testing.mixpanel_standin._rules import Failure

#: ``set_outage`` mode that holds requests unanswered instead of answering with a status.
TIMEOUT = "timeout"

Outage = int | Literal["timeout"]


@dataclass(frozen=True, slots=True)
class Fault:
    """One queued fault: a status to answer with, or (``status is None``) a delay or a drop."""

    status: int | None
    error: str | None = None
    body: bytes | None = None
    seconds: float = 0.0
    drop: bool = False


class FaultPlan:
    """The faults waiting for the next ingestion requests; every method is thread-safe."""

    def __init__(self, changed: threading.Condition, stopping: Callable[[], bool]) -> None:
        self._changed = changed
        self._stopping = stopping
        self._faults: deque[Fault] = deque()
        self._refused_ids: dict[str, Failure] = {}
        self._outage: Outage | None = None
        self._outage_until: float | None = None

    def clear(self) -> None:
        """Forget every fault; the caller holds the lock and notifies."""
        self._faults.clear()
        self._refused_ids.clear()
        self._outage = None
        self._outage_until = None

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        error: str | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue ``times`` answers with ``status`` (see ``MixpanelStandin.fail_next``)."""
        if not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code")
        raw = None if body is None else orjson.dumps(body)
        with self._changed:
            self._faults.extend(Fault(status=status, error=error, body=raw) for _ in range(times))

    def delay_next(self, seconds: float, *, times: int = 1, drop: bool = False) -> None:
        """Queue ``times`` delays of ``seconds``, each then answered normally or dropped."""
        with self._changed:
            self._faults.extend(
                Fault(status=None, seconds=seconds, drop=drop) for _ in range(times)
            )

    def reject_insert_ids(
        self,
        ids: Iterable[str],
        *,
        field: str = "properties.custom",
        message: str = "rejected by stand-in",
    ) -> None:
        """Refuse every record carrying one of these ``$insert_id`` values, every time it comes."""
        with self._changed:
            for insert_id in ids:
                self._refused_ids[insert_id] = Failure(field, message)

    def refused_ids(self) -> dict[str, Failure]:
        """A snapshot of the refused ``$insert_id`` values and the failure each gets."""
        with self._changed:
            return dict(self._refused_ids)

    def set_outage(self, status: Outage | None, until_monotonic: float | None) -> None:
        """Answer every ingestion request with ``status`` until ``until_monotonic`` passes."""
        if status is not None and status != TIMEOUT:
            status = int(status)
            if not 100 <= status <= 599:
                raise ValueError("status must be an HTTP status code or 'timeout'")
        with self._changed:
            self._outage = status
            self._outage_until = until_monotonic if status is not None else None
            self._changed.notify_all()

    def _active_outage(self) -> Outage | None:
        """The current outage mode; the caller holds the lock."""
        if self._outage is None:
            return None
        if self._outage_until is not None and time.monotonic() >= self._outage_until:
            self._outage = None
            self._outage_until = None
            return None
        return self._outage

    def next_fault(self) -> Fault | None:
        """The next queued fault; queued faults wait while an outage answers everything."""
        with self._changed:
            if self._active_outage() is not None or not self._faults:
                return None
            return self._faults.popleft()

    def wait_out_outage(self) -> tuple[bool, int | None]:
        """(whether to answer at all, the outage's status or ``None`` to process normally).

        A ``TIMEOUT`` outage holds the caller until it ends (answer normally) or the stand-in
        stops (answer nothing).
        """
        with self._changed:
            while True:
                outage = self._active_outage()
                if self._stopping():
                    return False, None
                if outage is None:
                    return True, None
                if outage != TIMEOUT:
                    return True, int(outage)
                until = self._outage_until
                self._changed.wait(None if until is None else max(until - time.monotonic(), 0))

    def hold(self, seconds: float) -> bool:
        """Wait ``seconds`` or until the stand-in stops; whether it stopped."""
        with self._changed:
            return self._changed.wait_for(self._stopping, timeout=seconds)


def apply_fault_calls(target: Any, spec: object) -> None:
    """Apply fault calls given as data to ``target`` (a stand-in); see ``apply_faults``."""
    calls = spec if isinstance(spec, list) else [spec]
    for call in calls:
        if not isinstance(call, dict):
            raise TypeError("each fault must be a JSON object")
        args = dict(call)
        op = args.pop("op")
        if op == "fail_next":
            target.fail_next(int(args.pop("status")), **args)
        elif op == "delay_next":
            target.delay_next(float(args.pop("seconds")), **args)
        elif op == "reject_insert_ids":
            target.reject_insert_ids(args.pop("ids"), **args)
        elif op == "set_outage":
            status = args.pop("status")
            until = args.pop("until_monotonic", None)
            if (seconds := args.pop("seconds", None)) is not None:
                until = time.monotonic() + float(seconds)
            if args:
                raise TypeError(f"unexpected set_outage arguments: {sorted(args)}")
            target.set_outage(status, until)
        elif op == "refuse_credentials":
            target.refuse_credentials(bool(args.pop("refuse", True)))
        elif op == "move_project":
            target.move_project(str(args.pop("region")))
        elif op == "reset":
            target.reset()
        else:
            raise ValueError(f"unknown fault op {op!r}")


class FaultInjection:
    """The stand-in's public fault methods, each handing over to its :class:`FaultPlan`."""

    _faults: FaultPlan

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        error: str | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        """Answer the next ``times`` ingestion requests with ``status`` and a Mixpanel-shaped body.

        ``error`` replaces the body's error text; ``body`` replaces the whole JSON body (to
        reproduce a variant Mixpanel documents, such as ``$insert_id`` in ``failed_records``).
        Their records are not stored. Faults queue up in FIFO order with ``delay_next``.
        """
        self._faults.fail_next(status, times=times, error=error, body=body)

    def delay_next(self, seconds: float, *, times: int = 1, drop: bool = False) -> None:
        """Hold the next ``times`` requests for ``seconds``, then answer normally or drop them.

        Answering normally after the client gave up stores the records all the same, as
        Mixpanel would: the client's retry then arrives as a duplicate.
        """
        self._faults.delay_next(seconds, times=times, drop=drop)

    def reject_insert_ids(
        self,
        ids: Iterable[str],
        *,
        field: str = "properties.custom",
        message: str = "rejected by stand-in",
    ) -> None:
        """Refuse every record carrying one of these ``$insert_id`` values, every time it comes."""
        self._faults.reject_insert_ids(ids, field=field, message=message)

    def set_outage(self, status: Outage | None, until_monotonic: float | None) -> None:
        """Answer every ingestion request with ``status`` until ``time.monotonic()`` passes a time.

        ``status=TIMEOUT`` ("timeout") holds requests unanswered until the outage ends (then
        answers normally) or the stand-in stops (then drops them). ``until_monotonic=None``
        lasts until cleared; ``status=None`` clears the outage.
        """
        self._faults.set_outage(status, until_monotonic)

    def apply_faults(self, spec: object) -> None:
        """Apply fault calls given as data: ``{"op": "fail_next", "status": 503, "times": 2}``.

        ``spec`` is one such object or a list of them; ``op`` names a method (``fail_next``,
        ``delay_next``, ``reject_insert_ids``, ``set_outage``, ``refuse_credentials`` with
        ``refuse``, ``move_project`` with ``region``, ``reset``) and the other keys are its
        arguments. ``set_outage`` also takes ``seconds`` (from now) instead of
        ``until_monotonic``. Calls apply in order up to the first invalid one, which raises
        ``TypeError``, ``ValueError`` or ``KeyError``. This is what ``POST /_standin/faults`` runs.
        """
        apply_fault_calls(self, spec)
