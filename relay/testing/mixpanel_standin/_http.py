"""The HTTP plumbing: a threading server on loopback whose handler hands each request over.

It knows nothing of Mixpanel: it reads a request (refusing one without ``Content-Length``),
asks the application for a :class:`Reply` (``None``: drop the connection unanswered) and
writes it. Each connection is registered with the application, so stopping can cut them.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import sys
from email.message import Message
from typing import Any, Protocol, cast

from relay.testing.mixpanel_standin._wire import Reply, json_reply


class Application(Protocol):
    """What the server serves: an answer per request, and the open connections."""

    def _handle(self, method: str, target: str, headers: Message, body: bytes) -> Reply | None:
        """The answer to one request, or ``None`` to drop the connection without one."""

    def _register_connection(self, sock: socket.socket) -> None:
        """Remember an open connection and the thread serving it."""

    def _forget_connection(self, sock: socket.socket) -> None:
        """Forget a closed connection."""


class Server(http.server.ThreadingHTTPServer):
    """A threading HTTP server whose handlers serve ``application``."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], application: Application) -> None:
        self.application = application
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client vanished mid-request (a killed relay); report the rest."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MixpanelStandin/1"

    @property
    def application(self) -> Application:
        return cast(Server, self.server).application

    def setup(self) -> None:
        # Without TCP_NODELAY, Nagle's algorithm holding the small response behind the peer's
        # delayed ACK costs ~40 ms per request on loopback.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()
        self.application._register_connection(self.request)

    def finish(self) -> None:
        self.application._forget_connection(self.request)
        with contextlib.suppress(OSError):  # the peer went away; nothing left to flush to
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: a benchmark would otherwise print a line per request."""

    def do_GET(self) -> None:
        self._respond("GET")

    def do_POST(self) -> None:
        self._respond("POST")

    def do_DELETE(self) -> None:
        self._respond("DELETE")

    def _respond(self, method: str) -> None:
        default_length = None if method == "POST" else "0"
        length_header = self.headers.get("Content-Length", default_length)
        if length_header is None or not length_header.strip().isdigit():
            self.close_connection = True
            self._write(json_reply(411, {"error": "Content-Length required", "status": "error"}))
            return
        try:
            body = self.rfile.read(int(length_header))
        except ConnectionError:
            self.close_connection = True
            return
        reply = self.application._handle(method, self.path, self.headers, body)
        if reply is None:
            self.close_connection = True
            return
        self._write(reply)

    def _write(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (ConnectionError, OSError):
            self.close_connection = True  # the client gave up (timeout) before the answer
