"""A hostile HTTP endpoint on loopback: scripted bad answers to /import, then a plain proxy.

Each request takes the next scripted :data:`Behaviour` (a function writing raw bytes to the
socket); once the script is used up, requests are forwarded to ``upstream`` (the Mixpanel
stand-in) and its answer is sent back unchanged, so a scenario can show that rows refused
nothing and lost nothing while the endpoint lied, and are delivered once it stops lying.
Every answer closes the connection, so each request is a fresh one.
"""

from __future__ import annotations

import collections
import http.client
import socket
import socketserver
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

#: A drip-feeding or streaming behaviour gives up after this long even if the client never does.
BEHAVIOUR_MAX_SECONDS = 300.0


@dataclass(frozen=True)
class RawRequest:
    """One request as read off the socket."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes


#: Writes an answer (or none) for ``request`` to the socket; ``stop`` is set when the server stops.
Behaviour = Callable[[socket.socket, RawRequest, threading.Event], None]


def _response_head(status: int, reason: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def respond(
    status: int,
    body: bytes,
    *,
    content_type: str = "application/json",
    headers: list[tuple[str, str]] | None = None,
    declared_length: int | None = None,
) -> Behaviour:
    """Answer with ``status`` and ``body``; ``declared_length`` lies about Content-Length."""

    def behave(sock: socket.socket, _request: RawRequest, _stop: threading.Event) -> None:
        head = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body) if declared_length is None else declared_length)),
            ("Connection", "close"),
            *(headers or []),
        ]
        sock.sendall(_response_head(status, "Hostile", head) + body)

    return behave


def truncated(status: int, body: bytes, *, keep: int) -> Behaviour:
    """Declare all of ``body`` but send only its first ``keep`` bytes, then close."""
    return respond(status, body[:keep], declared_length=len(body))


def redirect(status: int, location: str) -> Behaviour:
    """A redirect to ``location`` with an empty body."""
    return respond(status, b"", content_type="text/plain", headers=[("Location", location)])


def drip_headers(*, interval: float) -> Behaviour:
    """Send the status line, then one byte of a header every ``interval`` seconds, forever."""

    def behave(sock: socket.socket, _request: RawRequest, stop: threading.Event) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\n")
        _drip(sock, stop, interval)

    return behave


def drip_body(*, interval: float) -> Behaviour:
    """Send a 200's headers (a 1 MB body declared), then one body byte every ``interval`` s."""

    def behave(sock: socket.socket, _request: RawRequest, stop: threading.Event) -> None:
        head = [("Content-Type", "application/json"), ("Content-Length", "1000000")]
        sock.sendall(_response_head(200, "OK", head) + b'{"code":200,')
        _drip(sock, stop, interval)

    return behave


def _drip(sock: socket.socket, stop: threading.Event, interval: float) -> None:
    deadline = time.monotonic() + BEHAVIOUR_MAX_SECONDS
    while not stop.is_set() and time.monotonic() < deadline:
        sock.sendall(b"x")
        if stop.wait(interval):
            return


class HugeBody:
    """A 200 declaring and streaming ``total_bytes`` of JSON-looking filler as fast as it can;
    ``sent`` counts the body bytes the client's socket took before it hung up."""

    def __init__(self, *, total_bytes: int, chunk_bytes: int = 256 * 1024) -> None:
        self.total_bytes = total_bytes
        self.chunk_bytes = chunk_bytes
        self.sent = 0

    def __call__(self, sock: socket.socket, _request: RawRequest, stop: threading.Event) -> None:
        head = [("Content-Type", "application/json"), ("Content-Length", str(self.total_bytes))]
        sock.sendall(_response_head(200, "OK", head))
        chunk = b" " * self.chunk_bytes
        while self.sent < self.total_bytes and not stop.is_set():
            piece = chunk[: self.total_bytes - self.sent]
            sock.sendall(piece)
            self.sent += len(piece)


def huge_body(*, total_bytes: int, chunk_bytes: int = 256 * 1024) -> HugeBody:
    """A 200 declaring and streaming ``total_bytes`` of JSON-looking filler as fast as it can."""
    return HugeBody(total_bytes=total_bytes, chunk_bytes=chunk_bytes)


class HostileEndpoint:
    """The server; ``script(...)`` queues behaviours, the rest is proxied to ``upstream``."""

    def __init__(self, *, upstream: str) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self._upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._script: collections.deque[Behaviour] = collections.deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.hostile_answers = 0
        self.proxied = 0
        endpoint = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                endpoint._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL to configure as ``RELAY_MIXPANEL_API_URL``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, *behaviours: Behaviour) -> None:
        """Answer the next requests with ``behaviours``, one each, in order."""
        with self._lock:
            self._script.extend(behaviours)

    @property
    def script_left(self) -> int:
        """Scripted behaviours not used yet."""
        with self._lock:
            return len(self._script)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, sock: socket.socket) -> None:
        try:
            request = _read_request(sock)
            if request is None:
                return
            with self._lock:
                behaviour = self._script.popleft() if self._script else None
                if behaviour is not None:
                    self.hostile_answers += 1
            if behaviour is None:
                self._proxy(sock, request)
                with self._lock:
                    self.proxied += 1
            else:
                behaviour(sock, request, self._stop)
        except OSError:
            return  # the client gave up on us: that is the point of most behaviours

    def _proxy(self, sock: socket.socket, request: RawRequest) -> None:
        host, port = self._upstream
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            skip = {"host", "connection", "content-length"}
            headers = {k: v for k, v in request.headers if k.lower() not in skip}
            conn.request(request.method, request.target, body=request.body, headers=headers)
            answer = conn.getresponse()
            body = answer.read()
            skip_back = {"connection", "content-length", "transfer-encoding"}
            back = [(k, v) for k, v in answer.getheaders() if k.lower() not in skip_back]
            back += [("Content-Length", str(len(body))), ("Connection", "close")]
            sock.sendall(_response_head(answer.status, answer.reason, back) + body)
        finally:
            conn.close()


def _read_request(sock: socket.socket) -> RawRequest | None:
    sock.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        rest += chunk
    return RawRequest(method, target, headers, rest[:length])
