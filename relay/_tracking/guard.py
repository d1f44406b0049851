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

import contextlib
from collections.abc import Iterator

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


@contextlib.contextmanager
def fire_and_forget(failure_event: str, /, **ids: object) -> Iterator[None]:
    """Log and swallow any exception of the block, unless strict mode must show it.

    ``failure_event`` names the log line (the seed's ``mixpanel_<event>_tracking_failed``);
    ``ids`` are logged with it (an id that looks like an email address or a phone number is
    withheld). In strict mode (tests, CI: see :func:`relay.strict_tracking`) a
    :class:`relay.RelayError` or a ``pydantic.ValidationError`` raised in the block propagates;
    any other exception is always swallowed, as the seed's non-blocking test expects.
    """
    try:
        yield
    except Exception as exc:
        if isinstance(exc, STRICT_ERRORS) and config.is_strict():
            raise
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        logger.error(
            failure_event,
            error_type=type(exc).__name__,
            at=f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else None,
            **{key: _loggable(value) for key, value in ids.items()},
        )
