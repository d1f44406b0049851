"""A Mixpanel stand-in: an HTTP server on loopback enforcing ``/import``'s documented contract.

It answers like Mixpanel (status codes and bodies from Mixpanel's ingestion spec), judges every
record by Mixpanel's published rules (the pure functions of ``relay.testing._mixpanel_rules``:
required fields, ids, time range, invalid UTF-8, nesting, key/element counts and the 8KB
limit on list and object values, each failing its record alone), stores a future ``time`` as
Mixpanel does (overwritten with the ingestion time, so the dedup key changes), deduplicates by
(event, distinct_id, time, ``$insert_id``) and records what it accepted, so tests and
benchmarks can check that nothing was lost or invented. ``ingested()`` adds what ingestion did
to each record: its key, the time as sent, whether it was a duplicate, whether Mixpanel would
geolocate it and which strings it would truncate.

Faults (errors, delays, outages, per-record refusals) are injected from Python or, for a
stand-in running in another process, over HTTP: ``GET /_standin/stats``, ``GET
/_standin/events`` (``ingested()`` as JSON), ``POST /_standin/reset`` and ``POST
/_standin/faults`` with a JSON body such as ``[{"op": "fail_next", "status": 503, "times": 2},
{"op": "set_outage", "status": 429, "seconds": 5}]`` (see ``MixpanelStandin.apply_faults``).

It also accepts the form-encoded bodies (``data=<json>&verbose=1``) that the ``mixpanel``
package's ``Consumer`` and ``BufferedConsumer`` post to ``/import`` and ``/track``, and answers
them the way that package expects, so it can serve as the baseline in benchmarks.

Run ``python -m relay.testing.mixpanel_standin --port 8765`` to serve in the foreground; the
first line printed is the base URL.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import http.server
import json
import signal
import socket
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from email.message import Message
from http import HTTPStatus
from types import FrameType, TracebackType
from typing import Any, Literal, Self, cast
from urllib.parse import parse_qs, urlsplit

import orjson

from relay.testing import _mixpanel_rules as rules
from relay.testing._mixpanel_rules import (
    BANNED_IDS,
    MAX_FUTURE_MS,
    MAX_INSERT_ID_LENGTH,
    MAX_PROPERTIES,
    MAX_PROPERTY_NAME_LENGTH,
    MIN_TIME_MS,
    SECONDS_THRESHOLD,
    TRACK_MAX_AGE_MS,
    Key,
)
from relay.testing._mixpanel_rules import Failure as _Failure

__all__ = [
    "BANNED_IDS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_EVENTS",
    "MAX_FUTURE_MS",
    "MAX_INSERT_ID_LENGTH",
    "MAX_PROPERTIES",
    "MAX_PROPERTY_NAME_LENGTH",
    "MIN_TIME_MS",
    "NO_ANSWER",
    "SECONDS_THRESHOLD",
    "TIMEOUT",
    "TRACK_MAX_AGE_MS",
    "IngestedEvent",
    "Key",
    "MixpanelStandin",
    "Outage",
    "RequestRecord",
    "StandinStats",
    "main",
]

#: ``set_outage`` mode that holds requests unanswered instead of answering with a status.
TIMEOUT = "timeout"
#: ``RequestRecord.status`` of a request whose connection was dropped without an answer.
NO_ANSWER = 0

DEFAULT_MAX_EVENTS = 2000
DEFAULT_MAX_BYTES = 2 * 1024 * 1024
_JOIN_SECONDS = 5.0

_ERROR_PARTIAL = "some data points in the request failed validation"
_ERROR_UNAUTHORIZED = "Invalid credentials"
_ERROR_RATE_LIMITED = (
    "Project exceeded rate limits. Please retry the request with exponential backoff."
)

Stored = tuple[Key, dict[str, Any]]
Outage = int | Literal["timeout"]


@dataclass(frozen=True, slots=True)
class StandinStats:
    """Counters since start or the last ``reset``.

    ``requests`` counts ingestion requests (``/import``, ``/track``), ``accepted`` every stored
    record including re-sends, ``duplicates`` the accepted records whose dedup key was already
    stored, ``rejected`` the records refused one by one (not whole refused requests), ``unique``
    the distinct dedup keys, ``by_status`` requests per answered status (0: dropped unanswered).
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
class _Fault:
    status: int | None  # None: a delay, then a normal answer (or a drop)
    error: str | None = None
    body: bytes | None = None
    seconds: float = 0.0
    drop: bool = False


