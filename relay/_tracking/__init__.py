"""Tracking: validate an event and write it to the outbox in the caller's own transaction.

``config`` (strict mode, cron runs), ``prepare`` (validation into the stored
row, no database), ``sync`` (``track()`` on a ``Session`` or ``Connection``), ``many``
(``track_many()``), ``aio`` (``atrack()``/``atrack_many()`` on SQLAlchemy's asyncio API),
``observers`` (who is told what was tracked).
"""

from relay._tracking.aio import atrack, atrack_many
from relay._tracking.config import (
    TrackingConfig,
    configure_tracking,
    cron_run,
    is_strict,
    strict_tracking,
)
from relay._tracking.many import TrackItem, track_many
from relay._tracking.observers import observe_tracked_events
from relay._tracking.prepare import PreparedEvent, new_insert_id, prepare_event
from relay._tracking.sync import track

__all__ = [
    "PreparedEvent",
    "TrackItem",
    "TrackingConfig",
    "atrack",
    "atrack_many",
    "configure_tracking",
    "cron_run",
    "is_strict",
    "new_insert_id",
    "observe_tracked_events",
    "prepare_event",
    "strict_tracking",
    "track",
    "track_many",
]
