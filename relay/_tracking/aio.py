"""``atrack()`` and ``atrack_many()``: the same for SQLAlchemy's asyncio API.

``await atrack(session, ...)`` on an ``AsyncSession`` or an ``AsyncConnection`` takes the very
keywords of ``track()`` and has its semantics, because it is ``track()``: run on the session's
sync facade through ``run_sync`` (SQLAlchemy's greenlet bridge, the way its asyncio API runs
everything), so validation, the store's statements and the failure handling are one code
path for both worlds. Strict mode and ``cron_run()`` are read in the calling task and handed
over explicitly, so they hold whatever the bridge does with context variables.

Needs the ``async`` extra (``pip install relay-outbox[async]``: greenlet, asyncpg,
aiosqlite; psycopg's async driver comes with psycopg).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from relay._event.location import Location
from relay._event.properties import MixpanelSuperEventPropertiesSchema
from relay._tracking import config
from relay._tracking.guard import FireAndForget
from relay._tracking.many import TrackItem, track_many
from relay._tracking.profiles import update_group, update_profile
from relay._tracking.sync import report_failure, track

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

_R = TypeVar("_R")


def _in_cron_context(sync: Any, cron_ms: int | None, call: Callable[..., _R], **kwargs: Any) -> _R:
    """``call(sync, **kwargs)`` with the caller's ``cron_run()`` in force, inside the bridge."""
    token = config.set_cron_execution_ms(cron_ms)
    try:
        return call(sync, **kwargs)
    finally:
        config.reset_cron_execution_ms(token)


async def atrack(
    session: AsyncSession | AsyncConnection,
    *,
    event: str,
    distinct_id: str,
    properties: MixpanelSuperEventPropertiesSchema | Mapping[str, Any],
    occurred_at: dt.datetime | None = None,
    insert_id: str | None = None,
    strict: bool | None = None,
    location: Location | None = None,
    independent: bool = False,
) -> str | None:
    """``track()`` on an ``AsyncSession`` or ``AsyncConnection``: same keywords, same result.

    Returns the ``$insert_id`` written, or ``None`` when tracking failed and was logged; in
    strict mode raises as ``track()`` does.
    """
    strict = config.is_strict(strict)
    # The bridge itself failed (track() and the others report, and raise, their own failures).
    with FireAndForget(lambda exc: report_failure(event, exc), strict=strict):
        return await session.run_sync(
            _in_cron_context,
            config.cron_execution_ms(),
            track,
            event=event,
            distinct_id=distinct_id,
            properties=properties,
            occurred_at=occurred_at,
            insert_id=insert_id,
            strict=strict,
            location=location,
            independent=independent,
        )
    return None


async def atrack_many(
    session: AsyncSession | AsyncConnection,
    events: Iterable[TrackItem | Mapping[str, Any]],
    *,
    strict: bool | None = None,
    independent: bool = False,
) -> list[str | None]:
    """``track_many()`` on an ``AsyncSession`` or ``AsyncConnection``: same items, same results."""
    strict = config.is_strict(strict)
    items = list(events)
    # The bridge itself failed (track() and the others report, and raise, their own failures).
    with FireAndForget(lambda exc: report_failure(None, exc), strict=strict):
        return await session.run_sync(
            _in_cron_context,
            config.cron_execution_ms(),
            track_many,
            events=items,
            strict=strict,
            independent=independent,
        )
    return [None] * len(items)


async def aupdate_profile(
    session: AsyncSession | AsyncConnection,
    *,
    distinct_id: str,
    operation: str,
    properties: Mapping[str, Any] | Sequence[str] | None,
    strict: bool | None = None,
) -> str | None:
    """``update_profile()`` on an ``AsyncSession`` or ``AsyncConnection``: same keywords, result."""
    strict = config.is_strict(strict)
    # The bridge itself failed (track() and the others report, and raise, their own failures).
    with FireAndForget(lambda exc: report_failure(None, exc), strict=strict):
        return await session.run_sync(
            lambda sync: update_profile(
                sync,
                distinct_id=distinct_id,
                operation=operation,
                properties=properties,
                strict=strict,
            )
        )
    return None


async def aupdate_group(
    session: AsyncSession | AsyncConnection,
    *,
    group_key: str,
    group_id: str,
    operation: str,
    properties: Mapping[str, Any] | Sequence[str] | None,
    strict: bool | None = None,
) -> str | None:
    """``update_group()`` on an ``AsyncSession`` or ``AsyncConnection``: same keywords, result."""
    strict = config.is_strict(strict)
    # The bridge itself failed (track() and the others report, and raise, their own failures).
    with FireAndForget(lambda exc: report_failure(None, exc), strict=strict):
        return await session.run_sync(
            lambda sync: update_group(
                sync,
                group_key=group_key,
                group_id=group_id,
                operation=operation,
                properties=properties,
                strict=strict,
            )
        )
    return None
