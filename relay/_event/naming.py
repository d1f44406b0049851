"""The event-name rule: ``{prefix}.{object}.{action}[.error]``.

Segments are lowercase snake_case joined by dots; at least three segments before an optional
trailing ``.error``; no segment may mention ``cron``: cron runs are marked by the
``is_cron_job`` property, so the same action tracked by a user or by a job is one event.
"""

from __future__ import annotations

import re

from relay._errors import EventNameError

MIN_SEGMENTS = 3
MAX_EVENT_NAME_LENGTH = 255
ERROR_SUFFIX = "error"

_SEGMENT = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")  # fullmatch: "$" would allow "\n"


def check_event_name(name: str) -> str:
    """Return ``name`` unchanged if it follows the naming rule, else raise ``EventNameError``."""
    if not isinstance(name, str) or not name:
        raise EventNameError("event name must be a non-empty string")
    if len(name) > MAX_EVENT_NAME_LENGTH:
        raise EventNameError(
            f"event name is {len(name)} characters; at most {MAX_EVENT_NAME_LENGTH}", event=name
        )
    segments = name.split(".")
    for segment in segments:
        if not _SEGMENT.fullmatch(segment):
            raise EventNameError(
                f"segment {segment!r} is not lowercase snake_case "
                "(expected {prefix}.{object}.{action}[.error])",
                event=name,
            )
        if any(word.startswith("cron") for word in segment.split("_")):
            raise EventNameError(
                f"segment {segment!r} mentions cron; mark cron runs with is_cron_job instead",
                event=name,
            )
    core = segments[:-1] if segments[-1] == ERROR_SUFFIX else segments
    if len(core) < MIN_SEGMENTS:
        raise EventNameError(
            f"needs at least {MIN_SEGMENTS} segments ({{prefix}}.{{object}}.{{action}}), "
            f"got {len(core)}",
            event=name,
        )
    return name
