"""Reading Mixpanel's answer to one ``/import`` request into per-row outcomes.

Mixpanel's documented answers (200 with its acknowledgement, 400 with or without
``failed_records``, 413, 429, 5xx) and everything else a server or a proxy might send map onto
one bucket per row: delivered, rejected (never retried), retry (the whole request failed
transiently) or unsent (credentials or URL are wrong: nothing more is sent). Whatever is
ambiguous is retried, never delivered or refused on a guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import structlog

from relay._escape import clip
from relay._mixpanel.encoding import EncodedBatch
from relay._tables import OutboxEvent

logger = structlog.get_logger("relay.mixpanel_client")

#: Reasons and error texts are cut to this length (Mixpanel's messages can be long).
REASON_MAX_CHARS = 500
#: /import never legitimately answers these: wrong credentials, role, host or URL.
AUTH_STATUSES = frozenset({401, 403, 404})
#: Mixpanel's answers are a few hundred bytes (a 400 names at most 2000 failed records); a
#: longer body is not its answer, and reading it would let any server fill the relay's memory.
RESPONSE_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class RequestStat:
    """One HTTP attempt: ``status`` is ``None`` for a transport error or timeout.

    ``body_bytes`` is the uncompressed JSON body, the size Mixpanel's limit applies to.
    """

    status: int | None
    seconds: float
    events: int
    body_bytes: int


@dataclass(slots=True)
class SendOutcome:
    """Per-row result of ``MixpanelImportClient.send``; every input id is in exactly one bucket.

    ``rejected`` reasons and ``retry`` error texts name fields and Mixpanel's message, never a
    property value or a credential. ``throttled`` rows were in a request Mixpanel answered 429
    (the project's rate limit): nothing is wrong with them, the relay must slow down.
    """

    delivered: list[int]
    rejected: dict[int, str]
    retry: dict[int, str]
    unsent: list[int]
    auth_error: str | None
    requests: list[RequestStat]
    throttled: list[int] = field(default_factory=list)


def truncate(text: str) -> str:
    return clip(text, REASON_MAX_CHARS, marker="...")


def json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, ``None`` if it is anything else (a proxy page, truncated)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def error_text(status: int, payload: dict[str, Any] | None) -> str:
    """``HTTP <status>: <Mixpanel's error field>``; a non-JSON body (a proxy page) is left out."""
    error = None if payload is None else payload.get("error")
    if isinstance(error, str) and error:
        return truncate(f"HTTP {status}: {error}")
    return f"HTTP {status}"


def not_an_acknowledgement(body: bytes, batch_size: int) -> str | None:
    """Why a 200's body is not Mixpanel's answer for this batch, ``None`` if it is.

    The answer is identified strictly (a JSON object with ``"code": 200`` and ``"status": "OK"``)
    and checked against the batch (``num_records_imported``, when present, is its size); other
    keys are ignored. The reason never quotes the body.
    """
    if not body.strip():
        return "HTTP 200 with an empty body, not Mixpanel's answer"
    payload = json_object(body)
    if payload is None:
        return "HTTP 200 with a body that is not a JSON object, not Mixpanel's answer"
    code = payload.get("code")
    if not (_is_int(code) and code == 200) or payload.get("status") != "OK":
        return 'HTTP 200 without "code": 200 and "status": "OK", not Mixpanel\'s answer'
    imported = payload.get("num_records_imported", batch_size)
    if not (_is_int(imported) and imported == batch_size):
        return "HTTP 200 whose num_records_imported is not the batch size"
    return None


def url_hint(names: Mapping[str, str]) -> str:
    """The settings that decide where ingestion requests go, from
    :meth:`relay._config.RelaySettings.setting_names`: what a redirect says to check."""
    return f"{names['api_url']} / {names['region']}"


def redirect_text(status: int, response: httpx.Response, *, hint: str) -> str:
    """Name a redirect and its target without the target's query string or credentials;
    ``hint`` names the settings to check (:func:`url_hint`: the destination's own)."""
    location = response.headers.get("location")
    target = "no Location"
    if location:
        try:
            url = response.request.url.join(location)
            target = str(url.copy_with(query=None, fragment=None, userinfo=b""))
        except (httpx.InvalidURL, ValueError, TypeError):
            target = "an invalid Location"
    return truncate(
        f"HTTP {status}: redirected to {target}; relay does not follow redirects, check {hint}"
    )


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back for one request: a status and a body read within the cap, or an error.

    ``error`` set means no usable answer (transport error, timeout, deadline, body over the
    cap); ``cancelled`` means the request was cut short because the relay is stopping.
    """

    status: int | None
    body: bytes
    response: httpx.Response | None
    error: str | None
    cancelled: bool = False


def file_answer(
    batch: EncodedBatch,
    status: int,
    answer: Answer,
    outcome: SendOutcome,
    stack: list[EncodedBatch],
    *,
    hint: str,
) -> bool:
    """File the rows of a batch Mixpanel (or something) answered; ``True`` stops sending.

    ``hint`` names the settings a redirect says to check (:func:`url_hint`); an endpoint binds
    its destination's (``functools.partial``).
    """
    ids = [event.id for event in batch.events]
    if status == 200:
        problem = not_an_acknowledgement(answer.body, len(ids))
        if problem is None:
            outcome.delivered.extend(ids)
        else:
            # Whoever answered (a proxy, a captive portal, a cut connection), it was not
            # Mixpanel saying it ingested these rows: delivering them could lose them.
            logger.warning(
                "mixpanel_import_unacknowledged", status=200, batch_size=len(ids), error=problem
            )
            outcome.retry.update(dict.fromkeys(ids, problem))
        return False
    if 300 <= status < 400 and answer.response is not None:
        outcome.auth_error = redirect_text(status, answer.response, hint=hint)
        logger.error(
            "mixpanel_import_redirected",
            status=status,
            batch_size=len(ids),
            error=outcome.auth_error,
        )
        outcome.unsent.extend(ids)
        return True
    payload = json_object(answer.body)
    if status == 400:
        apply_failed_records(batch, payload, outcome)
    elif status == 413 and len(ids) > 1:
        logger.info("mixpanel_import_batch_split", status=status, batch_size=len(ids))
        first, second = batch.halves()
        stack.append(second)
        stack.append(first)
    elif status == 413:
        reason = error_text(status, payload)
        logger.warning("mixpanel_import_event_too_large", status=status, batch_size=1)
        outcome.rejected[ids[0]] = reason
    elif status == 429:
        # The project's rate limit: the rows are fine; the rest of the send waits (unsent).
        logger.info("mixpanel_import_throttled", status=status, batch_size=len(ids))
        outcome.throttled.extend(ids)
        return True
    elif status in AUTH_STATUSES:
        outcome.auth_error = error_text(status, payload)
        logger.error(
            "mixpanel_import_unauthorized",
            status=status,
            batch_size=len(ids),
            error=outcome.auth_error,
        )
        outcome.unsent.extend(ids)
        return True
    else:
        # 5xx by Mixpanel's guidance; anything else unexpected is retried too,
        # since rows marked dead on a misread answer could never be recovered by backoff.
        error = error_text(status, payload)
        logger.warning("mixpanel_import_failed", status=status, batch_size=len(ids), error=error)
        outcome.retry.update(dict.fromkeys(ids, error))
    return False


def apply_failed_records(
    batch: EncodedBatch, payload: dict[str, Any] | None, outcome: SendOutcome
) -> None:
    """400: the records named in ``failed_records`` are refused, the others were ingested.

    A 400 whose body is neither Mixpanel's JSON error nor names ``failed_records`` is retried
    (a proxy's page says nothing about the rows). Without ``failed_records`` the whole request
    was refused: every row is dead with Mixpanel's error. With them, each must name one row
    of this batch (see :func:`match_failed_records`); when they do not add up, nothing is
    delivered or refused on a guess: the whole batch is retried.
    """
    events = batch.events
    ids = [event.id for event in events]
    failed = None if payload is None else payload.get("failed_records")
    # The spec's own StrictInvalid example carries no ``error`` (optional in its schema): a
    # JSON object naming ``failed_records`` is Mixpanel's per-record answer with or without it.
    if payload is None or (failed is None and not isinstance(payload.get("error"), str)):
        error = "HTTP 400 without Mixpanel's JSON error, not Mixpanel's answer"
        logger.warning("mixpanel_import_failed", status=400, batch_size=len(ids), error=error)
        outcome.retry.update(dict.fromkeys(ids, error))
        return
    whole_error = error_text(400, payload)
    if failed is None:
        for event in events:
            outcome.rejected[event.id] = whole_error
        logger.warning(
            "mixpanel_import_rejected", status=400, batch_size=len(ids), error=whole_error
        )
        return
    reasons, problem = match_failed_records(events, failed, payload)
    if problem is not None:
        error = truncate(f"HTTP 400: answer inconsistent with the batch: {problem}")
        logger.warning("mixpanel_import_failed", status=400, batch_size=len(ids), error=error)
        outcome.retry.update(dict.fromkeys(ids, error))
        return
    for position, event in enumerate(events):
        reason = reasons.get(position)
        if reason is None:
            outcome.delivered.append(event.id)
        else:
            outcome.rejected[event.id] = reason
    logger.warning(
        "mixpanel_import_records_rejected",
        status=400,
        batch_size=len(events),
        rejected=len(reasons),
    )


def match_failed_records(
    events: Sequence[OutboxEvent], failed: object, payload: dict[str, Any]
) -> tuple[dict[int, str], str | None]:
    """Batch positions refused by ``failed_records`` with their reasons, or why they don't add up.

    A record naming an ``$insert_id`` (or ``insert_id``) is matched by it, even when its
    ``index`` points elsewhere: the id is the row's identity, an index is only a position.
    Only a record without an id is matched by ``index``. The answer is inconsistent, and the
    second element says how, when: ``failed_records`` is not a non-empty list of objects; a
    record names an id not in the batch, or an unusable index; two records name the same row;
    or ``num_records_imported`` (when present) is not the batch size minus the refused rows.
    """
    if not isinstance(failed, list) or not failed:
        return {}, "failed_records is not a non-empty list"
    positions: dict[str, int] = {}
    duplicated: set[str] = set()
    for row, event in enumerate(events):
        if event.insert_id in positions:
            duplicated.add(event.insert_id)
        positions[event.insert_id] = row
    reasons: dict[int, str] = {}
    disagreeing = 0
    for record in failed:
        position, problem = _failed_position(record, positions, duplicated, len(events))
        if position is None:
            return {}, problem
        if position in reasons:
            return {}, "two failed records name the same row"
        disagreeing += problem is not None
        reasons[position] = _failed_reason(record)
    imported = payload.get("num_records_imported")
    if imported is not None and not (_is_int(imported) and imported == len(events) - len(reasons)):
        return {}, "num_records_imported plus failed_records is not the batch size"
    if disagreeing:
        logger.warning("mixpanel_failed_records_index_disagrees", records=disagreeing)
    return reasons, None


def _failed_position(
    record: object, positions: dict[str, int], duplicated: set[str], batch_size: int
) -> tuple[int | None, str | None]:
    """The batch position one failed record names, else ``None`` and why not.

    A position comes with a note when the record's index disagrees with its ``$insert_id``.
    """
    if not isinstance(record, dict):
        return None, "a failed record is not an object"
    insert_id = record.get("$insert_id", record.get("insert_id"))
    index = _failed_index(record, batch_size)
    if insert_id is None:
        if index is None:
            return None, "a failed record names neither an $insert_id nor a usable index"
        return index, None
    if not isinstance(insert_id, str) or insert_id not in positions:
        return None, "a failed record names an $insert_id not in the batch"
    if insert_id in duplicated:
        return None, "a failed record names an $insert_id the batch holds twice"
    position = positions[insert_id]
    return position, None if index is None or index == position else "index disagrees"


def _failed_index(record: dict[str, Any], batch_size: int) -> int | None:
    index = record.get("index")
    if isinstance(index, float) and index.is_integer():
        index = int(index)
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < batch_size:
        return index
    return None


def _failed_reason(record: dict[str, Any]) -> str:
    field = record.get("field")
    message = record.get("message")
    field_text = field if isinstance(field, str) and field else "record"
    message_text = message if isinstance(message, str) and message else "failed validation"
    return truncate(f"{field_text}: {message_text}")
