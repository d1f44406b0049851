"""HTTP client for Mixpanel's ``/import`` endpoint: batch encoding, gzip, per-record outcome.

``MixpanelImportClient.send`` turns claimed outbox rows into ``/import?strict=1`` requests (JSON
array, at most ``batch_max_events`` events and ``batch_max_bytes`` of uncompressed body each) and
maps Mixpanel's documented answers onto one bucket per row: delivered, rejected (never retried),
retry (the whole request failed transiently) or unsent (credentials or URL are wrong). It never
raises for HTTP or transport problems; the caller decides what each bucket means for the outbox.

Events are encoded by splicing bytes: the stored properties text is never parsed or re-encoded,
and ``time`` is the stored value, so every re-send carries the same deduplication key
(event, distinct_id, time, ``$insert_id``).
"""

from __future__ import annotations

import enum
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

import httpx
import orjson
import structlog
from mixpanel import ServiceAccountCredentials

from relay.config import RelaySettings
from relay.errors import ConfigurationError, EventValidationError
from relay.models import OutboxEvent

logger = structlog.get_logger(__name__)

#: Reasons and error texts are cut to this length (Mixpanel's messages can be long).
REASON_MAX_CHARS = 500
#: zlib's window bits for a gzip container (16 + 15) instead of a raw zlib stream.
_GZIP_WBITS = 31
#: Keys the client writes itself; a stored copy of one would compete with the outbox columns.
_SPLICED_KEYS = ("time", "distinct_id", "$insert_id")
#: Outside JSON strings, JSON allows only these four whitespace bytes.
_JSON_WHITESPACE = " \t\r\n"
_EVENT_WITH_MEMBERS = b'{"event":%b,"properties":{"time":%d,"distinct_id":%b,"$insert_id":%b,%b}}'
_EVENT_WITHOUT_MEMBERS = b'{"event":%b,"properties":{"time":%d,"distinct_id":%b,"$insert_id":%b%b}}'
_EMPTY_BATCH_BYTES = len(b"[]")
#: /import never legitimately answers these: wrong credentials, role, host or URL.
_AUTH_STATUSES = frozenset({401, 403, 404})


class RecordStatus(enum.StrEnum):
    """What became of one outbox row in a ``send`` call."""

    DELIVERED = "delivered"
    REJECTED = "rejected"
    RETRY = "retry"
    UNSENT = "unsent"


@dataclass(frozen=True, slots=True)
class RequestStat:
    """One HTTP attempt: ``status`` is ``None`` for a transport error or timeout.

    ``body_bytes`` is the uncompressed JSON body, the size Mixpanel's limit applies to.
    """

    status: int | None
    seconds: float
    events: int
    body_bytes: int


@dataclass(slots=True)
class SendOutcome:
    """Per-row result of ``MixpanelImportClient.send``; every input id is in exactly one bucket.

    ``rejected`` reasons and ``retry`` error texts name fields and Mixpanel's message, never a
    property value or a credential.
    """

    delivered: list[int]
    rejected: dict[int, str]
    retry: dict[int, str]
    unsent: list[int]
    auth_error: str | None
    requests: list[RequestStat]


def encode_event(event: OutboxEvent) -> bytes:
    """One ``/import`` event object as compact JSON bytes.

    ``time``, ``distinct_id`` and ``$insert_id`` come from the outbox columns and are spliced in
    front of the stored properties, whose text is copied unchanged. Raises
    ``EventValidationError`` if the stored properties are not a JSON object, and ``ValueError`` or
    ``TypeError`` for text that cannot be encoded as UTF-8 (lone surrogates).
    """
    members = _stored_members(event)
    template = _EVENT_WITH_MEMBERS if members else _EVENT_WITHOUT_MEMBERS
    return template % (
        orjson.dumps(event.event),
        event.time_ms,
        orjson.dumps(event.distinct_id),
        orjson.dumps(event.insert_id),
        members,
    )


