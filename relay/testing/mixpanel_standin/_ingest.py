"""``/import``: a decoded body in, Mixpanel's answer and the records to store out.

Pure functions: the per-record verdicts are ``_rules``'s, and the stand-in supplies the clock,
the project's token, its limits and the faults' refused ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.testing.mixpanel_standin import _rules as rules
from relay.testing.mixpanel_standin._ledger import Stored
from relay.testing.mixpanel_standin._rules import Failure
from relay.testing.mixpanel_standin._wire import (
    ERROR_UNAUTHORIZED,
    Body,
    Note,
    Reply,
    json_reply,
    mixpanel_error,
)

_ERROR_PARTIAL = "some data points in the request failed validation"

Failures = list[tuple[int, Failure]]


def validate(
    decoded: Body,
    *,
    track: bool,
    now_ms: int,
    token: str,
    refused: Mapping[str, Failure],
) -> tuple[list[Stored], Failures]:
    """Split records into (dedup key, record) pairs to store and (index, failure) pairs.

    The rules are ``_rules``'s; a record whose time Mixpanel overwrites is stored as Mixpanel
    stores it, with the ingestion time, and keyed by it. ``refused`` maps ``$insert_id`` values
    refused by fault injection to their failure. Sets ``decoded.rejected`` and ``notes``.
    """
    records = decoded.records or []
    stored: list[Stored] = []
    failures: Failures = []
    dropped = 0
    # The fast path assumes valid UTF-8 (only the body can tell) and no event of 1MB or more:
    # true of every record of a smaller body; in a larger one (a full 2,000-event batch) each
    # record the fast path takes has its size checked, which costs far less than judge().
    fast = not track and decoded.strict_utf8
    sized = decoded.size >= rules.MAX_EVENT_BYTES
    request_ip_used = decoded.request_ip_used or not track
    fast_key = rules.fast_import_key
    notes = decoded.notes
    for index, record in enumerate(records):
        key = fast_key(record, now_ms=now_ms) if fast else None
        if key is not None and sized and rules.event_size_failure(record) is not None:
            key = None
        note: Note | None = None
        if key is None:
            verdict = rules.judge(record, now_ms=now_ms, track=track, token=token)
            if verdict is None:  # /track's silent drop of old events
                dropped += 1
                continue
            if isinstance(verdict, Failure):
                failures.append((index, verdict))
                continue
            key = verdict.key
            note = Note(sent_time_ms=verdict.time.sent_ms, request_ip_used=request_ip_used)
        if refused and (failure := refused.get(key[3])) is not None:
            failures.append((index, failure))
            continue
        if note is not None:
            notes[len(stored)] = note
            if note.sent_time_ms != key[2]:  # Mixpanel stores its ingestion time instead
                record = with_time(record, key[2])  # noqa: PLW2901 - the stored copy
        stored.append((key, record))
    decoded.rejected = len(failures) + dropped
    return stored, failures


def import_refusal(
    query: Mapping[str, str], decoded: Body, *, authorized: bool, max_events: int
) -> Reply | None:
    """The whole-request answer when ``/import`` refuses a request before any record."""
    if not authorized:
        return mixpanel_error(401, ERROR_UNAUTHORIZED)
    if query.get("strict") not in ("0", "1"):
        return mixpanel_error(400, "query parameter 'strict' must be '0' or '1'")
    if decoded.error is not None:
        return decoded.error
    count = len(decoded.records or [])
    if not count:
        return mixpanel_error(400, "request body must contain at least one event")
    if count > max_events:
        return mixpanel_error(
            400, f"request contains {count} events, more than the limit of {max_events}"
        )
    return None


def import_answer(
    query: Mapping[str, str], decoded: Body, stored: list[Stored], failures: Failures
) -> Reply:
    """``/import``'s answer once its records were judged: 200, or strict mode's partial 400."""
    if query["strict"] == "0" or not failures:
        return json_reply(200, {"code": 200, "num_records_imported": len(stored), "status": "OK"})
    records = decoded.records or []
    failed_records = [
        {
            "index": index,
            "insert_id": reportable(insert_id_of(records[index])),
            "field": failure.field,
            "message": failure.message,
        }
        for index, failure in failures
    ]
    return json_reply(
        400,
        {
            "code": 400,
            "error": _ERROR_PARTIAL,
            "num_records_imported": len(stored),
            "status": "Bad Request",
            "failed_records": failed_records,
        },
    )


def with_time(record: dict[str, Any], time_ms: int) -> dict[str, Any]:
    """A copy of ``record`` carrying ``time_ms``, as Mixpanel stores an overwritten future time."""
    return {**record, "properties": {**record["properties"], "time": time_ms}}


def insert_ids(records: list[Any]) -> tuple[str, ...]:
    """The string ``$insert_id`` values of the records that carry one, in order."""
    try:
        found = tuple([record["properties"]["$insert_id"] for record in records])
        if set(map(type, found)) <= {str}:
            return found
    except (KeyError, TypeError, IndexError):
        pass  # some record is malformed: take the careful path
    return tuple(insert_id for record in records if (insert_id := insert_id_of(record)))


def reportable(text: str) -> str:
    """``text`` if it can go into a JSON answer; a lone surrogate (invalid UTF-8) cannot."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return ""
    return text


def insert_id_of(record: Any) -> str:
    """A record's string ``$insert_id``, or ``""``."""
    if isinstance(record, dict):
        properties = record.get("properties")
        if isinstance(properties, dict):
            insert_id = properties.get("$insert_id")
            if isinstance(insert_id, str):
                return insert_id
    return ""
