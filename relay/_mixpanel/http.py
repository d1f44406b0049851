"""The one HTTP client relay talks to Mixpanel with: whole-request deadline, body cap, no redirects.

:class:`MixpanelHttp` wraps one keep-alive ``httpx.Client`` over a
:class:`~relay._mixpanel.http_deadline.DeadlineTransport`: each request, connect to last body
byte, ends within ``RELAY_REQUEST_DEADLINE_SECONDS`` whatever the server does (a server
dripping a byte per read timeout included), and promptly once ``cancel`` is set. A body
longer than the endpoint's cap is never read whole: the connection is dropped and the answer
says so. Redirects are never followed (a Mixpanel endpoint that redirects is a wrong URL).
It never raises for HTTP or transport problems, and its error texts name the exception type
only, never a URL's query (which may hold a token) or a credential.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self

import httpcore
import httpx

from relay._config import RelaySettings
from relay._mixpanel.answers import RESPONSE_MAX_BYTES, Answer
from relay._mixpanel.http_deadline import DeadlineTransport, RequestDeadlines


class MixpanelHttp:
    """One connection pool to Mixpanel; thread-safe, each request bounded as a whole.

    No HTTP client comes from outside: one passed in would keep its own transport, and the
    deadline would bound nothing but the body read. A caller that needs other sockets (a
    test, a proxy tunnel) passes a ``network_backend``, which the deadline wraps.
    """

    def __init__(
        self,
        settings: RelaySettings,
        *,
        network_backend: httpcore.NetworkBackend | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.deadline_seconds = settings.request_deadline_seconds
        self.timeout = httpx.Timeout(
            connect=settings.connect_timeout_seconds,
            read=settings.read_timeout_seconds,
            write=settings.read_timeout_seconds,
            pool=settings.connect_timeout_seconds,
        )
        self.deadlines = RequestDeadlines(cancel=cancel)
        self._http = httpx.Client(
            timeout=self.timeout,
            transport=DeadlineTransport(deadlines=self.deadlines, backend=network_backend),
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
        """Close the connections."""
        self._http.close()

    @property
    def cancelled(self) -> bool:
        """Whether the relay is stopping (the cancel event is set)."""
        return self.deadlines.cancelled

    def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | None = None,
        max_bytes: int = RESPONSE_MAX_BYTES,
    ) -> Answer:
        """Send one request; its answer, or why there is none (``Answer.error``)."""
        deadline = self.deadlines.clock() + self.deadline_seconds
        try:
            with (
                self.deadlines.bound(self.deadline_seconds),
                self._http.stream(
                    method,
                    url,
                    content=content,
                    headers=headers,
                    auth=auth,
                    timeout=self.timeout,
                ) as response,
            ):
                return read_capped(response, max_bytes)
        except httpx.TimeoutException as exc:
            return self._failed(f"timeout: {type(exc).__name__}", deadline)
        except httpx.TransportError as exc:
            return self._failed(f"connection error: {type(exc).__name__}", deadline)
        except httpx.HTTPError as exc:
            return self._failed(f"http error: {type(exc).__name__}", deadline)

    def _failed(self, error: str, deadline: float) -> Answer:
        """An answer for a request that raised; says whether the deadline or a stop ended it."""
        if self.deadlines.cancelled:
            return Answer(None, b"", None, "request cancelled: relay is stopping", cancelled=True)
        if self.deadlines.clock() >= deadline:
            error = f"timeout: no complete answer within {self.deadline_seconds:g} s"
        return Answer(None, b"", None, error)


def read_capped(response: httpx.Response, max_bytes: int = RESPONSE_MAX_BYTES) -> Answer:
    """Read the (decoded) body up to ``max_bytes``; over it, give up on it.

    Leaving the ``stream`` block with the body unread closes the connection instead of
    returning it to the pool, so the rest of an oversized body is never read.
    """
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            error = f"HTTP {response.status_code} with a body over {max_bytes} bytes"
            return Answer(response.status_code, b"", None, error)
        chunks.append(chunk)
    return Answer(response.status_code, b"".join(chunks), response, None)
