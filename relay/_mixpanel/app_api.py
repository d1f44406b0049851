"""One call to Mixpanel's application API (GDPR, Lexicon) read the way ``/import`` is read.

:func:`call` sends one JSON request over :class:`~relay._mixpanel.http.MixpanelHttp` (the
whole request bounded by ``RELAY_REQUEST_DEADLINE_SECONDS``, the body capped) and retries
what the documents say to retry: 429 ("retry ... with exponential backoff", the GDPR and
rate-limit pages) and 5xx, a bounded number of times with exponential backoff from the
API's documented pace. No answer at all (unreachable, past the deadline, a body over the
cap) ends the call at once: these are commands a person runs and can run again. 401 and 403
are configuration errors (exit 3), a redirect means a wrong URL (exit 3). Any other answer
is returned, status and parsed JSON, for the endpoint object to judge against its documented
success answer. Error texts quote nothing the server wrote except through
:func:`relay._escape.safe_text`, clipped.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import structlog

from relay._errors import ConfigurationError, RelayError
from relay._escape import clip, safe_text
from relay._mixpanel.http import MixpanelHttp

logger = structlog.get_logger("relay.mixpanel_app_api")

#: Statuses retried after a pause: rate limited, or Mixpanel failing on its side.
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Characters of a remote error text shown to a person.
REMOTE_TEXT_CHARS = 200


#: How :func:`call` reads a status: stop as misconfigured, retry, or hand the answer back.
CONFIGURATION = "configuration error"
RETRIED = "retried"
ANSWER = "answer"


def status_reading(status: int) -> str:
    """``CONFIGURATION`` (401, 403, redirects), ``RETRIED`` (429, 5xx), else ``ANSWER``."""
    if status in (401, 403) or 300 <= status < 400:
        return CONFIGURATION
    if status in RETRIED_STATUSES:
        return RETRIED
    return ANSWER


@dataclass(frozen=True, slots=True)
class Pacing:
    """How one API is retried: at most ``attempts`` requests, pauses doubling from ``first``.

    ``first`` is the API's documented pace (GDPR: 1 request a second; Lexicon: 5 requests a
    minute, so 12 s); each pause adds up to ``jitter`` seconds at random and is capped at
    ``longest``. :meth:`bound` is the longest a call can take.
    """

    attempts: int
    first: float
    longest: float
    jitter: float = 1.0

    def pause(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        return self._step(retry) + rng.uniform(0, self.jitter)

    def _step(self, retry: int) -> float:
        return float(min(self.first * 2.0 ** (retry - 1), self.longest))

    def bound(self, deadline_seconds: float) -> float:
        """The longest a call can take: every attempt to its deadline, every pause at most."""
        pauses = sum(self._step(n) + self.jitter for n in range(1, self.attempts))
        return self.attempts * deadline_seconds + pauses


@dataclass(frozen=True, slots=True)
class Reply:
    """A non-retried answer: its status and body parsed as JSON (``None`` if it is not JSON)."""

    status: int
    payload: Any


def remote(text: object) -> str:
    """Text a server wrote, safe to print: control characters escaped, clipped."""
    return clip(safe_text(text), REMOTE_TEXT_CHARS, marker="...")


def call(
    http: MixpanelHttp,
    method: str,
    url: str,
    *,
    what: str,
    credentials_hint: str,
    url_hint: str,
    pacing: Pacing,
    max_bytes: int,
    body: Any = None,
    headers: dict[str, str] | None = None,
    auth: httpx.Auth | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> Reply:
    """Send one request (retried per ``pacing``); the first answer that is not retried.

    ``what`` names the API in messages ("Mixpanel's GDPR API"); ``credentials_hint`` names
    the settings to check after a 401/403, ``url_hint`` after a redirect (both the
    destination's own: :meth:`relay._config.RelaySettings.setting_names`). Raises
    ``ConfigurationError`` for 401, 403 and redirects, ``RelayError`` once every attempt
    failed.
    """
    rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
    content = None if body is None else orjson.dumps(body)
    all_headers = {"Accept": "application/json", **(headers or {})}
    if content is not None:
        all_headers["Content-Type"] = "application/json"
    problem = "no answer"
    for attempt in range(1, pacing.attempts + 1):
        if attempt > 1:
            sleep(pacing.pause(attempt - 1, rng))
        answer = http.request(
            method, url, content=content, headers=all_headers, auth=auth, max_bytes=max_bytes
        )
        if answer.cancelled:
            raise RelayError(f"{what}: request cancelled")
        if answer.status is None or answer.error is not None:
            # No answer within the deadline, unreachable, or a body over the cap: a person
            # runs these commands and can run them again; retrying would only stretch the
            # command's bound by whole deadlines (and fill memory again with a huge body).
            error = answer.error or "no answer"
            raise RelayError(f"{what} did not answer as documented ({error})")
        reading = status_reading(answer.status)
        if reading == CONFIGURATION and answer.status in (401, 403):
            raise ConfigurationError(
                f"{what} refused the credentials (HTTP {answer.status}): check {credentials_hint}"
            )
        if reading == CONFIGURATION:
            raise ConfigurationError(
                f"{what} redirected (HTTP {answer.status}); relay does not follow redirects: "
                f"check {url_hint}"
            )
        if reading == ANSWER:
            return Reply(answer.status, _json(answer.body))
        problem = f"HTTP {answer.status}"
        logger.warning("mixpanel_app_api_retry", api=what, attempt=attempt, error=problem)
    raise RelayError(f"{what} did not answer after {pacing.attempts} attempts (last: {problem})")


def app_url_hint(names: Mapping[str, str]) -> str:
    """The settings that decide where application API requests go, from
    :meth:`relay._config.RelaySettings.setting_names`: what a redirect says to check."""
    return f"{names['app_api_url']} / {names['region']}"


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def error_of(payload: Any) -> str:
    """``: <error>`` from a JSON error body (escaped and clipped), ``""`` without one."""
    error = payload.get("error") if isinstance(payload, dict) else None
    return f": {remote(error)}" if isinstance(error, str) and error else ""
