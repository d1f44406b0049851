"""Structured logging for the relay's entry points: structlog to stderr, stdlib routed through it.

One line per event, JSON by default (``RELAY_LOG_FORMAT=console`` for people), with an ISO UTC
timestamp, the level and the logger name. Libraries that log through the standard library
(APScheduler, httpx, SQLAlchemy) come out in the same format. Log events carry IDs and counts,
never payloads or secrets; :func:`drop_sensitive_keys` removes any key that looks like one,
as a second line of defence.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

from relay.config import RelaySettings

#: Keys removed from every log event: they could only carry payloads or credentials.
SENSITIVE_KEYS = frozenset(
    {"authorization", "password", "payload", "properties", "secret", "token", "body"}
)

#: Chatty libraries held at WARNING: APScheduler logs every job run, httpx every request.
_QUIET_LOGGERS = ("apscheduler", "httpx", "httpcore")


def drop_sensitive_keys(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor that deletes keys named in :data:`SENSITIVE_KEYS`."""
    for key in SENSITIVE_KEYS.intersection(event_dict):
        del event_dict[key]
    return event_dict


def _orjson_dumps(value: Any, **_kwargs: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def configure_logging(settings: RelaySettings) -> None:
    """Route structlog and the standard library to stderr at ``settings.log_level``.

    Call once, at an entry point; it replaces the root logger's handlers.
    """
    level = logging.getLevelNamesMapping()[settings.log_level]
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        drop_sensitive_keys,
    ]
    renderer: structlog.typing.Processor
    if settings.log_format == "json":
        renderer = structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        final: list[structlog.typing.Processor] = [structlog.processors.dict_tracebacks]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        final = []

    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *final,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
