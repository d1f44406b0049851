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
import threading
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

from relay._config import RelaySettings
from relay._delivery.http_deadline import DeadlineTransport, RequestDeadlines
from relay._errors import ConfigurationError, EventValidationError
from relay._escape import clip
from relay._tables import OutboxEvent

logger = structlog.get_logger("relay.mixpanel_client")

#: Reasons and error texts are cut to this length (Mixpanel's messages can be long).
REASON_MAX_CHARS = 500
#: zlib's window bits for a gzip container (16 + 15) instead of a raw zlib stream.
_GZIP_WBITS = 31
#: Keys the client writes itself; a stored copy of one would compete with the outbox columns
#: (or, for ``ip``, turn Mixpanel's GeoIP lookup back on).
_SPLICED_KEYS = ("time", "distinct_id", "$insert_id", "ip")
#: Outside JSON strings, JSON allows only these four whitespace bytes.
_JSON_WHITESPACE = " \t\r\n"
#: ``"ip":"0"`` tells /import to skip GeoIP: without ``ip`` it geolocates the request's address,
#: which for a relay is its data centre. Explicit ``$city``/``$region``/``mp_country_code``
#: stored by ``track()`` pass through untouched.
_EVENT_WITH_MEMBERS = (
    b'{"event":%b,"properties":{"time":%d,"distinct_id":%b,"$insert_id":%b,"ip":"0",%b}}'
)
_EVENT_WITHOUT_MEMBERS = (
    b'{"event":%b,"properties":{"time":%d,"distinct_id":%b,"$insert_id":%b,"ip":"0"%b}}'
)
_EMPTY_BATCH_BYTES = len(b"[]")
#: /import never legitimately answers these: wrong credentials, role, host or URL.
_AUTH_STATUSES = frozenset({401, 403, 404})
#: Mixpanel's answers are a few hundred bytes (a 400 names at most 2000 failed records); a
#: longer body is not its answer, and reading it would let any server fill the relay's memory.
RESPONSE_MAX_BYTES = 1024 * 1024


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
    if '"time"' in text or '"distinct_id"' in text or '"$insert_id"' in text or '"ip"' in text:
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
    return clip(text, REASON_MAX_CHARS, marker="...")


def _json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, ``None`` if it is anything else (a proxy page, truncated)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _error_text(status: int, payload: dict[str, Any] | None) -> str:
    """``HTTP <status>: <Mixpanel's error field>``; a non-JSON body (a proxy page) is left out."""
    error = None if payload is None else payload.get("error")
    if isinstance(error, str) and error:
        return _truncate(f"HTTP {status}: {error}")
    return f"HTTP {status}"


def _not_an_acknowledgement(body: bytes, batch_size: int) -> str | None:
    """Why a 200's body is not Mixpanel's answer for this batch, ``None`` if it is.

    The answer is identified strictly (a JSON object with ``"code": 200`` and ``"status": "OK"``)
    and checked against the batch (``num_records_imported``, when present, is its size); other
    keys are ignored. The reason never quotes the body.
    """
    if not body.strip():
        return "HTTP 200 with an empty body, not Mixpanel's answer"
    payload = _json_object(body)
    if payload is None:
        return "HTTP 200 with a body that is not a JSON object, not Mixpanel's answer"
    code = payload.get("code")
    if not (_is_int(code) and code == 200) or payload.get("status") != "OK":
        return 'HTTP 200 without "code": 200 and "status": "OK", not Mixpanel\'s answer'
    imported = payload.get("num_records_imported", batch_size)
    if not (_is_int(imported) and imported == batch_size):
        return "HTTP 200 whose num_records_imported is not the batch size"
    return None