@dataclass(frozen=True, slots=True)
class _Incoming:
    path: str
    arrived: float
    content_encoding: str | None
    body: _Body


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass(slots=True)
class _Body:
    """A decoded request body: its records, or why it could not be read."""

    records: list[Any] | None = None
    error: _Reply | None = None
    legacy: bool = False
    verbose: bool = True
    size: int = 0
    rejected: int = 0  # records refused one by one, counted when the request is finished
    strict_utf8: bool = True  # False: parsed leniently, strings may hold lone surrogates
    request_ip_used: bool = True  # /track geolocates from the request only with ip=1
    notes: dict[int, _Note] = field(default_factory=dict)  # index in the stored list -> note


@dataclass(frozen=True, slots=True)
class _Note:
    """What ingestion did to a record taken by the careful path (none: stored as sent)."""

    sent_time_ms: int
    request_ip_used: bool


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


def _parse_records(content_type: str, body: bytes) -> tuple[list[Any], bool] | _Reply:
    """(records, parsed strictly) of a JSON array or NDJSON body, or the 400 for an unreadable one.

    Invalid UTF-8 fails one record at Mixpanel ("string should be valid utf8" on its field),
    not the request, so a body orjson refuses is parsed again leniently: raw invalid bytes
    become lone surrogates (``surrogateescape``), as a ``\\ud800`` escape does, and the rules
    refuse the records holding them.
    """
    if content_type not in ("application/json", "application/x-ndjson"):
        return _mixpanel_error(400, f"unsupported Content-Type {content_type!r}")
    ndjson = content_type == "application/x-ndjson"
    try:
        if ndjson:
            return [orjson.loads(line) for line in body.splitlines() if line.strip()], True
        parsed = orjson.loads(body)
        strict = True
    except orjson.JSONDecodeError as exc:
        lenient = _parse_leniently(body, ndjson=ndjson)
        if lenient is None:
            return _mixpanel_error(400, f"unable to parse request body as JSON: {exc}")
        if ndjson:
            return lenient, False
        parsed, strict = lenient, False
    if not isinstance(parsed, list):
        return _mixpanel_error(400, "request body must be a JSON array of events")
    return parsed, strict


def _parse_leniently(body: bytes, *, ndjson: bool) -> Any:
    """The body parsed with invalid UTF-8 kept as lone surrogates, or ``None`` if not JSON."""
    text = body.decode("utf-8", "surrogateescape")
    try:
        if ndjson:
            return [_lenient_loads(line) for line in text.splitlines() if line.strip()]
        return _lenient_loads(text)
    except ValueError:  # json.JSONDecodeError, or a NaN/Infinity refused below
        return None


