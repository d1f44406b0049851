"""Removing, after a test, the outbox rows ``independent=True`` committed during it.

Such rows commit on a connection of their own, so neither a Django ``TestCase``'s rollback nor a
rolled-back test session takes them away; the next test would find them. Used by the pytest
plugin (``relay_independent_cleanup``) and by
:class:`relay.contrib.django.testing.RelayTestMixin` (Django's own test runner).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy.engine import Engine

from relay._tables import outbox
from relay._tracking.observers import observe_independent_writes


@contextlib.contextmanager
def independent_rows_removed() -> Iterator[None]:
    """Delete, when the block exits, the rows ``independent=True`` committed inside it.

    Best effort: an engine whose database is gone already (a dropped scratch database) is
    skipped. Only those rows are deleted (by ``$insert_id``), so rows of still-open
    transactions are never waited for.
    """
    written: list[tuple[Engine, list[str]]] = []
    with observe_independent_writes(lambda engine, ids: written.append((engine, list(ids)))):
        yield
    for engine, ids in written:
        with contextlib.suppress(Exception), engine.begin() as conn:
            conn.execute(outbox.delete().where(outbox.c.insert_id.in_(ids)))
