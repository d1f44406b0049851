"""Listeners told of every event ``track()`` wrote: the test plugin's event coverage.

Nothing listens in production, and then nothing is paid but one truth test per event.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

#: Called with the event name after each event ``track()`` wrote.
_listeners: list[Callable[[str], None]] = []


@contextlib.contextmanager
def observe_tracked_events(listener: Callable[[str], None]) -> Iterator[None]:
    """Call ``listener(event)`` for every event ``track()`` writes to an outbox, in any thread.

    For test tooling (``relay.testing.plugin``'s event coverage): it runs after the write, in
    the caller's thread, and whatever it raises is swallowed, so tracking never fails for it.
    Whether the caller's transaction later commits does not matter: the event was tracked.
    """
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


def notify_tracked(event: str) -> None:
    """Tell every listener that ``event`` was written (no-op when none listens)."""
    if not _listeners:
        return
    for listener in list(_listeners):
        with contextlib.suppress(Exception):
            listener(event)
