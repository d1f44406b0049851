"""What travels on the wire: answers shaped like Mixpanel's, request bodies, credentials.

Pure functions of bytes and headers: no server state, so each is testable on its own and the
endpoints only combine them.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from typing import Any

import orjson

ERROR_UNAUTHORIZED = "Invalid credentials"
ERROR_RATE_LIMITED = (
    "Project exceeded rate limits. Please retry the request with exponential backoff."
)


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer: status, body bytes and content type."""

    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class Note:
    """What ingestion did to a record taken by the careful path (none: stored as sent)."""

    sent_time_ms: int
    request_ip_used: bool


@dataclass(slots=True)
class Body:
    """A decoded request body: its records, or why it could not be read."""

    records: list[Any] | None = None
    error: Reply | None = None
    size: int = 0
    rejected: int = 0  # records refused one by one, counted when the request is finished
    strict_utf8: bool = True  # False: parsed leniently, strings may hold lone surrogates
    request_ip_used: bool = True  # /track geolocates from the request only with ip=1
    notes: dict[int, Note] = field(default_factory=dict)  # index in the stored list -> note


def json_reply(status: int, payload: Mapping[str, Any] | list[Any]) -> Reply:
    """A JSON answer."""
    return Reply(status, orjson.dumps(payload))


def phrase(status: int) -> str:
    """The reason phrase of an HTTP status, ``"Error"`` for an unknown one."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def mixpanel_error(status: int, error: str) -> Reply:
    """A whole-request error shaped like Mixpanel's strict responses."""
    return json_reply(status, {"code": status, "error": error, "status": phrase(status)})


def not_found() -> Reply:
    """The answer to a path the stand-in does not serve."""
    return json_reply(404, {"error": "not found", "status": "error"})


def content_type_of(headers: Message) -> str:
    """The media type of a request, lower-cased, without parameters."""
    return (headers.get("Content-Type") or "").split(";")[0].strip().lower()


def inflate(headers: Message, body: bytes, max_bytes: int) -> bytes | Reply:
    """The uncompressed body (cut at ``max_bytes + 1``: no gzip bomb), or an error answer."""
    encoding = (headers.get("Content-Encoding") or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        return mixpanel_error(400, f"unsupported Content-Encoding {encoding!r}")
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        inflated = inflater.decompress(body, max_bytes + 1)
    except zlib.error:
        return mixpanel_error(400, "unable to decompress gzip body")
    if not inflater.eof and len(inflated) <= max_bytes:
        return mixpanel_error(400, "unable to decompress gzip body: truncated")
    return inflated


def parse_records(content_type: str, body: bytes) -> tuple[list[Any], bool] | Reply:
    """(records, parsed strictly) of a JSON array or NDJSON body, or the 400 for an unreadable one.

    Invalid UTF-8 fails one record at Mixpanel ("string should be valid utf8" on its field),
    not the request, so a body orjson refuses is parsed again leniently: raw invalid bytes
    become lone surrogates (``surrogateescape``), as a ``\\ud800`` escape does, and the rules
    refuse the records holding them.
    """
    if content_type not in ("application/json", "application/x-ndjson"):
        return mixpanel_error(400, f"unsupported Content-Type {content_type!r}")
    ndjson = content_type == "application/x-ndjson"
    try:
        if ndjson:
            return [orjson.loads(line) for line in body.splitlines() if line.strip()], True
        parsed = orjson.loads(body)
        strict = True
    except orjson.JSONDecodeError as exc:
        lenient = _parse_leniently(body, ndjson=ndjson)
        if lenient is None:
            return mixpanel_error(400, f"unable to parse request body as JSON: {exc}")
        if ndjson:
            return lenient, False
        parsed, strict = lenient, False
    if not isinstance(parsed, list):
        return mixpanel_error(400, "request body must be a JSON array of events")
    return parsed, strict


def _parse_leniently(body: bytes, *, ndjson: bool) -> Any:
    """The body parsed with invalid UTF-8 kept as lone surrogates, or ``None`` if not JSON."""
    text = body.decode("utf-8", "surrogateescape")
    try:
        if ndjson:
            return [_lenient_loads(line) for line in text.splitlines() if line.strip()]
        return _lenient_loads(text)
    except ValueError:  # json.JSONDecodeError, or a NaN/Infinity refused below
        return None


def _lenient_loads(text: str) -> Any:
    return json.loads(text, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    """NaN and Infinity are not JSON; only the stdlib parser would accept them."""
    raise ValueError("not JSON")


def basic_credentials(headers: Message) -> tuple[str, str] | None:
    """(user, secret) of an ``Authorization: Basic`` header, or ``None`` if there is none."""
    scheme, _, encoded = (headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, secret = decoded.partition(":")
    return user, secret
