"""The /healthz and /metrics server under idle, slow and numerous clients (real sockets)."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import httpx
import pytest

from relay._daemon.metrics import MetricsServer, RelayMetrics

#: A generous ceiling for "at once" and "soon": the old server never answered at all.
PROMPT_SECONDS = 10.0


@pytest.fixture
def small_server() -> Iterator[MetricsServer]:
    """A server that serves 4 connections at once, times reads out after 1 s, closes at 2 s."""
    server = MetricsServer(
        RelayMetrics(),
        host="127.0.0.1",
        port=0,
        max_connections=4,
        timeout_seconds=1.0,
        deadline_seconds=2.0,
    )
    server.start()
    try:
        yield server
    finally:
        server.close()


def _idle(port: int, count: int) -> list[socket.socket]:
    return [
        socket.create_connection(("127.0.0.1", port), timeout=PROMPT_SECONDS) for _ in range(count)
    ]


def _closed_within(sock: socket.socket, seconds: float) -> bytes:
    """Everything the server sent before closing ``sock``; fails if it stays open ``seconds``."""
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def test_an_idle_connection_is_closed_after_the_timeout(small_server: MetricsServer) -> None:
    """A client that connects and sends nothing is disconnected, not served forever."""
    (sock,) = _idle(small_server.port, 1)
    with sock:
        started = time.monotonic()
        _closed_within(sock, PROMPT_SECONDS)
        assert time.monotonic() - started < PROMPT_SECONDS


def test_connections_beyond_the_cap_are_refused_at_once(small_server: MetricsServer) -> None:
    """With every slot held by idle clients, one more gets 503 and is closed immediately."""
    held = _idle(small_server.port, 4)
    try:
        (extra,) = _idle(small_server.port, 1)
        with extra:
            extra.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            answer = _closed_within(extra, PROMPT_SECONDS)
        assert answer.startswith(b"HTTP/1.0 503")
    finally:
        for sock in held:
            sock.close()


def test_a_client_trickling_bytes_is_closed_at_the_deadline(small_server: MetricsServer) -> None:
    """A slow client sending a byte now and then, never finishing its request, is cut off at
    the connection deadline although no single read times out."""
    with socket.create_connection(("127.0.0.1", small_server.port), timeout=0.3) as sock:
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < PROMPT_SECONDS:
            try:
                sock.sendall(b"X")
                if sock.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        assert closed, "the trickling client was never disconnected"


def test_healthz_answers_once_idle_clients_are_gone(small_server: MetricsServer) -> None:
    """Idle clients holding every slot delay /healthz by at most the read timeout."""
    held = _idle(small_server.port, 4)
    try:
        deadline = time.monotonic() + PROMPT_SECONDS
        while True:
            reply = httpx.get(f"http://127.0.0.1:{small_server.port}/healthz", timeout=5)
            if reply.headers.get("content-type") == "application/json":
                break
            assert time.monotonic() < deadline, "healthz never answered"
            time.sleep(0.2)  # the busy answer comes at once; ask again
        assert reply.json()["status"] in ("ok", "failing")
    finally:
        for sock in held:
            sock.close()


_SERVE = textwrap.dedent(
    """
    import resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    from relay._daemon.metrics import MetricsServer, RelayMetrics
    # Idle clients are let go after 1 s, not 5: how long a slot stays held is the business of
    # test_healthz_answers_once_idle_clients_are_gone; here, whether descriptors run out.
    server = MetricsServer(RelayMetrics(), host="127.0.0.1", port=0, timeout_seconds=1.0)
    server.start()
    print(server.port, file=sys.stderr, flush=True)
    sys.stdin.read()
    """
)


def test_healthz_survives_more_idle_clients_than_descriptors() -> None:
    """With 64 descriptors and 100 idle clients connected, /healthz still answers (the old
    server spent a descriptor and a thread per idle client and stopped accepting)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stderr is not None
    held: list[socket.socket] = []
    try:
        port = int(proc.stderr.readline())
        held = _idle(port, 100)
        deadline = time.monotonic() + 3 * PROMPT_SECONDS
        answered = False
        while not answered and time.monotonic() < deadline:
            try:
                reply = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=3)
                answered = reply.headers.get("content-type") == "application/json"
            except httpx.HTTPError:
                pass
            if not answered:
                time.sleep(0.2)
        assert answered, "healthz never answered"
    finally:
        for sock in held:
            sock.close()
        proc.stdin.close()
        proc.wait(timeout=PROMPT_SECONDS)
        proc.stderr.close()
