"""``/engage`` and ``/groups``: profile updates applied to the profiles the stand-in keeps.

Bodies are a JSON array of updates (``application/json``) or the spec's form encoding
(``data=<JSON object or array>``), gzip allowed; at most ``MAX_UPDATES`` per request. Each
update is judged and applied alone, in order (``_profile_rules``). Answers follow the spec's
``Received``: ``1`` (text/plain) when at least one update was valid, else ``0``; with
``verbose=1`` (or the stand-in's ``verbose_answers`` switch) ``{"status": 1|0, "error"}``.
Under ``strict=1`` a request with refused updates gets the per-record answer instead (400,
``failed_records``), unless ``per_record_errors`` is off.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import parse_qs

import orjson

from relay.testing.mixpanel_standin import _profile_rules as rules
from relay.testing.mixpanel_standin._rules import Failure
from relay.testing.mixpanel_standin._wire import (
    Reply,
    content_type_of,
    inflate,
    json_reply,
    mixpanel_error,
)

PATHS = frozenset({"/engage", "/groups"})
_ERROR_PARTIAL = "some data points in the request failed validation"


@dataclass(frozen=True, slots=True)
class ProfileRequest:
    """One ``/engage`` or ``/groups`` request: path, answer status, updates applied and refused."""

    path: str
    status: int
    applied: int
    refused: int


class ProfileStore:
    """User and group profiles built from the updates received, and the requests' log."""

    def __init__(
        self,
        lock: threading.Lock,
        *,
        token: str,
        max_bytes: int,
        verbose_answers: bool = False,
        per_record_errors: bool = True,
    ) -> None:
        self._lock = lock
        self._token = token
        self._max_bytes = max_bytes
        self.verbose_answers = verbose_answers
        self.per_record_errors = per_record_errors
        self.clear()

    def clear(self) -> None:
        """Forget every profile and request; the caller holds the lock (or owns the store)."""
        self._profiles: dict[rules.ProfileKey, dict[str, Any]] = {}
        self._requests: list[ProfileRequest] = []
        self._refused: set[str] = set()

    def refuse(self, identities: list[str]) -> None:
        """Refuse every update of these ``$distinct_id`` / ``$group_id`` values from now on."""
        with self._lock:
            self._refused.update(identities)

    def profiles(self) -> dict[rules.ProfileKey, dict[str, Any]]:
        """Every profile by key (``("user", "", distinct_id)`` or ``("group", key, id)``)."""
        with self._lock:
            return {key: dict(value) for key, value in self._profiles.items()}

    def requests(self) -> list[ProfileRequest]:
        """Every profile request answered so far."""
        with self._lock:
            return list(self._requests)

    def delete_users(self, distinct_ids: list[str]) -> int:
        """Drop the user profiles of ``distinct_ids`` (a GDPR deletion); how many there were."""
        with self._lock:
            found = [("user", "", d) for d in distinct_ids if ("user", "", d) in self._profiles]
            for key in found:
                del self._profiles[key]
        return len(found)

    def to_json(self) -> list[dict[str, Any]]:
        """The profiles as ``GET /_standin/profiles`` lists them, sorted by key."""
        listed = []
        for (kind, group_key, identity), properties in sorted(self.profiles().items()):
            if kind == "user":
                listed.append({"type": "user", "distinct_id": identity, "properties": properties})
            else:
                listed.append(
                    {
                        "type": "group",
                        "group_key": group_key,
                        "group_id": identity,
                        "properties": properties,
                    }
                )
        return listed

    def handle(self, path: str, query: dict[str, str], headers: Message, body: bytes) -> Reply:
        """The answer to one ``POST /engage`` or ``POST /groups``; updates applied in order."""
        records = self._records(headers, body, query)
        if isinstance(records, Reply):
            self._log(path, records.status, 0, 0)
            return records
        failures: list[tuple[int, Failure]] = []
        applied = 0
        with self._lock:
            for index, record in enumerate(records):
                update = rules.judge_update(record, token=self._token, group=path == "/groups")
                if not isinstance(update, Failure) and update.key[2] in self._refused:
                    update = Failure("$distinct_id", "refused by the stand-in")
                if isinstance(update, Failure):
                    failures.append((index, update))
                    continue
                after = rules.apply_update(self._profiles.get(update.key), update)
                if isinstance(after, Failure):
                    failures.append((index, after))
                    continue
                if after is None:
                    self._profiles.pop(update.key, None)
                else:
                    self._profiles[update.key] = after
                applied += 1
        reply = _answer(
            query,
            applied,
            failures,
            verbose=self.verbose_answers,
            per_record=self.per_record_errors,
        )
        self._log(path, reply.status, applied, len(failures))
        return reply

    def _log(self, path: str, status: int, applied: int, refused: int) -> None:
        with self._lock:
            self._requests.append(ProfileRequest(path, status, applied, refused))

    def _records(  # noqa: PLR0911 -- one return per refusal
        self, headers: Message, body: bytes, query: dict[str, str]
    ) -> list[Any] | Reply:
        inflated = inflate(headers, body, self._max_bytes)
        if isinstance(inflated, Reply):
            return inflated
        if len(inflated) > self._max_bytes:
            return mixpanel_error(413, f"request exceeds max limit of {self._max_bytes} bytes")
        content_type = content_type_of(headers)
        if content_type == "application/x-www-form-urlencoded":
            try:
                form = parse_qs(inflated.decode(), keep_blank_values=True)
            except UnicodeDecodeError:
                form = {}
            inflated = form.get("data", [""])[0].encode()
        elif content_type != "application/json":
            return mixpanel_error(400, f"unsupported Content-Type {content_type!r}")
        try:
            parsed = orjson.loads(inflated)
        except orjson.JSONDecodeError:
            return mixpanel_error(400, "unable to parse request body as JSON")
        records = parsed if isinstance(parsed, list) else [parsed]
        if not records:
            return mixpanel_error(400, "request body must contain at least one update")
        if len(records) > rules.MAX_UPDATES:
            return mixpanel_error(
                400, f"request contains {len(records)} updates, more than {rules.MAX_UPDATES}"
            )
        return records


def _answer(
    query: dict[str, str],
    applied: int,
    failures: list[tuple[int, Failure]],
    *,
    verbose: bool,
    per_record: bool,
) -> Reply:
    """The spec's ``Received`` (or, under ``strict=1`` with refusals, the per-record answer).

    ``strict=1`` is documented in the same words as ``/import``'s, whose per-record object is
    ``StrictInvalid`` (400, ``failed_records``); ``per_record=False`` answers as if ``strict``
    were not honoured. ``Received`` is ``text/plain`` ``1``/``0``, or with ``verbose=1`` (or
    ``verbose``, the switch for that documented variant) ``{"status": 1|0, "error": ...}``.
    """
    if per_record and failures and query.get("strict") == "1":
        failed = [
            {"index": index, "field": failure.field, "message": failure.message}
            for index, failure in failures
        ]
        return json_reply(
            400,
            {
                "code": 400,
                "error": _ERROR_PARTIAL,
                "num_records_imported": applied,
                "status": "Bad Request",
                "failed_records": failed,
            },
        )
    error = None if not failures else f"{failures[0][1].field}: {failures[0][1].message}"
    if verbose or query.get("verbose") == "1":
        return json_reply(200, {"status": 1 if applied else 0, "error": None if applied else error})
    return Reply(200, b"1" if applied else b"0", "text/plain")
