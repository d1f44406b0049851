"""How tracking behaves, set for the process, per block or per call: strict mode and the
cron-run marking of events.

The process-wide part is one typed object, :data:`settings` (a :class:`TrackingConfig`), set by
:func:`configure_tracking`; the per-block parts are context variables, so they follow
``asyncio`` tasks and threads correctly.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from relay._config import RelaySettings
from relay._event.properties import datetime_to_timestamp_ms


@dataclass(slots=True)
class TrackingConfig:
    """The process's tracking defaults: ``RelaySettings.strict_tracking``."""

    strict: bool = False


#: The process's tracking defaults; changed only by :func:`configure_tracking`.
settings = TrackingConfig()

_strict_override: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    "relay_strict_tracking", default=None
)
_cron_execution_ms: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "relay_cron_execution_ms", default=None
)


def configure_tracking(relay_settings: RelaySettings) -> None:
    """Apply the tracking settings (strict mode) for this process.

    Call once at the application's entry point, where ``RelaySettings`` is built.
    """
    settings.strict = relay_settings.strict_tracking


def is_strict(strict: bool | None = None) -> bool:
    """Whether tracking failures raise: per call, else per block, else for the process."""
    if strict is not None:
        return strict
    override = _strict_override.get()
    if override is not None:
        return override
    return settings.strict


def cron_execution_ms() -> int | None:
    """The execution timestamp (ms) of the :func:`cron_run` block around this call, if any."""
    return _cron_execution_ms.get()


def set_cron_execution_ms(value: int | None) -> contextvars.Token[int | None]:
    """Put a :func:`cron_run`'s timestamp in force (for the asyncio bridge); reset by token."""
    return _cron_execution_ms.set(value)


def reset_cron_execution_ms(token: contextvars.Token[int | None]) -> None:
    """Undo :func:`set_cron_execution_ms`."""
    _cron_execution_ms.reset(token)


@contextlib.contextmanager
def strict_tracking(enabled: bool = True) -> Iterator[None]:
    """Within the block, tracking failures raise (or, with ``enabled=False``, are only logged)."""
    token = _strict_override.set(enabled)
    try:
        yield
    finally:
        _strict_override.reset(token)


@contextlib.contextmanager
def cron_run(executed_at: dt.datetime | None = None) -> Iterator[int]:
    """Mark every event tracked within the block as tracked by a cron run.

    Events get ``is_cron_job=True`` and ``cron_execution_timestamp`` (ms) of ``executed_at``
    (default: now); their ``time`` stays the ``occurred_at`` the caller passes, the time of
    the original action. Yields the execution timestamp in ms.
    """
    executed_ms = datetime_to_timestamp_ms(executed_at or dt.datetime.now(dt.UTC))
    token = _cron_execution_ms.set(executed_ms)
    try:
        yield executed_ms
    finally:
        _cron_execution_ms.reset(token)
