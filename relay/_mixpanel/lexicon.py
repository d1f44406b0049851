"""Mixpanel's Lexicon Schemas API (``relay events push``): list event schemas, upload entries.

``GET /projects/{projectId}/schemas/event`` reads the event schemas Lexicon holds; ``POST
/projects/{projectId}/schemas`` uploads entries (``truncate`` sent explicitly). The service
account goes as HTTP Basic. Requests go through :func:`relay._mixpanel.app_api.call`: each
bounded as a whole, 429/5xx retried with backoff, 401/403 a ``ConfigurationError``.

Success is only the documented answer: ``ListSchemasResponse`` (``results``: a list of
``SchemaEntry`` objects) and ``BatchUploadSchemasResponse`` (``"status": "ok"`` and
``results`` an object of counts). The documented limits (``mixpanel-docs/rate-limits.mdx``:
"a maximum of 5 requests per minute, under 4000 events and properties updated in each
minute, and less than 3000 total truncations/deletions per request") are kept: uploads are
cut into chunks of at most :data:`MAX_UPDATES_PER_MINUTE` - 1 events and properties, and
requests are paced so that no rolling minute holds more than 5 requests or 3999 updates.
A push therefore ends within, per request, :data:`PACING`'s bound plus 60 s of pacing.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from relay._config import RelaySettings
from relay._errors import RelayError
from relay._mixpanel.app_api import Pacing, Reply, app_url_hint, call, error_of, remote
from relay._mixpanel.destinations import setting_name
from relay._mixpanel.http import MixpanelHttp
from relay._tables import DEFAULT_DESTINATION

#: "A maximum of 5 requests per minute".
MAX_REQUESTS_PER_MINUTE = 5
#: "Under 4000 events and properties updated in each minute".
MAX_UPDATES_PER_MINUTE = 4000
#: "Less than 3000 total truncations/deletions per request".
MAX_DELETIONS_PER_REQUEST = 3000
WINDOW_SECONDS = 60.0
#: 429s are retried from the documented pace, one request every 12 s.
PACING = Pacing(attempts=4, first=WINDOW_SECONDS / MAX_REQUESTS_PER_MINUTE, longest=60.0)
#: A dictionary of a few thousand schemas is a few MB; a longer answer is not Lexicon's.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
WHAT = "Mixpanel Lexicon"


def updates_in(entry: dict[str, Any]) -> int:
    """Events and properties one entry updates: the event and each of its properties."""
    schema = entry.get("schemaJson")
    properties = schema.get("properties") if isinstance(schema, dict) else None
    return 1 + (len(properties) if isinstance(properties, dict) else 0)


def chunks(entries: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """``entries`` cut into uploads of under :data:`MAX_UPDATES_PER_MINUTE` updates each."""
    limit = MAX_UPDATES_PER_MINUTE - 1
    cut: list[list[dict[str, Any]]] = []
    size = 0
    for entry in entries:
        count = updates_in(entry)
        if count > limit:
            raise RelayError(
                f"event {remote(entry.get('name'))} has {count - 1} properties: Lexicon takes "
                f"under {MAX_UPDATES_PER_MINUTE} events and properties a minute"
            )
        if not cut or size + count > limit:
            cut.append([])
            size = 0
        cut[-1].append(entry)
        size += count
    return cut


class LexiconClient:
    """One project's Lexicon Schemas API; a context manager closing its connection pool.

    ``sleep``, ``clock`` and ``rng`` are the pacing's (tests pin them). Built from
    ``RelaySettings.for_destination(destination)``: each destination's project has its own
    client and its own pacing (Lexicon's limits are per project); ``destination`` only names
    its settings in messages.
    """

    def __init__(
        self,
        settings: RelaySettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        destination: str = DEFAULT_DESTINATION,
    ) -> None:
        project_id, username, secret = settings.require_service_account()
        self.project_id = project_id
        username_setting, secret_setting, project_setting = (
            setting_name(destination, field)
            for field in ("SERVICE_ACCOUNT_USERNAME", "SERVICE_ACCOUNT_SECRET", "PROJECT_ID")
        )
        self._hint = f"{username_setting}, {secret_setting} and {project_setting}"
        self._url_hint = app_url_hint(settings.setting_names())
        self._base = f"{settings.mixpanel_app_base_url}/projects/{project_id}"
        self._auth = httpx.BasicAuth(username, secret)
        self._http = MixpanelHttp(settings)
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self._sent: deque[tuple[float, int]] = deque()  # (when, updates) in the last minute

    def __enter__(self) -> LexiconClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def event_schemas(self) -> list[dict[str, Any]]:
        """Every event ``SchemaEntry`` Lexicon holds."""
        reply = self._call("GET", "/schemas/event", None, updates=0)
        payload = reply.payload
        results = payload.get("results") if isinstance(payload, dict) else None
        if reply.status != 200 or not (
            isinstance(results, list) and all(isinstance(r, dict) for r in results)
        ):
            raise RelayError(
                f"{WHAT} answered HTTP {reply.status}{error_of(payload)} without a list of schemas"
            )
        return results

    def upload(
        self, entries: Sequence[dict[str, Any]], *, truncate: bool, held: int = 0
    ) -> dict[str, int]:
        """Create or replace ``entries`` in chunks; with ``truncate`` the dictionary is emptied
        first (by the first chunk). ``held``: schemas Lexicon holds, which a truncate deletes.

        Returns the summed counts of the answers (``added``, ``deleted``).
        """
        if truncate and held >= MAX_DELETIONS_PER_REQUEST:
            raise RelayError(
                f"Lexicon holds {held} schemas: a truncate would delete more than the documented "
                f"{MAX_DELETIONS_PER_REQUEST - 1} per request; delete some in Lexicon first"
            )
        parts = chunks(entries) or [[]]
        totals = {"added": 0, "deleted": 0}
        for number, part in enumerate(parts):
            body = {"entries": part, "truncate": truncate and number == 0}
            reply = self._call("POST", "/schemas", body, updates=sum(map(updates_in, part)))
            counts = upload_counts(reply)
            if counts is None:
                raise RelayError(
                    f"{WHAT} did not confirm the upload (HTTP {reply.status}"
                    f"{error_of(reply.payload)}); {number} of {len(parts)} part(s) were uploaded"
                )
            for key in totals:
                totals[key] += counts.get(key, 0)
        return totals

    def _call(self, method: str, path: str, body: Any, *, updates: int) -> Reply:
        self._wait_for_room(updates)
        try:
            return call(
                self._http,
                method,
                f"{self._base}{path}",
                what=WHAT,
                credentials_hint=self._hint,
                url_hint=self._url_hint,
                pacing=PACING,
                max_bytes=MAX_ANSWER_BYTES,
                body=body,
                auth=self._auth,
                sleep=self._sleep,
                rng=self._rng,
            )
        finally:
            self._sent.append((self._clock(), updates))

    def _wait_for_room(self, updates: int) -> None:
        """Sleep until this request keeps the last minute within the documented limits."""
        while True:
            now = self._clock()
            while self._sent and now - self._sent[0][0] >= WINDOW_SECONDS:
                self._sent.popleft()
            used = sum(count for _, count in self._sent)
            if len(self._sent) < MAX_REQUESTS_PER_MINUTE and used + updates < (
                MAX_UPDATES_PER_MINUTE
            ):
                return
            self._sleep(WINDOW_SECONDS - (now - self._sent[0][0]))


def upload_counts(reply: Reply) -> dict[str, int] | None:
    """``BatchUploadSchemasResponse``'s counts, ``None`` unless the answer is that."""
    payload = reply.payload
    if reply.status != 200 or not isinstance(payload, dict) or payload.get("status") != "ok":
        return None
    results = payload.get("results", {})
    if not isinstance(results, dict):
        return None
    counts = {}
    for key in ("added", "deleted"):
        value = results.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return None
        counts[key] = value
    return counts
