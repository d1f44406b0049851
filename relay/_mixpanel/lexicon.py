"""``relay events push``, the HTTP part: Mixpanel's Lexicon Schemas API over httpx.

``GET /projects/{projectId}/schemas/event`` reads the event schemas Lexicon holds; ``POST
/projects/{projectId}/schemas`` uploads entries (``truncate`` sent explicitly, ``false`` unless
asked). The service account goes as HTTP Basic. Failures become one-line relay errors that
never carry the secret: 401/403 a ``ConfigurationError`` (the credentials or project id are
wrong), anything else (unreachable, another status, an unreadable answer) a ``RelayError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from relay._errors import ConfigurationError, RelayError


class LexiconClient:
    """One project's Lexicon Schemas API; a context manager closing its connection pool."""

    def __init__(
        self,
        *,
        base_url: str,
        project_id: str,
        username: str,
        secret: str,
        timeout: httpx.Timeout,
    ) -> None:
        self.project_id = project_id
        self._where = _describe(base_url)
        self._http = httpx.Client(
            base_url=f"{base_url.rstrip('/')}/projects/{project_id}",
            auth=(username, secret),
            timeout=timeout,
            headers={"Accept": "application/json"},
        )

    def __enter__(self) -> LexiconClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def event_schemas(self) -> list[dict[str, Any]]:
        """Every event ``SchemaEntry`` Lexicon holds."""
        body = self._call("GET", "/schemas/event")
        results = body.get("results")
        if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
            raise RelayError(f"Lexicon at {self._where} answered without a list of schemas")
        return results

    def upload(self, entries: Sequence[dict[str, Any]], *, truncate: bool) -> dict[str, Any]:
        """Create or replace ``entries``; with ``truncate`` the dictionary is emptied first."""
        body = self._call("POST", "/schemas", json={"entries": list(entries), "truncate": truncate})
        results = body.get("results")
        return results if isinstance(results, dict) else {}

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise RelayError(f"Lexicon at {self._where} did not answer in time") from None
        except httpx.TransportError as exc:
            raise RelayError(
                f"Lexicon at {self._where} is unreachable ({type(exc).__name__})"
            ) from None
        if response.status_code in (401, 403):
            raise ConfigurationError(
                f"Lexicon refused the service account (HTTP {response.status_code}): check "
                "RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME, RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET "
                "and RELAY_MIXPANEL_PROJECT_ID"
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200:
            error = body.get("error") if isinstance(body, dict) else None
            detail = f": {str(error)[:200]}" if error else ""
            raise RelayError(f"Lexicon answered HTTP {response.status_code}{detail}")
        if not isinstance(body, dict):
            raise RelayError(f"Lexicon at {self._where} answered with something other than JSON")
        return body


def _describe(base_url: str) -> str:
    """``scheme://host[:port]`` of a URL: never a user or password written into it."""
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL:
        return "the configured URL"
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}"
