"""An httpx transport whose every request ends by a deadline, or promptly once cancelled.

httpx's timeouts bound one socket operation each: a server that drips one byte per read
timeout keeps a request alive forever. :class:`DeadlineTransport` plugs a network backend into
httpcore whose streams give every read and write ``min(operation timeout, time left until the
request's deadline)``, and cut reads into short slices so that a set ``cancel`` event ends a
blocked read within :data:`CANCEL_POLL_SECONDS`. The deadline is per calling thread (httpx's
sync client does all I/O of a request, its body included, in the thread that sent it), set with
:meth:`RequestDeadlines.bound`.

Writes are not sliced: a timed-out ``send`` may already have sent part of the buffer, so a write
cannot be retried. They are cut into :data:`WRITE_CHUNK_BYTES` pieces instead, and the deadline
and ``cancel`` are checked between pieces.
"""

from __future__ import annotations

import functools
import math
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

#: A blocked read looks at the cancel event at least this often.
CANCEL_POLL_SECONDS = 0.25
#: A write is sent in pieces of this size, with the deadline checked between them.
WRITE_CHUNK_BYTES = 64 * 1024


class RequestDeadlines:
    """Per-thread request deadlines plus an optional process-wide cancel event.

    ``clock`` is a monotonic clock in seconds. A thread with no deadline set is unbounded
    except by each operation's own timeout (connection-pool housekeeping, for example).
    """

    def __init__(
        self,
        *,
        cancel: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cancel = cancel
        self.clock = clock
        self._local = threading.local()

    @contextmanager
    def bound(self, seconds: float) -> Iterator[None]:
        """Within this block, every network operation of this thread ends ``seconds`` from now."""
        previous = getattr(self._local, "deadline", None)
        self._local.deadline = self.clock() + seconds
        try:
            yield
        finally:
            self._local.deadline = previous

    def left(self) -> float:
        """Seconds until this thread's deadline (``inf`` without one); negative once passed."""
        deadline: float | None = getattr(self._local, "deadline", None)
        return math.inf if deadline is None else deadline - self.clock()

    @property
    def cancelled(self) -> bool:
        """Whether the cancel event is set."""
        return self.cancel is not None and self.cancel.is_set()

    def check(self, exc_type: type[Exception]) -> float:
        """Raise ``exc_type`` if cancelled or past the deadline; else return the time left."""
        if self.cancelled:
            raise exc_type("request cancelled: relay is stopping")
        left = self.left()
        if left <= 0:
            raise exc_type("request deadline passed")
        return left


def _bounded(timeout: float | None, left: float) -> float | None:
    if timeout is None:
        return None if math.isinf(left) else left
    return min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose reads and writes respect the thread's request deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadlines: RequestDeadlines) -> None:
        self._inner = inner
        self._deadlines = deadlines

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Read like the inner stream, in slices, until data, the timeout, deadline or cancel."""
        clock = self._deadlines.clock
        op_end = math.inf if timeout is None else clock() + timeout
        while True:
            left = self._deadlines.check(httpcore.ReadTimeout)
            op_left = op_end - clock()
            if op_left <= 0:
                raise httpcore.ReadTimeout("read timed out")
            piece = min(op_left, left, CANCEL_POLL_SECONDS)
            try:
                return self._inner.read(max_bytes, timeout=piece)
            except httpcore.ReadTimeout:
                # recv() that timed out consumed nothing: reading again is safe.
                continue

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Write in chunks, each bounded by the timeout and the deadline left."""
        view = memoryview(buffer)
        for start in range(0, len(view), WRITE_CHUNK_BYTES) or (0,):
            left = self._deadlines.check(httpcore.WriteTimeout)
            chunk = view[start : start + WRITE_CHUNK_BYTES]
            self._inner.write(bytes(chunk), timeout=_bounded(timeout, left))

    def close(self) -> None:
        """Close the inner stream."""
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        """TLS over the inner stream; the handshake is bounded by the deadline too."""
        left = self._deadlines.check(httpcore.ConnectTimeout)
        inner = self._inner.start_tls(
            ssl_context, server_hostname=server_hostname, timeout=_bounded(timeout, left)
        )
        return DeadlineStream(inner, self._deadlines)

    def get_extra_info(self, info: str) -> Any:
        """Whatever the inner stream says (the pool asks for ``is_readable`` and the socket)."""
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """The default sync backend, with every stream it opens wrapped in a :class:`DeadlineStream`."""

    def __init__(
        self, deadlines: RequestDeadlines, *, inner: httpcore.NetworkBackend | None = None
    ) -> None:
        self._deadlines = deadlines
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        """Connect within the connect timeout and the time left until the deadline."""
        left = self._deadlines.check(httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(
            host,
            port,
            timeout=_bounded(timeout, left),
            local_address=local_address,
            socket_options=socket_options,
        )
        return DeadlineStream(stream, self._deadlines)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        """Connect to a Unix socket, bounded like :meth:`connect_tcp`."""
        left = self._deadlines.check(httpcore.ConnectTimeout)
        stream = self._inner.connect_unix_socket(
            path, timeout=_bounded(timeout, left), socket_options=socket_options
        )
        return DeadlineStream(stream, self._deadlines)

    def sleep(self, seconds: float) -> None:
        """Sleep like the inner backend."""
        self._inner.sleep(seconds)


class DeadlineTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` (no retries, default TLS) over a :class:`DeadlineBackend`.

    Use ``transport.deadlines.bound(seconds)`` around a request, its body read included.
    ``backend`` (default ``httpcore.SyncBackend()``) opens the sockets the deadline wraps.
    """

    def __init__(
        self, *, deadlines: RequestDeadlines, backend: httpcore.NetworkBackend | None = None
    ) -> None:
        super().__init__(verify=tls_context(), retries=0)
        self.deadlines = deadlines
        # HTTPTransport takes no network backend; the pool it built is replaced by an
        # identical one over ours (HTTPTransport only ever touches ``self._pool``).
        self._pool = httpcore.ConnectionPool(
            ssl_context=tls_context(),
            retries=0,
            network_backend=DeadlineBackend(deadlines, inner=backend),
        )


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context (certifi's CA bundle, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``),
    built once a process and shared by every transport.

    Building one loads and parses the whole CA bundle, 40-60 ms; each transport built two (its
    parent class's, then its pool's). A context is made to be shared: a connection reads it and
    sets nothing on it but the same ALPN protocols each time.
    """
    return httpx.create_ssl_context()
