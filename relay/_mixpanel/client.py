"""Sending outbox rows to a Mixpanel batch endpoint (``/import``, ``/engage``, ``/groups``).

:class:`BatchClient` turns claimed rows into requests (JSON array, at most the endpoint's
``max_events`` rows and ``max_bytes`` of uncompressed body each:
:mod:`relay._mixpanel.encoding`) sent over :class:`~relay._mixpanel.http.MixpanelHttp`, and
files each answer onto one bucket per row with the endpoint's own reader. A
:class:`BatchEndpoint` is all that differs between endpoints: URL, auth, headers, encoding,
limits and the reading of answers. It never raises for HTTP or transport problems; the caller
decides what each bucket means for the outbox.
"""

from __future__ import annotations

import functools
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self
from urllib.parse import urlencode

import httpcore
import httpx
import structlog
from mixpanel import ServiceAccountCredentials

from relay._config import RelaySettings
from relay._errors import ConfigurationError, EventValidationError
from relay._mixpanel.answers import (
    RESPONSE_MAX_BYTES,
    Answer,
    RequestStat,
    SendOutcome,
    file_answer,
    truncate,
    url_hint,
)
from relay._mixpanel.encoding import EMPTY_BATCH_BYTES, EncodedBatch, encode_event, plan_batches
from relay._mixpanel.http import MixpanelHttp
from relay._tables import OutboxEvent

__all__ = [
    "RESPONSE_MAX_BYTES",
    "BatchClient",
    "BatchEndpoint",
    "MixpanelImportClient",
    "RequestStat",
    "SendOutcome",
    "encode_event",
    "import_endpoint",
    "plan_batches",
]

logger = structlog.get_logger("relay.mixpanel_client")

#: zlib's window bits for a gzip container (16 + 15) instead of a raw zlib stream.
_GZIP_WBITS = 31

#: Files one answer: (batch, status, answer, outcome, stack) -> whether sending must stop.
AnswerReader = Callable[[EncodedBatch, int, Answer, SendOutcome, list[EncodedBatch]], bool]


@dataclass(frozen=True, slots=True)
class BatchEndpoint:
    """What one batch endpoint supplies: where, how authenticated, how encoded, its limits.

    ``encode`` turns a row into the JSON object a request carries (raising
    ``EventValidationError``, ``ValueError`` or ``TypeError`` for a row that cannot be sent);
    ``read_answer`` files an answer per row; ``gzip_level`` 0 sends plain JSON.
    """

    name: str
    url: str
    auth: httpx.Auth | None
    encode: Callable[[OutboxEvent], bytes]
    read_answer: AnswerReader
    max_events: int
    max_bytes: int
    gzip_level: int = 0
    headers: dict[str, str] = field(
        default_factory=lambda: {"Content-Type": "application/json", "Accept": "application/json"}
    )

    def request_headers(self) -> dict[str, str]:
        """The headers of a request (``Content-Encoding: gzip`` when compressing)."""
        if self.gzip_level > 0:
            return {**self.headers, "Content-Encoding": "gzip"}
        return dict(self.headers)


def import_endpoint(settings: RelaySettings) -> BatchEndpoint:
    """``/import?strict=1``: service account (plus ``project_id``) or project token, gzip.

    Raises ``ConfigurationError`` without complete credentials.
    """
    settings.require_mixpanel_credentials()
    auth, query = _auth_and_query(settings)
    return BatchEndpoint(
        name="/import",
        url=f"{settings.mixpanel_base_url}/import?{urlencode(query)}",
        auth=auth,
        encode=encode_event,
        read_answer=functools.partial(file_answer, hint=url_hint(settings.setting_names())),
        max_events=settings.batch_max_events,
        max_bytes=settings.batch_max_bytes,
        gzip_level=settings.gzip_level,
    )


