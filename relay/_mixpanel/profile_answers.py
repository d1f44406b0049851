"""Reading Mixpanel's answer to one ``/engage`` or ``/groups`` request into per-row outcomes.

The ingestion spec documents one 200 answer for every ``/engage#*`` and ``/groups#*``
operation, ``components.responses.Received``: ``text/plain`` ``1`` ("one or more objects
provided are valid") or ``0`` ("no data objects in the body are valid"), and with
``verbose=1`` the JSON object ``{"status": 1|0, "error": <string or null>}``. Both forms are
accepted whatever the request asked for (a proxy or an older Mixpanel may pick either).

relay asks for ``strict=1`` and not ``verbose=1``. ``strict=1`` is documented, for these
endpoints in the same words as for ``/import``, to "return a JSON object with per-record error
messages for records that fail validation": the only per-record object the spec defines is
``/import``'s ``StrictInvalid`` (400, ``failed_records`` by ``index``), so that is how a
partly valid request is read, each named update dead-lettered alone and the rest delivered.
``verbose=1`` would add one error string for the whole request, which says nothing about which
update failed, so relay leaves it to the default text answer.

A ``0`` (or ``{"status": 0}``) is a refusal, never a retry: the request is split in halves the
way a 413 is, until each refused update is alone in a request answering ``0`` and is
dead-lettered; the others are delivered. Anything else on a 200 (the ``/import`` shape, an HTML
page, an empty body) is not a documented answer of these endpoints: retried, never delivered.
Statuses other than 200 and 400 read as for ``/import`` (401/403 stop sending, 413 splits,
429/5xx retry).
"""

from __future__ import annotations

from typing import Any

import structlog

from relay._mixpanel.answers import (
    Answer,
    SendOutcome,
    apply_failed_records,
    file_answer,
    json_object,
    truncate,
)
from relay._mixpanel.encoding import EncodedBatch

logger = structlog.get_logger("relay.mixpanel_client")

#: Why a 200 that is not ``Received`` is retried (the reason never quotes the body).
NOT_RECEIVED = (
    'HTTP 200 whose body is not Mixpanel\'s answer (1, 0 or {"status": 1|0, "error": ...})'
)


def read_received(body: bytes) -> tuple[bool | None, str | None]:
    """``(True, None)`` for ``1``, ``(False, error)`` for ``0``, ``(None, None)`` for neither.

    ``error`` is the verbose answer's error string (``None`` in the text form).
    """
    text = body.strip()
    if text == b"1":
        return True, None
    if text == b"0":
        return False, None
    payload = json_object(body)
    if payload is None:
        return None, None
    status: Any = payload.get("status")
    error: Any = payload.get("error")
    if isinstance(status, bool) or status not in (0, 1) or "error" not in payload:
        return None, None
    if error is not None and not isinstance(error, str):
        return None, None
    return status == 1, error


def file_profile_answer(
    batch: EncodedBatch,
    status: int,
    answer: Answer,
    outcome: SendOutcome,
    stack: list[EncodedBatch],
    *,
    hint: str,
) -> bool:
    """File the rows of one profile request; ``True`` stops sending (as ``file_answer``, whose
    ``hint`` a redirect names)."""
    ids = [event.id for event in batch.events]
    if status == 200:
        valid, error = read_received(answer.body)
        if valid is True:
            outcome.delivered.extend(ids)
        elif valid is None:
            logger.warning(
                "mixpanel_profiles_unacknowledged",
                status=200,
                batch_size=len(ids),
                error=NOT_RECEIVED,
            )
            outcome.retry.update(dict.fromkeys(ids, NOT_RECEIVED))
        elif len(ids) > 1:
            logger.info("mixpanel_profiles_refused_split", batch_size=len(ids))
            first, second = batch.halves()
            stack.append(second)
            stack.append(first)
        else:
            reason = "HTTP 200: Mixpanel answered 0, the update is not valid"
            outcome.rejected[ids[0]] = truncate(f"{reason}: {error}") if error else reason
            logger.warning("mixpanel_profile_refused", status=200, batch_size=1)
        return False
    if status == 400:
        payload = json_object(answer.body)
        if payload is not None and "failed_records" in payload:
            apply_failed_records(batch, payload, outcome)
        else:
            # No documented 400 of these endpoints refuses a request as a whole.
            error = "HTTP 400 without failed_records, not a documented /engage or /groups answer"
            logger.warning("mixpanel_profiles_failed", status=400, batch_size=len(ids), error=error)
            outcome.retry.update(dict.fromkeys(ids, error))
        return False
    return file_answer(batch, status, answer, outcome, stack, hint=hint)