def _stored_members(event: OutboxEvent) -> bytes:
    """The stored object's members (the text between its braces), ``b""`` if it has none."""
    text = event.properties_json.strip(_JSON_WHITESPACE)
    if len(text) < 2 or text[0] != "{" or text[-1] != "}":
        raise EventValidationError(
            "stored properties are not a JSON object", event=event.event, field="properties"
        )
    # Searching the str is several times faster than searching its UTF-8 bytes in CPython.
    if '"time"' in text or '"distinct_id"' in text or '"$insert_id"' in text:
        # Rare slow path (the marker may just be a value): drop stored copies of the spliced
        # keys so a duplicate key can never override the dedup key taken from the columns.
        return _members_without_spliced_keys(text.encode(), event)
    return text[1:-1].strip(_JSON_WHITESPACE).encode()


def _members_without_spliced_keys(raw: bytes, event: OutboxEvent) -> bytes:
    try:
        properties = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EventValidationError(
            "stored properties are not valid JSON", event=event.event, field="properties"
        ) from exc
    if not isinstance(properties, dict):
        raise EventValidationError(
            "stored properties are not a JSON object", event=event.event, field="properties"
        )
    for key in _SPLICED_KEYS:
        properties.pop(key, None)
    return orjson.dumps(properties)[1:-1]


def plan_batches(encoded: Sequence[bytes], *, max_events: int, max_bytes: int) -> list[range]:
    """Split encoded events into consecutive batches by count and by JSON-array body size.

    A batch's size is that of ``b"[" + b",".join(batch) + b"]"``. An event too large for any
    batch on its own is given a batch of its own; the caller must refuse it rather than send it.
    """
    if max_events < 1:
        raise ValueError("max_events must be at least 1")
    batches: list[range] = []
    start = 0
    count = 0
    size = _EMPTY_BATCH_BYTES
    for index, item in enumerate(encoded):
        added = len(item) + (1 if count else 0)
        if count and (count >= max_events or size + added > max_bytes):
            batches.append(range(start, index))
            start, count, size = index, 0, _EMPTY_BATCH_BYTES
            added = len(item)
        count += 1
        size += added
    if count:
        batches.append(range(start, len(encoded)))
    return batches


def _truncate(text: str) -> str:
    return text if len(text) <= REASON_MAX_CHARS else text[: REASON_MAX_CHARS - 3] + "..."


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _error_text(status: int, payload: dict[str, Any]) -> str:
    """``HTTP <status>: <Mixpanel's error field>``; a non-JSON body (a proxy page) is left out."""
    error = payload.get("error")
    if isinstance(error, str) and error:
        return _truncate(f"HTTP {status}: {error}")
    return f"HTTP {status}"


class _Batch:
    """Events of one request, with their encodings, in the same order."""

    __slots__ = ("encoded", "events")

    def __init__(self, events: list[OutboxEvent], encoded: list[bytes]) -> None:
        self.events = events
        self.encoded = encoded

    def halves(self) -> tuple[_Batch, _Batch]:
        middle = len(self.events) // 2
        return (
            _Batch(self.events[:middle], self.encoded[:middle]),
            _Batch(self.events[middle:], self.encoded[middle:]),
        )


