"""``fire_and_forget()``: the seed's try/except around a tracking helper, strict where it matters.

The seed wraps every tracking helper in ``try: ... except Exception: logger.exception(...)``,
so that analytics never breaks the business operation, and tests that a failure inside the
helper does not propagate (``patch.object(Helper, "_track_x", side_effect=Exception("boom"))``).
relay's strict mode (on in tests, through the pytest plugin) makes ``track()`` raise on a bad
event, and that bare ``except`` swallows it: the test only sees "expected an event, found none".

``with fire_and_forget("mixpanel_x_tracking_failed", employee_id=...):`` keeps both: any
exception of the block is logged (the name, the error's type and where it was raised, the ids
given; never the exception's message, which may quote personal data) and swallowed, except, in
strict mode, relay's own errors and pydantic's validation errors: those say the event itself is
wrong, and a test must see them.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

import pydantic
import structlog

from relay._errors import RelayError
from relay._event.pii import value_refusal
from relay._tracking import config

logger = structlog.get_logger("relay.tracking")

#: What strict mode lets through: relay's contract and store errors, and pydantic's validation
#: errors (a helper builds its schema instance before calling ``track()``).
STRICT_ERRORS: tuple[type[BaseException], ...] = (RelayError, pydantic.ValidationError)


def _loggable(value: object) -> object:
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)
    refusal = value_refusal(text)
    if refusal is not None:
        return f"[withheld: {refusal}]"
    return text[:200]


def where_raised(exc: BaseException) -> str | None:
    """``file:line`` of the innermost frame ``exc`` went through (its message is never logged)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else None


class FireAndForget:
    """The fire-and-forget policy, written once: catch, log, re-raise when strict.

    A context manager. An exception of the block is passed to ``report`` (which logs it) and
    swallowed, except in strict mode (``strict``, or the mode in force when the block fails:
    :func:`relay.is_strict`) for an instance of ``strict_raises``, which propagates; it is
    reported first when ``report_raised`` (the layer that raises it is the one that logs it),
    else left to whoever catches it. After the block, ``failed`` says whether an exception
    was swallowed. ``BaseException``s that are not ``Exception``s (``KeyboardInterrupt``,
    ``SystemExit``, ...) always propagate.

    :func:`fire_and_forget` is this policy for an application's tracking helper; relay's own
    entry points (``track()``, ``track_many()``, the profile updates, their async and Django
    forms) apply it with their own report, and re-raise every failure in strict mode.
    """

    def __init__(
        self,
        report: Callable[[Exception], object],
        *,
        strict: bool | None = None,
        strict_raises: tuple[type[BaseException], ...] = (Exception,),
        report_raised: bool = False,
    ) -> None:
        self._report = report
        self._strict = strict
        self._strict_raises = strict_raises
        self._report_raised = report_raised
        self.failed = False

    def __enter__(self) -> FireAndForget:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        raising = isinstance(exc, self._strict_raises) and config.is_strict(self._strict)
        if self._report_raised or not raising:
            self._report(exc)
        if raising:
            return False
        self.failed = True
        return True


def fire_and_forget(failure_event: str, /, **ids: object) -> FireAndForget:
    """Log and swallow any exception of the block, unless strict mode must show it.

    ``failure_event`` names the log line (the seed's ``mixpanel_<event>_tracking_failed``);
    ``ids`` are logged with it (an id that looks like an email address or a phone number is
    withheld). In strict mode (tests, CI: see :func:`relay.strict_tracking`) a
    :class:`relay.RelayError` or a ``pydantic.ValidationError`` raised in the block propagates;
    any other exception is always swallowed, as the seed's non-blocking test expects.
    """

    def report(exc: Exception) -> None:
        logger.error(
            failure_event,
            error_type=type(exc).__name__,
            at=where_raised(exc),
            **{key: _loggable(value) for key, value in ids.items()},
        )

    return FireAndForget(report, strict_raises=STRICT_ERRORS)
