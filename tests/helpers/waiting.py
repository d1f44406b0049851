"""Waiting in real time for something a daemon or a server does on its own threads."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

#: How long a test waits for a daemon's effect before it fails.
WAIT_SECONDS = 30.0

_T = TypeVar("_T")


def wait_for(predicate: Callable[[], _T], what: str, *, seconds: float = WAIT_SECONDS) -> _T:
    """``predicate()``'s first truthy value, polled every 50 ms; the test fails naming ``what``
    when none comes within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)