def _redirect_text(status: int, response: httpx.Response) -> str:
    """Name a redirect and its target without the target's query string or credentials."""
    location = response.headers.get("location")
    target = "no Location"
    if location:
        try:
            url = response.request.url.join(location)
            target = str(url.copy_with(query=None, fragment=None, userinfo=b""))
        except (httpx.InvalidURL, ValueError, TypeError):
            target = "an invalid Location"
    return _truncate(
        f"HTTP {status}: redirected to {target}; relay does not follow redirects, "
        "check RELAY_MIXPANEL_API_URL / RELAY_MIXPANEL_REGION"
    )


@dataclass(frozen=True, slots=True)
class _Answer:
    """What came back for one request: a status and a body read within the cap, or an error.

    ``error`` set means no usable answer (transport error, timeout, deadline, body over the
    cap); ``cancelled`` means the request was cut short because the relay is stopping.
    """

    status: int | None
    body: bytes
    response: httpx.Response | None
    error: str | None
    cancelled: bool = False


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

    Each request, connect to last body byte, ends within ``request_deadline_seconds`` whatever
    the server does, and within about :data:`relay._delivery.http_deadline.CANCEL_POLL_SECONDS` once
    ``cancel`` is set (its rows come back ``unsent``). Response bodies over
    :data:`RESPONSE_MAX_BYTES` are not read (the request is retried).
    """

    def __init__(
        self,
        settings: RelaySettings,
        *,
        http_client: httpx.Client | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        settings.require_mixpanel_credentials()
        self._max_events = settings.batch_max_events
        self._max_bytes = settings.batch_max_bytes
        self._gzip_level = settings.gzip_level
        self._deadline_seconds = settings.request_deadline_seconds
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
        # A client passed in keeps its own transport; the deadline then bounds nothing but
        # the body read, and ``cancel`` is only checked between requests.
        self._deadlines = RequestDeadlines(cancel=cancel)
        self._http = http_client or httpx.Client(
            timeout=self._timeout,
            transport=DeadlineTransport(deadlines=self._deadlines),
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

        Requests go out in order, one at a time. After a 401, a 3xx (``/import`` never
        redirects: the URL is wrong) or a 403/404 (a wrong URL or role) no further request
        is made and every row not yet answered is ``unsent``; ``auth_error`` says why. Once
        ``cancel`` is set, the request in flight is cut short and every row not yet answered
        is ``unsent`` too, with ``auth_error`` left ``None``.
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
            stopped = self._send_batch(batch, outcome, stack)
            if stopped:
                for remaining in reversed(stack):
                    outcome.unsent.extend(event.id for event in remaining.events)
                break
        return outcome

    def _send_batch(self, batch: _Batch, outcome: SendOutcome, stack: list[_Batch]) -> bool:
        """Send one batch and file its rows; ``True`` when no further request may go out."""
        ids = [event.id for event in batch.events]
        if self._deadlines.cancelled:
            outcome.unsent.extend(ids)
            return True
        answer = self._post(batch, outcome)
        if answer.cancelled:
            # Mixpanel may or may not have ingested it: a re-send later carries the same
            # dedup keys, so giving the rows back (attempt returned) loses and doubles nothing.
            logger.info("mixpanel_import_cancelled", batch_size=len(ids))
            outcome.unsent.extend(ids)
            return True
        if answer.error is not None or answer.status is None or answer.response is None:
            error = answer.error or "connection error"
            logger.warning(
                "mixpanel_import_failed", status=answer.status, batch_size=len(ids), error=error
            )
            outcome.retry.update(dict.fromkeys(ids, error))
            return False
        return self._file_answer(batch, answer.status, answer, outcome, stack)

    def _file_answer(
        self,
        batch: _Batch,
        status: int,
        answer: _Answer,
        outcome: SendOutcome,
        stack: list[_Batch],
    ) -> bool:
        """File the rows of a batch Mixpanel (or something) answered; ``True`` stops sending."""
        ids = [event.id for event in batch.events]
        if status == 200:
            problem = _not_an_acknowledgement(answer.body, len(ids))
            if problem is None:
                outcome.delivered.extend(ids)
            else:
                # Whoever answered (a proxy, a captive portal, a cut connection), it was not
                # Mixpanel saying it ingested these rows: delivering them could lose them.
                logger.warning(
                    "mixpanel_import_unacknowledged", status=200, batch_size=len(ids), error=problem
                )
                outcome.retry.update(dict.fromkeys(ids, problem))
            return False
        if 300 <= status < 400 and answer.response is not None:
            outcome.auth_error = _redirect_text(status, answer.response)
            logger.error(
                "mixpanel_import_redirected",
                status=status,
                batch_size=len(ids),
                error=outcome.auth_error,
            )
            outcome.unsent.extend(ids)
            return True
        payload = _json_object(answer.body)
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
            return True
        else:
            # 429 and 5xx by Mixpanel's guidance; anything else unexpected is retried too,
            # since rows marked dead on a misread answer could never be recovered by backoff.
            error = _error_text(status, payload)
            logger.warning(
                "mixpanel_import_failed", status=status, batch_size=len(ids), error=error
            )
            outcome.retry.update(dict.fromkeys(ids, error))
        return False

    def _post(self, batch: _Batch, outcome: SendOutcome) -> _Answer:
        body = b"[" + b",".join(batch.encoded) + b"]"
        content = zlib.compress(body, self._gzip_level, _GZIP_WBITS) if self._gzip_level else body
        answer: _Answer
        started = time.perf_counter()
        deadline = self._deadlines.clock() + self._deadline_seconds
        try:
            with (
                self._deadlines.bound(self._deadline_seconds),
                self._http.stream(
                    "POST",
                    self._url,
                    content=content,
                    headers=self._headers,
                    auth=self._auth,
                    timeout=self._timeout,
                ) as response,
            ):
                answer = _read_capped(response)
        except httpx.TimeoutException as exc:
            answer = self._failed(f"timeout: {type(exc).__name__}", deadline)
        except httpx.TransportError as exc:
            answer = self._failed(f"connection error: {type(exc).__name__}", deadline)
        except httpx.HTTPError as exc:
            answer = self._failed(f"http error: {type(exc).__name__}", deadline)
        outcome.requests.append(
            RequestStat(
                status=answer.status,
                seconds=time.perf_counter() - started,
                events=len(batch.events),
                body_bytes=len(body),
            )
        )
        return answer

    def _failed(self, error: str, deadline: float) -> _Answer:
        """An answer for a request that raised; says whether the deadline or a stop ended it."""
        if self._deadlines.cancelled:
            return _Answer(None, b"", None, "request cancelled: relay is stopping", cancelled=True)
        if self._deadlines.clock() >= deadline:
            error = f"timeout: no complete answer within {self._deadline_seconds:g} s"
        return _Answer(None, b"", None, error)

    def _apply_failed_records(
        self, batch: _Batch, payload: dict[str, Any] | None, outcome: SendOutcome
    ) -> None:
        """400: the records named in ``failed_records`` are refused, the others were ingested.

        A 400 whose body is not Mixpanel's JSON error is retried (a proxy's page says nothing
        about the rows). Without ``failed_records`` the whole request was refused: every row is
        dead with Mixpanel's error. With them, each must name one row of this batch (see
        :func:`_match_failed_records`); when they do not add up, nothing is delivered or
        refused on a guess: the whole batch is retried.
        """
        events = batch.events
        ids = [event.id for event in events]
        if payload is None or not isinstance(payload.get("error"), str):
            error = "HTTP 400 without Mixpanel's JSON error, not Mixpanel's answer"
            logger.warning("mixpanel_import_failed", status=400, batch_size=len(ids), error=error)
            outcome.retry.update(dict.fromkeys(ids, error))
            return
        whole_error = _error_text(400, payload)
        failed = payload.get("failed_records")
        if failed is None:
            for event in events:
                outcome.rejected[event.id] = whole_error
            logger.warning(
                "mixpanel_import_rejected", status=400, batch_size=len(ids), error=whole_error
            )
            return
        reasons, problem = _match_failed_records(events, failed, payload)
        if problem is not None:
            error = _truncate(f"HTTP 400: answer inconsistent with the batch: {problem}")
            logger.warning("mixpanel_import_failed", status=400, batch_size=len(ids), error=error)
            outcome.retry.update(dict.fromkeys(ids, error))
            return
        for position, event in enumerate(events):
            reason = reasons.get(position)
            if reason is None:
                outcome.delivered.append(event.id)
            else:
                outcome.rejected[event.id] = reason
        logger.warning(
            "mixpanel_import_records_rejected",
            status=400,
            batch_size=len(events),
            rejected=len(reasons),
        )


def _read_capped(response: httpx.Response) -> _Answer:
    """Read the (decoded) body up to :data:`RESPONSE_MAX_BYTES`; over it, give up on it.

    Leaving the ``stream`` block with the body unread closes the connection instead of
    returning it to the pool, so the rest of an oversized body is never read.
    """
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > RESPONSE_MAX_BYTES:
            error = f"HTTP {response.status_code} with a body over {RESPONSE_MAX_BYTES} bytes"
            return _Answer(response.status_code, b"", None, error)
        chunks.append(chunk)
    return _Answer(response.status_code, b"".join(chunks), response, None)


def _match_failed_records(
    events: Sequence[OutboxEvent], failed: object, payload: dict[str, Any]
) -> tuple[dict[int, str], str | None]:
    """Batch positions refused by ``failed_records`` with their reasons, or why they don't add up.

    A record naming an ``$insert_id`` (or ``insert_id``) is matched by it, even when its
    ``index`` points elsewhere: the id is the row's identity, an index is only a position.
    Only a record without an id is matched by ``index``. The answer is inconsistent, and the
    second element says how, when: ``failed_records`` is not a non-empty list of objects; a
    record names an id not in the batch, or an unusable index; two records name the same row;
    or ``num_records_imported`` (when present) is not the batch size minus the refused rows.
    """
    if not isinstance(failed, list) or not failed:
        return {}, "failed_records is not a non-empty list"
    positions: dict[str, int] = {}
    duplicated: set[str] = set()
    for row, event in enumerate(events):
        if event.insert_id in positions:
            duplicated.add(event.insert_id)
        positions[event.insert_id] = row
    reasons: dict[int, str] = {}
    disagreeing = 0
    for record in failed:
        position, problem = _failed_position(record, positions, duplicated, len(events))
        if position is None:
            return {}, problem
        if position in reasons:
            return {}, "two failed records name the same row"
        disagreeing += problem is not None
        reasons[position] = _failed_reason(record)
    imported = payload.get("num_records_imported")
    if imported is not None and not (_is_int(imported) and imported == len(events) - len(reasons)):
        return {}, "num_records_imported plus failed_records is not the batch size"
    if disagreeing:
        logger.warning("mixpanel_failed_records_index_disagrees", records=disagreeing)
    return reasons, None


def _failed_position(
    record: object, positions: dict[str, int], duplicated: set[str], batch_size: int
) -> tuple[int | None, str | None]:
    """The batch position one failed record names, else ``None`` and why not.

    A position comes with a note when the record's index disagrees with its ``$insert_id``.
    """
    if not isinstance(record, dict):
        return None, "a failed record is not an object"
    insert_id = record.get("$insert_id", record.get("insert_id"))
    index = _failed_index(record, batch_size)
    if insert_id is None:
        if index is None:
            return None, "a failed record names neither an $insert_id nor a usable index"
        return index, None
    if not isinstance(insert_id, str) or insert_id not in positions:
        return None, "a failed record names an $insert_id not in the batch"
    if insert_id in duplicated:
        return None, "a failed record names an $insert_id the batch holds twice"
    position = positions[insert_id]
    return position, None if index is None or index == position else "index disagrees"


def _failed_index(record: dict[str, Any], batch_size: int) -> int | None:
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
