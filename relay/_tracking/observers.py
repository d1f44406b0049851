"""Listeners told of every event ``track()`` wrote (the test plugin's event coverage), and of the
rows ``independent=True`` committed on their own (the test plugin deletes them after the test).

Nothing listens in production, and then nothing is paid but one truth test per event.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

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


#: Called with (engine, insert ids) after each independent write committed.
_independent_listeners: list[Callable[[Engine, list[str]], None]] = []


@contextlib.contextmanager
def observe_independent_writes(listener: Callable[[Engine, list[str]], None]) -> Iterator[None]:
    """Call ``listener(engine, insert_ids)`` after each ``independent=True`` write committed.

    For test tooling: such rows commit on a connection of their own, so a test's rollback does
    not take them away; ``relay.testing.plugin`` deletes them after the test. Runs in the
    caller's thread; whatever it raises is swallowed.
    """
    _independent_listeners.append(listener)
    try:
        yield
    finally:
        _independent_listeners.remove(listener)


def notify_independent(engine: Engine, insert_ids: list[str]) -> None:
    """Tell every listener which rows an independent write committed through ``engine``."""
    if not _independent_listeners or not insert_ids:
        return
    for listener in list(_independent_listeners):
        with contextlib.suppress(Exception):
            listener(engine, insert_ids)