def _lenient_loads(text: str) -> Any:
    return json.loads(text, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    """NaN and Infinity are not JSON; only the stdlib parser would accept them."""
    raise ValueError("not JSON")


def _json_reply(status: int, payload: Mapping[str, Any]) -> _Reply:
    return _Reply(status, orjson.dumps(payload))


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _mixpanel_error(status: int, error: str) -> _Reply:
    """A whole-request error shaped like Mixpanel's strict responses."""
    return _json_reply(status, {"code": status, "error": error, "status": _phrase(status)})


def _legacy_reply(status: int, error: str | None, *, verbose: bool) -> _Reply:
    """The answer the ``mixpanel`` package's consumers parse: ``{"status": 1|0, "error": ...}``."""
    if not verbose:
        return _Reply(status, b"1" if error is None else b"0", "text/plain")
    return _json_reply(status, {"status": 1 if error is None else 0, "error": error})


class MixpanelStandin:
    """An HTTP server on loopback that behaves like Mixpanel's ingestion API.

    Thread-safe: the server answers each connection on its own thread, and every query and
    fault-injection method may be called from any thread while it runs. ``retain_events=False``
    keeps only counters and dedup keys (for long benchmarks); ``accepted_events`` and
    ``unique_events`` then raise.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        project_id: str = "standin-project",
        username: str = "standin-user",
        secret: str = "standin-secret",  # noqa: S107 - a fake credential for the fake server
        project_token: str = "standin-token",  # noqa: S107 - likewise
        max_events: int = DEFAULT_MAX_EVENTS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        now: Callable[[], float] = time.time,
        retain_events: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.project_id = project_id
        self.username = username
        self.secret = secret
        self.project_token = project_token
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.retain_events = retain_events
        self._now = now
        self._server: _Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # stop and outage changes wake holders
        self._stopping = False
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._faults: deque[_Fault] = deque()
        self._refused_ids: dict[str, _Failure] = {}
        self._outage: Outage | None = None
        self._outage_until: float | None = None
        self._clear_records()

    def _clear_records(self) -> None:
        self._accepted: list[dict[str, Any]] = []
        self._accepted_keys: list[Key] = []  # parallel to _accepted
        self._notes: dict[int, _Note] = {}  # index in _accepted -> what ingestion did
        self._unique: dict[Key, dict[str, Any]] = {}
        self._log: list[RequestRecord] = []
        self._requests = 0
        self._accepted_count = 0
        self._duplicates = 0
        self._rejected = 0
        self._by_status: dict[int, int] = {}

    # --- life cycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, such as ``http://127.0.0.1:40123``; available once started."""
        if self._server is None:
            raise RuntimeError("the stand-in is not running: call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Bind and serve on a background thread."""
        if self._server is not None:
            raise RuntimeError("the stand-in is already running")
        self._stopping = False
        self._server = _Server((self.host, self.port), _Handler, self)
        self._serve_thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="mixpanel-standin",
            daemon=True,
        )
        self._serve_thread.start()

    def stop(self) -> None:
        """Stop serving, cut open connections and wait for their threads; held requests drop."""
        server, thread = self._server, self._serve_thread
        if server is None or thread is None:
            return
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        server.shutdown()
        thread.join()
        server.server_close()
        with self._lock:
            connections = dict(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                sock.shutdown(socket.SHUT_RDWR)
        for handler_thread in connections.values():
            handler_thread.join(_JOIN_SECONDS)
        self._server = None
        self._serve_thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def settings_env(self) -> dict[str, str]:
        """``RELAY_*`` variables that point a relay subprocess at this stand-in."""
        return {
            "RELAY_MIXPANEL_API_URL": self.url,
            "RELAY_MIXPANEL_PROJECT_ID": self.project_id,
            "RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME": self.username,
            "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET": self.secret,
        }

    # --- what it accepted -----------------------------------------------------------------

    def accepted_events(self) -> list[dict[str, Any]]:
        """Every accepted record, in arrival order, re-sends included."""
        self._require_retained()
        with self._lock:
            return list(self._accepted)

    def unique_events(self) -> dict[Key, dict[str, Any]]:
        """Latest accepted record per dedup key (event, distinct_id, time in ms, ``$insert_id``)."""
        self._require_retained()
        with self._lock:
            return dict(self._unique)

    def ingested(self) -> list[IngestedEvent]:
        """Every accepted record as Mixpanel would store it, in arrival order, re-sends included.

        Each comes with its dedup key, the time as sent, whether its key was already stored,
        whether Mixpanel would geolocate it and which strings it would truncate: what a test
        needs to prove the relay sends no future time, no geolocatable event, no long string.
        """
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
        """Counters since start or the last ``reset``."""
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

    def reset(self) -> None:
        """Forget accepted records, counters and the log, and clear every fault."""
        with self._changed:
            self._clear_records()
            self._faults.clear()
            self._refused_ids.clear()
            self._outage = None
            self._outage_until = None
            self._changed.notify_all()

    def _register_connection(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections[sock] = threading.current_thread()

    def _forget_connection(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.pop(sock, None)

    def _require_retained(self) -> None:
        if not self.retain_events:
            raise RuntimeError("the stand-in was started with retain_events=False")

    # --- fault injection -------------------------------------------------------------------

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
        if not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code")
        raw = None if body is None else orjson.dumps(body)
        with self._lock:
            self._faults.extend(_Fault(status=status, error=error, body=raw) for _ in range(times))

    def delay_next(self, seconds: float, *, times: int = 1, drop: bool = False) -> None:
        """Hold the next ``times`` requests for ``seconds``, then answer normally or drop them.

        Answering normally after the client gave up stores the records all the same, as
        Mixpanel would: the client's retry then arrives as a duplicate.
        """
        with self._lock:
            self._faults.extend(
                _Fault(status=None, seconds=seconds, drop=drop) for _ in range(times)
            )

    def reject_insert_ids(
        self,
        ids: Iterable[str],
        *,
        field: str = "properties.custom",
        message: str = "rejected by stand-in",
    ) -> None:
        """Refuse every record carrying one of these ``$insert_id`` values, every time it comes."""
        with self._lock:
            for insert_id in ids:
                self._refused_ids[insert_id] = _Failure(field, message)

    def set_outage(self, status: Outage | None, until_monotonic: float | None) -> None:
        """Answer every ingestion request with ``status`` until ``time.monotonic()`` passes a time.

        ``status=TIMEOUT`` ("timeout") holds requests unanswered until the outage ends (then
        answers normally) or the stand-in stops (then drops them). ``until_monotonic=None``
        lasts until cleared; ``status=None`` clears the outage.
        """
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

    # --- request handling --------------------------------------------------------------------

    def _handle(self, method: str, target: str, headers: Message, body: bytes) -> _Reply | None:
        """The answer to one request, or ``None`` to drop the connection without one."""
        parts = urlsplit(target)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        path = parts.path.rstrip("/") or "/"
        if path in ("/import", "/track"):
            if method != "POST":
                return _mixpanel_error(405, "method not allowed")
            return self._ingest(path, query, headers, body)
        if path.startswith("/_standin/"):
            return self._control(method, path, body)
        return _json_reply(404, {"error": "not found", "status": "error"})

    def _ingest(
        self, path: str, query: dict[str, str], headers: Message, body: bytes
    ) -> _Reply | None:
        incoming = _Incoming(
            path=path,
            arrived=time.monotonic(),
            content_encoding=headers.get("Content-Encoding"),
            body=self._decode(headers, body, query),
        )
        decoded = incoming.body
        fault = self._next_fault()
        if fault is None:
            answer, replacement = self._wait_out_outage(decoded)
            if not answer or replacement is not None:
                return self._finish(incoming, [], replacement)
        elif fault.status is not None:
            reply = (
                self._fault_reply(fault.status, fault.error, decoded)
                if fault.body is None
                else _Reply(fault.status, fault.body)
            )
            return self._finish(incoming, [], reply)
        else:
            with self._changed:
                stopping = self._changed.wait_for(lambda: self._stopping, timeout=fault.seconds)
            if fault.drop or stopping:
                return self._finish(incoming, [], None)
        if path == "/track":
            reply, stored = self._track(decoded)
        elif decoded.legacy:
            reply, stored = self._legacy_import(query, headers, decoded)
        else:
            reply, stored = self._import(query, headers, decoded)
        return self._finish(incoming, stored, reply)

    def _next_fault(self) -> _Fault | None:
        """The next queued fault; queued faults wait while an outage answers everything."""
        with self._lock:
            if self._active_outage() is not None or not self._faults:
                return None
            return self._faults.popleft()

    def _wait_out_outage(self, decoded: _Body) -> tuple[bool, _Reply | None]:
        """(whether to answer at all, the outage's answer or ``None`` to process normally)."""
        with self._changed:
            while True:
                outage = self._active_outage()
                if self._stopping:
                    return False, None
                if outage is None:
                    return True, None
                if outage != TIMEOUT:
                    return True, self._fault_reply(int(outage), None, decoded)
                until = self._outage_until
                self._changed.wait(None if until is None else max(until - time.monotonic(), 0))

    def _fault_reply(self, status: int, error: str | None, decoded: _Body) -> _Reply:
        if decoded.legacy:
            return _legacy_reply(status, error or _phrase(status), verbose=True)
        if status == 413:
            return _mixpanel_error(413, error or self._too_large_error())
        if status == 401:
            return _mixpanel_error(401, error or _ERROR_UNAUTHORIZED)
        if status == 429:
            return _mixpanel_error(429, error or _ERROR_RATE_LIMITED)
        return _mixpanel_error(status, error or _phrase(status))

    def _too_large_error(self) -> str:
        return f"request exceeds max limit of {self.max_bytes} bytes"

    def _finish(
        self, incoming: _Incoming, stored: list[Stored], reply: _Reply | None
    ) -> _Reply | None:
        """Store accepted records and log the request, atomically."""
        records = incoming.body.records or []
        insert_ids: tuple[str, ...] = ()
        if self.retain_events:
            insert_ids = _insert_ids(records)
        status = NO_ANSWER if reply is None else reply.status
        entry = RequestRecord(
            at=incoming.arrived,
            status=status,
            events=len(records),
            insert_ids=insert_ids,
            path=incoming.path,
            content_encoding=incoming.content_encoding,
            body_bytes=incoming.body.size,
        )
        with self._lock:
            self._requests += 1
            self._rejected += incoming.body.rejected
            self._by_status[status] = self._by_status.get(status, 0) + 1
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
                for offset, note in incoming.body.notes.items():
                    self._notes[start + offset] = note
        return reply

    # --- bodies ------------------------------------------------------------------------------

    def _decode(self, headers: Message, body: bytes, query: dict[str, str]) -> _Body:
        inflated = self._inflate(headers, body)
        if isinstance(inflated, _Reply):
            return _Body(error=inflated)
        if len(inflated) > self.max_bytes:
            return _Body(error=_mixpanel_error(413, self._too_large_error()), size=len(inflated))
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type == "application/x-www-form-urlencoded":
            return self._decode_form(inflated, query)
        parsed = _parse_records(content_type, inflated)
        if isinstance(parsed, _Reply):
            return _Body(error=parsed, size=len(inflated))
        records, strict = parsed
        return _Body(
            records=records,
            size=len(inflated),
            strict_utf8=strict,
            request_ip_used=query.get("ip") == "1",
        )

    def _inflate(self, headers: Message, body: bytes) -> bytes | _Reply:
        """The uncompressed body (cut at ``max_bytes + 1``: no gzip bomb), or an error answer."""
        encoding = (headers.get("Content-Encoding") or "").strip().lower()
        if encoding in ("", "identity"):
            return body
        if encoding != "gzip":
            return _mixpanel_error(400, f"unsupported Content-Encoding {encoding!r}")
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        try:
            inflated = inflater.decompress(body, self.max_bytes + 1)
        except zlib.error:
            return _mixpanel_error(400, "unable to decompress gzip body")
        if not inflater.eof and len(inflated) <= self.max_bytes:
            return _mixpanel_error(400, "unable to decompress gzip body: truncated")
        return inflated

    def _decode_form(self, body: bytes, query: dict[str, str]) -> _Body:
        try:
            form = parse_qs(body.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            form = {}
        verbose = (form.get("verbose", [None])[0] or query.get("verbose")) == "1"
        data = form.get("data", [""])[0]
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            error = _legacy_reply(200, "data, missing or empty", verbose=verbose)
            return _Body(error=error, legacy=True, verbose=verbose, size=len(body))
        records = parsed if isinstance(parsed, list) else [parsed]
        request_ip_used = (form.get("ip", [None])[0] or query.get("ip")) == "1"
        return _Body(
            records=records,
            legacy=True,
            verbose=verbose,
            size=len(body),
            request_ip_used=request_ip_used,
        )

    def _authorized(self, headers: Message, query: dict[str, str]) -> bool:
        scheme, _, encoded = (headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, given_secret = decoded.partition(":")
        project_id = query.get("project_id")
        if user == self.username and given_secret == self.secret:
            return project_id == self.project_id
        if user == self.project_token and not given_secret:
            return project_id in (None, self.project_id)
        return False

    # --- endpoints ---------------------------------------------------------------------------

    def _import(
        self, query: dict[str, str], headers: Message, decoded: _Body
    ) -> tuple[_Reply, list[Stored]]:
        refusal = self._import_refusal(query, headers, decoded)
        if refusal is not None:
            return refusal, []
        records = decoded.records or []
        stored, failures = self._validate(decoded, track=False)
        if query["strict"] == "0" or not failures:
            return _json_reply(
                200, {"code": 200, "num_records_imported": len(stored), "status": "OK"}
            ), stored
        failed_records = [
            {
                "index": index,
                "insert_id": _reportable(_insert_id_of(records[index])),
                "field": failure.field,
                "message": failure.message,
            }
            for index, failure in failures
        ]
        return _json_reply(
            400,
            {
                "code": 400,
                "error": _ERROR_PARTIAL,
                "num_records_imported": len(stored),
                "status": "Bad Request",
                "failed_records": failed_records,
            },
        ), stored

    def _import_refusal(
        self, query: dict[str, str], headers: Message, decoded: _Body
    ) -> _Reply | None:
        """The whole-request answer when ``/import`` refuses a request before any record."""
        if not self._authorized(headers, query):
            return _mixpanel_error(401, _ERROR_UNAUTHORIZED)
        if query.get("strict") not in ("0", "1"):
            return _mixpanel_error(400, "query parameter 'strict' must be '0' or '1'")
        if decoded.error is not None:
            return decoded.error
        count = len(decoded.records or [])
        if not count:
            return _mixpanel_error(400, "request body must contain at least one event")
        if count > self.max_events:
            return _mixpanel_error(
                400, f"request contains {count} events, more than the limit of {self.max_events}"
            )
        return None

    def _legacy_import(
        self, query: dict[str, str], headers: Message, decoded: _Body
    ) -> tuple[_Reply, list[Stored]]:
        if not self._authorized(headers, query):
            return _legacy_reply(401, _ERROR_UNAUTHORIZED, verbose=decoded.verbose), []
        return self._legacy_records(decoded, track=False)

    def _track(self, decoded: _Body) -> tuple[_Reply, list[Stored]]:
        if decoded.records is None:
            error = decoded.error
            return error or _legacy_reply(200, "unreadable body", verbose=True), []
        return self._legacy_records(decoded, track=True)

    def _legacy_records(self, decoded: _Body, *, track: bool) -> tuple[_Reply, list[Stored]]:
        if decoded.error is not None:
            return decoded.error, []
        records = decoded.records or []
        if not records or len(records) > self.max_events:
            error = f"data must hold between 1 and {self.max_events} events"
            return _legacy_reply(200, error, verbose=decoded.verbose), []
        stored, failures = self._validate(decoded, track=track)
        if not failures or (track and stored):
            return _legacy_reply(200, None, verbose=decoded.verbose), stored
        _, first = failures[0]
        error = f"{first.field}: {first.message}"
        return _legacy_reply(200, error, verbose=decoded.verbose), stored

    def _control(self, method: str, path: str, body: bytes) -> _Reply:
        if path == "/_standin/stats" and method == "GET":
            stats = asdict(self.stats())
            stats["by_status"] = {str(k): v for k, v in stats["by_status"].items()}
            return _json_reply(200, stats)
        if path == "/_standin/events" and method == "GET":
            return self._events_reply()
        if path == "/_standin/reset" and method == "POST":
            self.reset()
            return _json_reply(200, {"ok": True})
        if path == "/_standin/faults" and method == "POST":
            try:
                self.apply_faults(orjson.loads(body))
            except (orjson.JSONDecodeError, TypeError, ValueError, KeyError) as exc:
                return _json_reply(400, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
            return _json_reply(200, {"ok": True})
        return _json_reply(404, {"error": "not found", "status": "error"})

    def _events_reply(self) -> _Reply:
        """``GET /_standin/events``: ``{"events": [...]}`` of ``ingested()``, 409 if not kept."""
        if not self.retain_events:
            return _json_reply(
                409, {"error": "the stand-in does not retain events", "status": "error"}
            )
        payload = {"events": [event.to_json() for event in self.ingested()]}
        try:
            return _json_reply(200, payload)
        except orjson.JSONEncodeError:  # an integer beyond 64 bits, kept by the lenient parse
            return _Reply(200, json.dumps(payload, ensure_ascii=False).encode())

    def apply_faults(self, spec: object) -> None:
        """Apply fault calls given as data: ``{"op": "fail_next", "status": 503, "times": 2}``.

        ``spec`` is one such object or a list of them; ``op`` names a method (``fail_next``,
        ``delay_next``, ``reject_insert_ids``, ``set_outage``, ``reset``) and the other keys are
        its arguments. ``set_outage`` also takes ``seconds`` (from now) instead of
        ``until_monotonic``. Calls apply in order up to the first invalid one, which raises
        ``TypeError``, ``ValueError`` or ``KeyError``. This is what ``POST /_standin/faults`` runs.
        """
        calls = spec if isinstance(spec, list) else [spec]
        for call in calls:
            if not isinstance(call, dict):
                raise TypeError("each fault must be a JSON object")
            args = dict(call)
            op = args.pop("op")
            if op == "fail_next":
                self.fail_next(int(args.pop("status")), **args)
            elif op == "delay_next":
                self.delay_next(float(args.pop("seconds")), **args)
            elif op == "reject_insert_ids":
                self.reject_insert_ids(args.pop("ids"), **args)
            elif op == "set_outage":
                status = args.pop("status")
                until = args.pop("until_monotonic", None)
                if (seconds := args.pop("seconds", None)) is not None:
                    until = time.monotonic() + float(seconds)
                if args:
                    raise TypeError(f"unexpected set_outage arguments: {sorted(args)}")
                self.set_outage(status, until)
            elif op == "reset":
                self.reset()
            else:
                raise ValueError(f"unknown fault op {op!r}")

    # --- the per-record contract -------------------------------------------------------------

    def _validate(
        self, decoded: _Body, *, track: bool
    ) -> tuple[list[Stored], list[tuple[int, _Failure]]]:
        """Split records into (dedup key, record) pairs to store and (index, failure) pairs.

        The rules are ``_mixpanel_rules``; a record whose time Mixpanel overwrites is stored as
        Mixpanel stores it, with the ingestion time, and keyed by it.
        """
        records = decoded.records or []
        now_ms = int(self._now() * 1000)
        with self._lock:
            refused = dict(self._refused_ids)
        stored: list[Stored] = []
        failures: list[tuple[int, _Failure]] = []
        dropped = 0
        # The fast path assumes what only the body can tell: valid UTF-8, no event near 1MB.
        fast = not track and decoded.strict_utf8 and decoded.size < rules.MAX_EVENT_BYTES
        request_ip_used = decoded.request_ip_used or not track
        fast_key = rules.fast_import_key
        notes = decoded.notes
        for index, record in enumerate(records):
            key = fast_key(record, now_ms=now_ms) if fast else None
            note: _Note | None = None
            if key is None:
                verdict = rules.judge(record, now_ms=now_ms, track=track, token=self.project_token)
                if verdict is None:  # /track's silent drop of old events
                    dropped += 1
                    continue
                if isinstance(verdict, _Failure):
                    failures.append((index, verdict))
                    continue
                key = verdict.key
                note = _Note(sent_time_ms=verdict.time.sent_ms, request_ip_used=request_ip_used)
            if refused and (failure := refused.get(key[3])) is not None:
                failures.append((index, failure))
                continue
            if note is not None:
                notes[len(stored)] = note
                if note.sent_time_ms != key[2]:  # Mixpanel stores its ingestion time instead
                    record = _with_time(record, key[2])  # noqa: PLW2901 - the stored copy
            stored.append((key, record))
        decoded.rejected = len(failures) + dropped
        return stored, failures


def _with_time(record: dict[str, Any], time_ms: int) -> dict[str, Any]:
    """A copy of ``record`` carrying ``time_ms``, as Mixpanel stores an overwritten future time."""
    return {**record, "properties": {**record["properties"], "time": time_ms}}


_NOT_RETAINED: dict[str, Any] = {}


def _insert_ids(records: list[Any]) -> tuple[str, ...]:
    """The string ``$insert_id`` values of the records that carry one, in order."""
    try:
        found = tuple([record["properties"]["$insert_id"] for record in records])
        if set(map(type, found)) <= {str}:
            return found
    except (KeyError, TypeError, IndexError):
        pass  # some record is malformed: take the careful path
    return tuple(insert_id for record in records if (insert_id := _insert_id_of(record)))


def _reportable(text: str) -> str:
    """``text`` if it can go into a JSON answer; a lone surrogate (invalid UTF-8) cannot."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return ""
    return text


def _insert_id_of(record: Any) -> str:
    if isinstance(record, dict):
        properties = record.get("properties")
        if isinstance(properties, dict):
            insert_id = properties.get("$insert_id")
            if isinstance(insert_id, str):
                return insert_id
    return ""


# --- the HTTP server ---------------------------------------------------------------------------


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[http.server.BaseHTTPRequestHandler],
        standin: MixpanelStandin,
    ) -> None:
        self.standin = standin
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client vanished mid-request (a killed relay); report the rest."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MixpanelStandin/1"

    @property
    def standin(self) -> MixpanelStandin:
        return cast(_Server, self.server).standin

    def setup(self) -> None:
        # Without TCP_NODELAY, Nagle's algorithm holding the small response behind the peer's
        # delayed ACK costs ~40 ms per request on loopback.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()
        standin = self.standin
        standin._register_connection(self.request)

    def finish(self) -> None:
        self.standin._forget_connection(self.request)
        with contextlib.suppress(OSError):  # the peer went away; nothing left to flush to
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: a benchmark would otherwise print a line per request."""

    def do_GET(self) -> None:
        self._respond("GET")

    def do_POST(self) -> None:
        self._respond("POST")

    def _respond(self, method: str) -> None:
        length_header = self.headers.get("Content-Length", "0" if method == "GET" else None)
        if length_header is None or not length_header.strip().isdigit():
            self.close_connection = True
            self._write(_json_reply(411, {"error": "Content-Length required", "status": "error"}))
            return
        try:
            body = self.rfile.read(int(length_header))
        except ConnectionError:
            self.close_connection = True
            return
        reply = self.standin._handle(method, self.path, self.headers, body)
        if reply is None:
            self.close_connection = True
            return
        self._write(reply)

    def _write(self, reply: _Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (ConnectionError, OSError):
            self.close_connection = True  # the client gave up (timeout) before the answer


# --- command line ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Serve in the foreground until SIGINT or SIGTERM; print the base URL first."""
    parser = argparse.ArgumentParser(description="Mixpanel /import stand-in on loopback")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--max-events", type=int, default=DEFAULT_MAX_EVENTS)
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES)
    parser.add_argument("--project-id", default="standin-project")
    parser.add_argument("--username", default="standin-user")
    parser.add_argument("--secret", default="standin-secret")
    parser.add_argument("--project-token", default="standin-token")
    parser.add_argument(
        "--no-retain",
        action="store_true",
        help="keep only counters and dedup keys, not the accepted records",
    )
    args = parser.parse_args(argv)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    standin = MixpanelStandin(
        host=args.host,
        port=args.port,
        project_id=args.project_id,
        username=args.username,
        secret=args.secret,
        project_token=args.project_token,
        max_events=args.max_events,
        max_bytes=args.max_bytes,
        retain_events=not args.no_retain,
    )
    with standin:
        print(standin.url, flush=True)
        done.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