class MixpanelImportClient:
    """Sends outbox rows to ``/import?strict=1`` over one keep-alive ``httpx.Client``.

    Authenticates with a service account (basic auth plus ``project_id``) when one is configured,
    else with the project token as basic-auth username. httpx never retries: retry policy
    belongs to the outbox, which knows how often a row was tried. Concurrent ``send`` calls
    from several threads share the connection pool and each get their own outcome.
    """

    def __init__(self, settings: RelaySettings, *, http_client: httpx.Client | None = None) -> None:
        settings.require_mixpanel_credentials()
        self._max_events = settings.batch_max_events
        self._max_bytes = settings.batch_max_bytes
        self._gzip_level = settings.gzip_level
        self._timeout = httpx.Timeout(
            connect=settings.connect_timeout_seconds,
            read=settings.read_timeout_seconds,
            write=settings.read_timeout_seconds,
            pool=settings.connect_timeout_seconds,
        )
        self._auth, query = _auth_and_query(settings)
        self._url = f"{settings.mixpanel_base_url}/import?{urlencode(query)}"
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._gzip_level > 0:
            self._headers["Content-Encoding"] = "gzip"
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(
            timeout=self._timeout,
            transport=httpx.HTTPTransport(retries=0),
            follow_redirects=False,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client, unless it was passed in (then its owner closes it)."""
        if self._owns_http:
            self._http.close()

    def send(self, events: Sequence[OutboxEvent]) -> SendOutcome:
        """Send ``events`` in as many requests as the limits need; never raises for HTTP problems.

        Requests go out in order, one at a time. After a 401 (or a 403/404, which ``/import``
        only returns for a wrong URL or role) no further request is made and every row not yet
        answered is ``unsent``.
        """
        outcome = SendOutcome(
            delivered=[], rejected={}, retry={}, unsent=[], auth_error=None, requests=[]
        )
        sendable: list[OutboxEvent] = []
        encoded: list[bytes] = []
        for event in events:
            try:
                item = encode_event(event)
            except EventValidationError as exc:
                outcome.rejected[event.id] = _truncate(f"encoding: {exc}")
                continue
            except (ValueError, TypeError) as exc:
                kind = type(exc).__name__
                outcome.rejected[event.id] = f"encoding: text is not valid UTF-8 ({kind})"
                continue
            if len(item) + _EMPTY_BATCH_BYTES > self._max_bytes:
                outcome.rejected[event.id] = (
                    f"event: encodes to {len(item)} bytes, over the request limit of "
                    f"{self._max_bytes} bytes"
                )
                continue
            sendable.append(event)
            encoded.append(item)
        if outcome.rejected:
            logger.warning("mixpanel_events_refused_before_send", rejected=len(outcome.rejected))

        batches = plan_batches(encoded, max_events=self._max_events, max_bytes=self._max_bytes)
        # A stack, so that the halves of a split batch go out before the batches after it.
        stack = [
            _Batch(sendable[planned.start : planned.stop], encoded[planned.start : planned.stop])
            for planned in reversed(batches)
        ]
        while stack:
            batch = stack.pop()
            self._send_batch(batch, outcome, stack)
            if outcome.auth_error is not None:
                for remaining in reversed(stack):
                    outcome.unsent.extend(event.id for event in remaining.events)
                break
        return outcome

    def _send_batch(self, batch: _Batch, outcome: SendOutcome, stack: list[_Batch]) -> None:
        ids = [event.id for event in batch.events]
        response, transport_error = self._post(batch, outcome)
        if response is None:
            error = transport_error or "connection error"
            logger.warning("mixpanel_import_failed", status=None, batch_size=len(ids), error=error)
            outcome.retry.update(dict.fromkeys(ids, error))
            return
        status = response.status_code
        if status == 200:
            outcome.delivered.extend(ids)
            return
        payload = _json_object(response)
        if status == 400:
            self._apply_failed_records(batch, payload, outcome)
        elif status == 413 and len(ids) > 1:
            logger.info("mixpanel_import_batch_split", status=status, batch_size=len(ids))
            first, second = batch.halves()
            stack.append(second)
            stack.append(first)
        elif status == 413:
            reason = _error_text(status, payload)
            logger.warning("mixpanel_import_event_too_large", status=status, batch_size=1)
            outcome.rejected[ids[0]] = reason
        elif status in _AUTH_STATUSES:
            outcome.auth_error = _error_text(status, payload)
            logger.error(
                "mixpanel_import_unauthorized",
                status=status,
                batch_size=len(ids),
                error=outcome.auth_error,
            )
            outcome.unsent.extend(ids)
        else:
            # 429 and 5xx by Mixpanel's guidance; anything else unexpected is retried too,
            # since rows marked dead on a misread answer could never be recovered by backoff.
            error = _error_text(status, payload)
            logger.warning(
                "mixpanel_import_failed", status=status, batch_size=len(ids), error=error
            )
            outcome.retry.update(dict.fromkeys(ids, error))

    def _post(
        self, batch: _Batch, outcome: SendOutcome
    ) -> tuple[httpx.Response | None, str | None]:
        body = b"[" + b",".join(batch.encoded) + b"]"
        content = zlib.compress(body, self._gzip_level, _GZIP_WBITS) if self._gzip_level else body
        response: httpx.Response | None = None
        error: str | None = None
        started = time.perf_counter()
        try:
            response = self._http.post(
                self._url,
                content=content,
                headers=self._headers,
                auth=self._auth,
                timeout=self._timeout,
            )
        except httpx.TimeoutException as exc:
            error = f"timeout: {type(exc).__name__}"
        except httpx.TransportError as exc:
            error = f"connection error: {type(exc).__name__}"
        except httpx.HTTPError as exc:
            error = f"http error: {type(exc).__name__}"
        outcome.requests.append(
            RequestStat(
                status=None if response is None else response.status_code,
                seconds=time.perf_counter() - started,
                events=len(batch.events),
                body_bytes=len(body),
            )
        )
        return response, error

    def _apply_failed_records(
        self, batch: _Batch, payload: dict[str, Any], outcome: SendOutcome
    ) -> None:
        """400: the records named in ``failed_records`` are refused, the others were ingested."""
        events = batch.events
        whole_error = _error_text(400, payload)
        failed = payload.get("failed_records")
        reasons: dict[int, str] = {}
        unmatched = 0
        if isinstance(failed, list):
            positions_by_insert_id: dict[str, int] | None = None
            for record in failed:
                position = _failed_index(record, len(events))
                if position is None and isinstance(record, dict):
                    insert_id = record.get("insert_id", record.get("$insert_id"))
                    if isinstance(insert_id, str):
                        if positions_by_insert_id is None:
                            positions_by_insert_id = {
                                event.insert_id: i for i, event in enumerate(events)
                            }
                        position = positions_by_insert_id.get(insert_id)
                if position is None:
                    unmatched += 1
                    continue
                reasons[position] = _failed_reason(record)
        if not reasons or unmatched:
            # Without a usable failed_records list the failing rows cannot be told apart:
            # refusing them all keeps every one visible as a dead letter, where it can be
            # inspected and replayed; marking them delivered could lose one silently.
            for position, event in enumerate(events):
                outcome.rejected[event.id] = reasons.get(position, whole_error)
            logger.warning(
                "mixpanel_import_rejected",
                status=400,
                batch_size=len(events),
                matched=len(reasons),
                unmatched=unmatched,
                error=whole_error,
            )
            return
        for position, event in enumerate(events):
            reason = reasons.get(position)
            if reason is None:
                outcome.delivered.append(event.id)
            else:
                outcome.rejected[event.id] = reason
        imported = payload.get("num_records_imported")
        logger.warning(
            "mixpanel_import_records_rejected",
            status=400,
            batch_size=len(events),
            rejected=len(reasons),
            num_records_imported=imported if isinstance(imported, int) else None,
        )


def _failed_index(record: object, batch_size: int) -> int | None:
    if not isinstance(record, dict):
        return None
    index = record.get("index")
    if isinstance(index, float) and index.is_integer():
        index = int(index)
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < batch_size:
        return index
    return None


def _failed_reason(record: dict[str, Any]) -> str:
    field = record.get("field")
    message = record.get("message")
    field_text = field if isinstance(field, str) and field else "record"
    message_text = message if isinstance(message, str) and message else "failed validation"
    return _truncate(f"{field_text}: {message_text}")


def _auth_and_query(settings: RelaySettings) -> tuple[httpx.BasicAuth, dict[str, str]]:
    """Basic auth and query parameters for /import; assumes ``require_mixpanel_credentials``."""
    username = settings.mixpanel_service_account_username
    secret = settings.mixpanel_service_account_secret
    if username and secret is not None:
        try:
            credentials = ServiceAccountCredentials(
                username=username,
                secret=secret.get_secret_value(),
                project_id=settings.mixpanel_project_id or "",
            )
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"invalid Mixpanel service account: {exc}") from exc
        auth = httpx.BasicAuth(credentials.username, credentials.secret)
        return auth, {"strict": "1", "project_id": credentials.project_id}
    token = settings.mixpanel_project_token
    if token is None:  # pragma: no cover - require_mixpanel_credentials() refused this already
        raise ConfigurationError("no Mixpanel credentials configured")
    return httpx.BasicAuth(token.get_secret_value(), ""), {"strict": "1"}
