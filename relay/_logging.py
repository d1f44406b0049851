"""Structured logging for the relay's entry points: structlog to stderr, stdlib routed through it.

One line per event, for people on a terminal and JSON otherwise (``RELAY_LOG_FORMAT=auto``, the
default; ``json`` or ``console`` to choose: structlog's own renderers), with an ISO UTC
timestamp, the level and the logger name. Libraries that log through the standard library
(APScheduler, httpx, SQLAlchemy) come out in the same format. Log events carry IDs and counts,
never payloads or secrets; :func:`drop_sensitive_keys` removes any key that looks like one,
as a second line of defence.

Tracebacks never show local variables (in JSON or console format, from structlog or the
standard library): a frame's locals hold connection strings, settings and payloads. As a last
line of defence every rendered line is scrubbed of the secrets the settings hold (the database
password in any spelling, the Mixpanel secret and token), so not even a driver's exception
message that quotes its connection string can print one.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog
from structlog.tracebacks import ExceptionDictTransformer

from relay._config import RelaySettings
from relay._database import scrub
from relay._escape import safe_json, safe_text

#: Keys removed from every log event: they could only carry payloads or credentials.
SENSITIVE_KEYS = frozenset(
    {"authorization", "password", "payload", "properties", "secret", "token", "body"}
)

#: Chatty libraries held at WARNING: APScheduler logs every job run, httpx every request,
#: Alembic each of its plugins as it loads them (seven lines per migrate, drain or replay).
_QUIET_LOGGERS = ("apscheduler", "httpx", "httpcore", "alembic.runtime.plugins")


def log_format(settings: RelaySettings, *, stream: Any = None) -> str:
    """``json`` or ``console``: ``auto`` is console when ``stream`` (stderr) is a terminal."""
    if settings.log_format != "auto":
        return settings.log_format
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return "console" if callable(isatty) and isatty() else "json"


def drop_sensitive_keys(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor that deletes keys named in :data:`SENSITIVE_KEYS`."""
    for key in SENSITIVE_KEYS.intersection(event_dict):
        del event_dict[key]
    return event_dict


def _orjson_dumps(value: Any, **_kwargs: Any) -> str:
    return orjson.dumps(value, default=str).decode()


class _Scrubbed:
    """A final renderer: the wrapped one's line with every secret replaced by ``***`` and, for
    JSON, the characters JSON leaves raw but a terminal acts on escaped."""

    def __init__(self, renderer: Any, secrets: frozenset[str], *, json: bool) -> None:
        self._renderer = renderer
        self._secrets = secrets
        self._json = json

    def __call__(self, logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
        line = self._renderer(logger, method, event_dict)
        text = line.decode() if isinstance(line, bytes) else str(line)
        text = scrub(text, self._secrets)
        return safe_json(text) if self._json else text


#: Keys the console renderer lays out over several lines on purpose.
_MULTILINE_KEYS = frozenset({"exception", "exc_info", "stack"})


def escape_values(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A processor for console output: control characters in string values are escaped, so a
    remote answer logged as a value cannot forge a line or colour the terminal."""
    for key, value in event_dict.items():
        if isinstance(value, str) and key not in _MULTILINE_KEYS:
            event_dict[key] = safe_text(value)
    return event_dict


def json_exception_renderer() -> structlog.typing.Processor:
    """``exc_info`` as structured frames without local variables (structlog shows them by
    default, and a frame's locals hold connection strings and settings)."""
    return structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))


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
    fmt = log_format(settings)
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        final: list[structlog.typing.Processor] = [json_exception_renderer()]
    else:
        # plain_traceback is the standard library's format: no locals, no rich/better_exceptions
        # (which would show them if installed).
        renderer = structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
        final = [escape_values]

    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Not cached: relay's module loggers follow whatever configuration is current, so a
        # host (or a test) that configures structlog after a relay command ran in-process is
        # not stuck with relay's. Loggers are resolved only when a line is logged.
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *final,
            _Scrubbed(renderer, settings.secret_values(), json=fmt == "json"),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
