"""Keeping one test's logging configuration out of the next."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import structlog


def plain_structlog_defaults() -> None:
    """structlog's default configuration, but exceptions rendered as plain tracebacks.

    The default renderer formats an exception with rich when it is installed: highlighted
    source and every local of every frame, 3 to 10 seconds for a SQLAlchemy traceback, in
    each test where a helper logs a failure. relay's own console format is plain
    (``relay/_logging.py``), and so is the test suite's.
    """
    structlog.reset_defaults()
    processors = [
        processor
        for processor in structlog.get_config()["processors"]
        if not isinstance(processor, structlog.dev.ConsoleRenderer)
    ]
    renderer = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    structlog.configure(processors=[*processors, renderer])


@contextmanager
def logging_restored() -> Iterator[None]:
    """Undo, on the way out, the logging configuration a command set for the process."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    saved = structlog.get_config()
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.configure(**saved)
