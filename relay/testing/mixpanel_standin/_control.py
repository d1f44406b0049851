"""The control plane: ``/_standin/...``, for a test or benchmark driving a stand-in over HTTP.

``GET /_standin/stats`` (``stats()``), ``GET /_standin/events`` (``ingested()``; 409 when the
stand-in keeps counters only), ``POST /_standin/reset``, ``POST /_standin/faults`` (a JSON
fault call or list of them, see ``MixpanelStandin.apply_faults``) and ``GET
/_standin/lexicon`` (the Lexicon schemas uploaded so far, see ``_lexicon``), ``GET
/_standin/profiles`` (user and group profiles), ``GET /_standin/gdpr`` (GDPR jobs) and ``POST
/_standin/gdpr/complete`` (run the pending jobs).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Protocol

import orjson

from relay.testing.mixpanel_standin._gdpr import GdprJob
from relay.testing.mixpanel_standin._ledger import IngestedEvent, StandinStats
from relay.testing.mixpanel_standin._profiles import ProfileStore
from relay.testing.mixpanel_standin._wire import Reply, json_reply, not_found


class MixpanelStandin(Protocol):
    """What the control plane reads and drives of the stand-in (``_standin.MixpanelStandin``;
    a protocol, so that this module and the server import each other in one direction only)."""

    retain_events: bool
    _profiles: ProfileStore

    def stats(self) -> StandinStats: ...
    def ingested(self) -> list[IngestedEvent]: ...
    def lexicon_entries(self) -> list[dict[str, Any]]: ...
    def gdpr_jobs(self) -> list[GdprJob]: ...
    def complete_gdpr_jobs(self) -> list[GdprJob]: ...
    def reset(self) -> None: ...
    def apply_faults(self, spec: object) -> None: ...


PREFIX = "/_standin/"


def control_reply(  # noqa: PLR0911 -- one return per endpoint
    standin: MixpanelStandin, method: str, path: str, body: bytes
) -> Reply:
    """The answer to one control-plane request."""
    if path == "/_standin/stats" and method == "GET":
        stats = asdict(standin.stats())
        stats["by_status"] = {str(k): v for k, v in stats["by_status"].items()}
        return json_reply(200, stats)
    if path == "/_standin/events" and method == "GET":
        return _events_reply(standin)
    if path == "/_standin/lexicon" and method == "GET":
        return json_reply(200, {"results": standin.lexicon_entries()})
    if path == "/_standin/profiles" and method == "GET":
        return json_reply(200, {"profiles": standin._profiles.to_json()})
    if path == "/_standin/gdpr" and method == "GET":
        return json_reply(200, {"jobs": [job.to_json() for job in standin.gdpr_jobs()]})
    if path == "/_standin/gdpr/complete" and method == "POST":
        done = standin.complete_gdpr_jobs()
        return json_reply(200, {"completed": [job.task_id for job in done]})
    if path == "/_standin/reset" and method == "POST":
        standin.reset()
        return json_reply(200, {"ok": True})
    if path == "/_standin/faults" and method == "POST":
        try:
            standin.apply_faults(orjson.loads(body))
        except (orjson.JSONDecodeError, TypeError, ValueError, KeyError) as exc:
            return json_reply(400, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        return json_reply(200, {"ok": True})
    return not_found()


def _events_reply(standin: MixpanelStandin) -> Reply:
    """``GET /_standin/events``: ``{"events": [...]}`` of ``ingested()``, 409 if not kept."""
    if not standin.retain_events:
        return json_reply(409, {"error": "the stand-in does not retain events", "status": "error"})
    payload = {"events": [event.to_json() for event in standin.ingested()]}
    try:
        return json_reply(200, payload)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, kept by the lenient parse
        return Reply(200, json.dumps(payload, ensure_ascii=False).encode())