class BatchClient:
    """Sends outbox rows to one :class:`BatchEndpoint`, one request at a time per ``send``.

    httpx never retries: retry policy belongs to the outbox, which knows how often a row was
    tried. Concurrent ``send`` calls from several threads share the connection pool and each
    get their own outcome. ``http`` (shared between endpoints) is closed by whoever made it;
    without one the client opens its own and closes it.
    """

    def __init__(
        self,
        endpoint: BatchEndpoint,
        http: MixpanelHttp,
        *,
        owns_http: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self._http = http
        self._owns_http = owns_http
        self._headers = endpoint.request_headers()

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
        """Close the HTTP client, if this client opened it."""
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
                item = self.endpoint.encode(event)
            except EventValidationError as exc:
                outcome.rejected[event.id] = truncate(f"encoding: {exc}")
                continue
            except (ValueError, TypeError) as exc:
                kind = type(exc).__name__
                outcome.rejected[event.id] = f"encoding: text is not valid UTF-8 ({kind})"
                continue
            if len(item) + EMPTY_BATCH_BYTES > self.endpoint.max_bytes:
                outcome.rejected[event.id] = (
                    f"event: encodes to {len(item)} bytes, over the request limit of "
                    f"{self.endpoint.max_bytes} bytes"
                )
                continue
            sendable.append(event)
            encoded.append(item)
        if outcome.rejected:
            logger.warning("mixpanel_events_refused_before_send", rejected=len(outcome.rejected))

        batches = plan_batches(
            encoded, max_events=self.endpoint.max_events, max_bytes=self.endpoint.max_bytes
        )
        # A stack, so that the halves of a split batch go out before the batches after it.
        stack = [
            EncodedBatch(
                sendable[planned.start : planned.stop], encoded[planned.start : planned.stop]
            )
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

    def _send_batch(
        self, batch: EncodedBatch, outcome: SendOutcome, stack: list[EncodedBatch]
    ) -> bool:
        """Send one batch and file its rows; ``True`` when no further request may go out."""
        ids = [event.id for event in batch.events]
        if self._http.cancelled:
            outcome.unsent.extend(ids)
            return True
        answer = self._post(batch, outcome)
        if answer.cancelled:
            # Mixpanel may or may not have ingested it: a re-send later carries the same
            # dedup keys, so giving the rows back (attempt returned) loses and doubles nothing.
            logger.info(
                "mixpanel_import_cancelled", endpoint=self.endpoint.name, batch_size=len(ids)
            )
            outcome.unsent.extend(ids)
            return True
        if answer.error is not None or answer.status is None or answer.response is None:
            error = answer.error or "connection error"
            logger.warning(
                "mixpanel_import_failed",
                endpoint=self.endpoint.name,
                status=answer.status,
                batch_size=len(ids),
                error=error,
            )
            outcome.retry.update(dict.fromkeys(ids, error))
            return False
        return self.endpoint.read_answer(batch, answer.status, answer, outcome, stack)

    def _post(self, batch: EncodedBatch, outcome: SendOutcome) -> Answer:
        body = b"[" + b",".join(batch.encoded) + b"]"
        level = self.endpoint.gzip_level
        content = zlib.compress(body, level, _GZIP_WBITS) if level else body
        started = time.perf_counter()
        answer = self._http.request(
            "POST",
            self.endpoint.url,
            content=content,
            headers=self._headers,
            auth=self.endpoint.auth,
        )
        outcome.requests.append(
            RequestStat(
                status=answer.status,
                seconds=time.perf_counter() - started,
                events=len(batch.events),
                body_bytes=len(body),
            )
        )
        return answer


class MixpanelImportClient(BatchClient):
    """A :class:`BatchClient` for ``/import`` with its own :class:`MixpanelHttp`.

    Each request, connect to last body byte, ends within ``request_deadline_seconds`` whatever
    the server does, and within about
    :data:`relay._mixpanel.http_deadline.CANCEL_POLL_SECONDS` once ``cancel`` is set (its rows
    come back ``unsent``). Response bodies over :data:`RESPONSE_MAX_BYTES` are not read (the
    request is retried). ``network_backend`` (default: httpcore's sockets) opens the
    connections; the deadline and ``cancel`` apply to whatever it opens.
    """

    def __init__(
        self,
        settings: RelaySettings,
        *,
        network_backend: httpcore.NetworkBackend | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        endpoint = import_endpoint(settings)
        http = MixpanelHttp(settings, network_backend=network_backend, cancel=cancel)
        super().__init__(endpoint, http, owns_http=True)


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
