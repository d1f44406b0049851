"""Ports for the servers a test starts."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the system picks it).

    Another process may take it before the caller binds it; tests that start a server of
    their own use it where the server cannot be given port 0 and say which port it took.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
