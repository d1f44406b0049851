"""The stand-in plus what the benchmarks' baseline needs: the ``mixpanel`` package's bodies.

The ``mixpanel`` package's ``Consumer`` and ``BufferedConsumer`` post form-encoded bodies
(``data=<json>&verbose=1``) to ``/import`` and ``/track`` and parse ``{"status": 1|0, "error":
...}`` answers. Relay never sends those, so the stand-in itself (``relay.testing.
mixpanel_standin``) serves JSON ``/import`` only; :class:`BaselineStandin` adds the form bodies
and ``/track``, judged by the same rules, so a benchmark can measure that package against the
relay on one server. Serve it with ``python bench/_baseline_standin.py --port 0`` (the options
of ``python -m relay.testing.mixpanel_standin``); the first line printed is the base URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from typing import ClassVar
from urllib.parse import parse_qs

import orjson

from relay.testing.mixpanel_standin import MixpanelStandin, main
from relay.testing.mixpanel_standin._ledger import Stored
from relay.testing.mixpanel_standin._wire import (
    ERROR_UNAUTHORIZED,
    Body,
    Reply,
    json_reply,
    phrase,
)


@dataclass(slots=True)
class FormBody(Body):
    """A form-encoded body: its records and whether the sender asked for a verbose answer."""

    verbose: bool = True


def legacy_reply(status: int, error: str | None, *, verbose: bool) -> Reply:
    """The answer the ``mixpanel`` package's consumers parse: ``{"status": 1|0, "error": ...}``."""
    if not verbose:
        return Reply(status, b"1" if error is None else b"0", "text/plain")
    return json_reply(status, {"status": 1 if error is None else 0, "error": error})


class BaselineStandin(MixpanelStandin):
    """``MixpanelStandin`` that also reads form-encoded ``/import`` and serves ``/track``."""

    INGESTION_PATHS: ClassVar[frozenset[str]] = frozenset({"/import", "/track"})

    def _decode_inflated(self, content_type: str, inflated: bytes, query: dict[str, str]) -> Body:
        if content_type == "application/x-www-form-urlencoded":
            return _decode_form(inflated, query)
        return super()._decode_inflated(content_type, inflated, query)

    def _answer(
        self, path: str, query: dict[str, str], headers: Message, decoded: Body
    ) -> tuple[Reply, list[Stored]]:
        if path == "/track":
            if decoded.records is None:
                error = decoded.error
                return error or legacy_reply(200, "unreadable body", verbose=True), []
            return self._legacy_records(decoded, track=True)
        if isinstance(decoded, FormBody):
            if not self._import_authorized(headers, query):
                return legacy_reply(401, ERROR_UNAUTHORIZED, verbose=decoded.verbose), []
            return self._legacy_records(decoded, track=False)
        return super()._answer(path, query, headers, decoded)

    def _legacy_records(self, decoded: Body, *, track: bool) -> tuple[Reply, list[Stored]]:
        verbose = decoded.verbose if isinstance(decoded, FormBody) else True
        if decoded.error is not None:
            return decoded.error, []
        records = decoded.records or []
        if not records or len(records) > self.max_events:
            error = f"data must hold between 1 and {self.max_events} events"
            return legacy_reply(200, error, verbose=verbose), []
        stored, failures = self._validate(decoded, track=track)
        if not failures or (track and stored):
            return legacy_reply(200, None, verbose=verbose), stored
        _, first = failures[0]
        return legacy_reply(200, f"{first.field}: {first.message}", verbose=verbose), stored

    def _fault_reply(self, status: int, error: str | None, decoded: Body) -> Reply:
        if isinstance(decoded, FormBody):
            return legacy_reply(status, error or phrase(status), verbose=True)
        return super()._fault_reply(status, error, decoded)


def _decode_form(body: bytes, query: dict[str, str]) -> FormBody:
    try:
        form = parse_qs(body.decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        form = {}
    verbose = (form.get("verbose", [None])[0] or query.get("verbose")) == "1"
    data = form.get("data", [""])[0]
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        error = legacy_reply(200, "data, missing or empty", verbose=verbose)
        return FormBody(error=error, verbose=verbose, size=len(body))
    records = parsed if isinstance(parsed, list) else [parsed]
    request_ip_used = (form.get("ip", [None])[0] or query.get("ip")) == "1"
    return FormBody(
        records=records, verbose=verbose, size=len(body), request_ip_used=request_ip_used
    )


if __name__ == "__main__":
    raise SystemExit(main(factory=BaselineStandin))
