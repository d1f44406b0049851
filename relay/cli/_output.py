"""Printing text the CLI did not write itself: stored rows, Mixpanel's answers, driver errors.

Such text (``last_error`` from a response body, a dead-letter reason, an audit detail, an auth
error) goes through :func:`relay._escape.safe_text` or :func:`dumps` before it is printed.
"""

from __future__ import annotations

import orjson

from relay._escape import safe_json, safe_text

__all__ = ["dumps", "safe_json", "safe_text"]


def dumps(value: object, *, indent: bool = False) -> str:
    """``value`` as JSON safe for a terminal (see :func:`safe_json`)."""
    option = orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
    return safe_json(orjson.dumps(value, option=option))
