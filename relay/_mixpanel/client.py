"""HTTP client for Mixpanel's ``/import`` endpoint: requests, gzip, deadlines, cancellation.

``MixpanelImportClient.send`` turns claimed outbox rows into ``/import?strict=1`` requests (JSON
array, at most ``batch_max_events`` events and ``batch_max_bytes`` of uncompressed body each:
:mod:`relay._mixpanel.encoding`) and files Mixpanel's answers onto one bucket per row
(:mod:`relay._mixpanel.answers`). It never raises for HTTP or transport problems; the caller
decides what each bucket means for the outbox.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Sequence
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
    read_capped,
    truncate,
)
from relay._mixpanel.encoding import EMPTY_BATCH_BYTES, EncodedBatch, encode_event, plan_batches
from relay._mixpanel.http_deadline import DeadlineTransport, RequestDeadlines
from relay._tables import OutboxEvent

__all__ = [
    "RESPONSE_MAX_BYTES",
    "MixpanelImportClient",
    "RequestStat",
    "SendOutcome",
    "encode_event",
    "plan_batches",
]

logger = structlog.get_logger("relay.mixpanel_client")

#: zlib's window bits for a gzip container (16 + 15) instead of a raw zlib stream.
_GZIP_WBITS = 31


class MixpanelImportClient:
    """Sends outbox rows to ``/import?strict=1`` over one keep-alive ``httpx.Client``.

    Authenticates with a service account (basic auth plus ``project_id``) when one is configured,
    else with the project token as basic-auth username. httpx never retries: retry policy
    belongs to the outbox, which knows how often a row was tried. Concurrent ``send`` calls
    from several threads share the connection pool and each get their own outcome.

    Each request, connect to last body byte, ends within ``request_deadline_seconds`` whatever
    the server does, and within about :data:`relay._mixpanel.http_deadline.CANCEL_POLL_SECONDS` once
    ``cancel`` is set (its rows come back ``unsent``). Response bodies over
    :data:`RESPONSE_MAX_BYTES` are not read (the request is retried). ``network_backend``
    (default: httpcore's sockets) opens the connections; the deadline and ``cancel`` apply to
    whatever it opens.
    """

    def __init__(
        self,
        settings: RelaySettings,
        *,
        network_backend: httpcore.NetworkBackend | None = None,
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
        auth, query = _auth_and_query(settings)
        self._auth: httpx.BasicAuth | None = auth
        self._url = f"{settings.mixpanel_base_url}/import?{urlencode(query)}"
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._gzip_level > 0:
            self._headers["Content-Encoding"] = "gzip"
        # No HTTP client comes from outside: one passed in would keep its own transport, and
        # the deadline would bound nothing but the body read. A caller that needs other
        # sockets (a test, a proxy tunnel) passes a network backend, which the deadline wraps.
        self._deadlines = RequestDeadlines(cancel=cancel)
        self._http = httpx.Client(
            timeout=self._timeout,
            transport=DeadlineTransport(deadlines=self._deadlines, backend=network_backend),
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
        """Close the HTTP client and its connections."""
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
                item = self._encode(event)
            except EventValidationError as exc:
                outcome.rejected[event.id] = truncate(f"encoding: {exc}")
                continue
            except (ValueError, TypeError) as exc:
                kind = type(exc).__name__
                outcome.rejected[event.id] = f"encoding: text is not valid UTF-8 ({kind})"
                continue
            if len(item) + EMPTY_BATCH_BYTES > self._max_bytes:
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

    #: Reads one answer into per-row outcomes (``/engage`` and ``/groups`` read theirs otherwise).
    _file_answer = staticmethod(file_answer)

    def _encode(self, event: OutboxEvent) -> bytes:
        """One row as the JSON object a request carries (``/import``: an event)."""
        return encode_event(event)

    def _send_batch(
        self, batch: EncodedBatch, outcome: SendOutcome, stack: list[EncodedBatch]
    ) -> bool:
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

    def _post(self, batch: EncodedBatch, outcome: SendOutcome) -> Answer:
        body = b"[" + b",".join(batch.encoded) + b"]"
        content = zlib.compress(body, self._gzip_level, _GZIP_WBITS) if self._gzip_level else body
        answer: Answer
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
                answer = read_capped(response)
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

    def _failed(self, error: str, deadline: float) -> Answer:
        """An answer for a request that raised; says whether the deadline or a stop ended it."""
        if self._deadlines.cancelled:
            return Answer(None, b"", None, "request cancelled: relay is stopping", cancelled=True)
        if self._deadlines.clock() >= deadline:
            error = f"timeout: no complete answer within {self._deadline_seconds:g} s"
        return Answer(None, b"", None, error)


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
