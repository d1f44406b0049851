"""Does a destination's project accept its credentials, in its configured region? (``relay check``)

Two documented calls, each judged by its answer's status alone (never by the text of an error):

1. With a service account, ``GET {app API}/projects/{projectId}/schemas/event?entity_name=...``
   at the region's application API (``https://{,eu.,in.}mixpanel.com/api/app``, or
   ``app_api_url``): the Lexicon Schemas API's "List for Entity"
   (``reference/mixpanel-lexicon-schemas.openapi.yaml``, operation
   ``list-schemas-for-entity``; the hosts per region from ``mixpanel-docs/eu-residency.mdx``
   and ``in-residency.mdx``). It reads, and changes nothing; the ``entity_name`` filter keeps
   the answer small. 200 with a ``ListSchemasResponse``: the service account opens this
   project at this region's host. 401 (documented, "Unauthorized"): the credentials are
   refused. 403 (documented, "Forbidden"): the service account may not open this project here.
   404: the project is not found at this region's host, read as "the project lives in another
   region". That reading is an inference: the documents name no status for a project asked
   for at another region's host.
2. ``POST {ingestion}/import?strict=1`` with an empty JSON array, the destination's
   credentials (the service account with ``project_id``, or the project token) at the
   region's ingestion host (``api``, ``api-eu``, ``api-in``, or ``api_url``), which delivery
   uses. The spec's body has ``minItems: 1``, so nothing can be ingested: 400 means the host
   accepted the credentials and refused the empty batch (an inference: Mixpanel
   authenticates before it validates, as the 401 for a missing ``project_id`` suggests); 200
   is accepted too. 401 (``StrictUnauthorized``): the credentials are refused, or the project
   is not in this region: Mixpanel's 401 troubleshooting page lists a wrong regional host as
   a cause (``reference/mixpanel.md`` §2.1).

A destination with a project token only cannot call the application API (Lexicon takes a
service account only): only call 2 is made; it proves the token works at that ingestion host
(and, through the 401 reading above, the region), not that the project id is right.

No answer, a 429 or a 5xx is not a verdict: the check could not tell (exit 1, not 3). Texts
name the destination, its host and project id and the status, never a secret or a body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from relay._config import RelaySettings
from relay._database import scrub
from relay._errors import ConfigurationError
from relay._escape import safe_text
from relay._mixpanel.answers import Answer
from relay._mixpanel.http import MixpanelHttp

#: The Lexicon entity name the app-API call filters by: only its schema (if any) comes back.
PROBE_ENTITY_NAME = "relay-check"
#: A ``ListSchemasResponse`` for one entity name is small; anything longer is not Lexicon's.
MAX_ANSWER_BYTES = 1024 * 1024
#: Statuses after which the check cannot tell: Mixpanel busy or failing.
_UNDECIDED = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class DestinationCheck:
    """The verdict on one destination.

    ``ok``: every call made answered as a working project in this region does. Otherwise
    ``problem`` says why in one line (no secret) and ``configuration`` whether it is the
    configuration's fault (credentials refused, project not in the region, settings
    incomplete: exit 3) or the check could not tell (no answer, 429, 5xx: exit 1).
    ``calls`` names the requests made (method and URL; no secret is in a URL).
    """

    name: str
    region: str
    base_url: str
    app_base_url: str
    project_id: str | None
    ok: bool
    problem: str | None = None
    configuration: bool = False
    calls: tuple[str, ...] = ()
    scope: str = ""

    def to_json(self) -> dict[str, Any]:
        """The verdict as JSON for ``relay check --json``."""
        return {
            "destination": self.name,
            "region": self.region,
            "base_url": self.base_url,
            "app_base_url": self.app_base_url,
            "project_id": self.project_id,
            "ok": self.ok,
            "problem": self.problem,
            "configuration_error": self.configuration,
            "calls": list(self.calls),
            "checked": self.scope,
        }


@dataclass(frozen=True, slots=True)
class Problem:
    """What ends a check: the line, and whether the configuration is at fault (exit 3) or
    the check could not tell (exit 1)."""

    problem: str
    configuration: bool


def check_destination(
    settings: RelaySettings, name: str, *, http: MixpanelHttp | None = None
) -> DestinationCheck:
    """Check destination ``name`` with ``settings`` (``RelaySettings.for_destination(name)``).

    Makes the calls the module describes through ``http`` (one is made, and closed, if none
    is given). Never raises for what Mixpanel answers; the verdict says it.
    """
    calls: list[str] = []
    has_account = bool(
        settings.mixpanel_service_account_username and settings.mixpanel_service_account_secret
    )
    scope = (
        "app API and /import"
        if has_account
        else "/import only (a project token cannot call the app API)"
    )

    def verdict(problem: str | None = None, *, configuration: bool = False) -> DestinationCheck:
        return DestinationCheck(
            name=name,
            region=settings.mixpanel_region,
            base_url=settings.mixpanel_base_url,
            app_base_url=settings.mixpanel_app_base_url,
            project_id=settings.mixpanel_project_id,
            ok=problem is None,
            problem=None if problem is None else _clean(problem, settings),
            configuration=configuration,
            calls=tuple(calls),
            scope=scope,
        )

    try:
        settings.require_mixpanel_credentials()
        if has_account:
            settings.require_service_account()
    except ConfigurationError as exc:
        return verdict(str(exc).removeprefix(f"destination {name!r}: "), configuration=True)
    own = http is None
    client = http or MixpanelHttp(settings)
    try:
        found = _app_api(client, settings, calls) if has_account else None
        found = found or _ingestion(client, settings, has_account=has_account, calls=calls)
    finally:
        if own:
            client.close()
    if found is not None:
        return verdict(found.problem, configuration=found.configuration)
    return verdict()


def _app_api(http: MixpanelHttp, settings: RelaySettings, calls: list[str]) -> Problem | None:
    """Call 1: the Lexicon "List for Entity" of the project at the region's app API."""
    project_id, username, secret = settings.require_service_account()
    url = (
        f"{settings.mixpanel_app_base_url}/projects/{project_id}/schemas/event?"
        f"{urlencode({'entity_name': PROBE_ENTITY_NAME})}"
    )
    call = f"GET {url}"
    calls.append(call)
    answer = http.request(
        "GET",
        url,
        headers={"Accept": "application/json"},
        auth=httpx.BasicAuth(username, secret),
        max_bytes=MAX_ANSWER_BYTES,
    )
    return read_app_api(
        _status(answer),
        answer.body,
        call=call,
        project_id=project_id,
        region=settings.mixpanel_region,
        error=answer.error,
    )


def read_app_api(  # noqa: PLR0911 - one verdict per documented status
    status: int | None,
    body: bytes,
    *,
    call: str,
    project_id: str,
    region: str,
    error: str | None = None,
) -> Problem | None:
    """Call 1's answer read by its status (``None``: no answer); ``None`` means ok."""
    if status is None:
        return Problem(
            f"could not check: no answer to {call} ({error or 'no answer'})", configuration=False
        )
    if status == 200:
        if not _is_schema_list(body):
            return Problem(
                f"{call} answered 200 without Lexicon's list of schemas: is "
                "app_api_url Mixpanel's application API?",
                configuration=True,
            )
        return None
    if status == 401:
        return Problem(f"credentials refused (HTTP 401 from {call})", configuration=True)
    if status == 403:
        return Problem(
            f"the service account may not open project {project_id} here (HTTP 403 from "
            f"{call}): not a member of it, or a wrong project id",
            configuration=True,
        )
    if status == 404:
        return Problem(
            f"project {project_id} is not at the region's app API (HTTP 404 from {call}): "
            f"it lives in another region than {region!r}",
            configuration=True,
        )
    return _other(status, call)


def _ingestion(
    http: MixpanelHttp, settings: RelaySettings, *, has_account: bool, calls: list[str]
) -> Problem | None:
    """Call 2: an empty strict batch at the region's ingestion host, nothing ingested."""
    query: dict[str, str] = {"strict": "1"}
    if has_account:
        username = settings.mixpanel_service_account_username or ""
        secret_value = settings.mixpanel_service_account_secret
        auth = httpx.BasicAuth(username, secret_value.get_secret_value() if secret_value else "")
        query["project_id"] = settings.mixpanel_project_id or ""
    else:
        token = settings.mixpanel_project_token
        auth = httpx.BasicAuth(token.get_secret_value() if token else "", "")
        if settings.mixpanel_project_id:
            query["project_id"] = settings.mixpanel_project_id
    url = f"{settings.mixpanel_base_url}/import?{urlencode(query)}"
    call = f"POST {url}"
    calls.append(call)
    answer = http.request(
        "POST",
        url,
        content=b"[]",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        auth=auth,
        max_bytes=MAX_ANSWER_BYTES,
    )
    return read_import(
        _status(answer), call=call, region=settings.mixpanel_region, error=answer.error
    )


def read_import(
    status: int | None, *, call: str, region: str, error: str | None = None
) -> Problem | None:
    """Call 2's answer read by its status (``None``: no answer); ``None`` means ok."""
    if status is None:
        return Problem(
            f"could not check: no answer to {call} ({error or 'no answer'})", configuration=False
        )
    if status in (200, 400):
        return None
    if status == 401:
        return Problem(
            f"credentials refused (HTTP 401 from {call}): wrong credentials, or the project is "
            f"not in region {region!r}",
            configuration=True,
        )
    return _other(status, call)


def _status(answer: Answer) -> int | None:
    """The answer's status, or ``None`` when there is no (whole) answer."""
    if answer.status is None or answer.error is not None:
        return None
    return int(answer.status)


def _other(status: int, call: str) -> Problem:
    """Any status the documents give no verdict for."""
    if 300 <= status < 400:
        return Problem(
            f"{call} redirected (HTTP {status}): a wrong region or base URL", configuration=True
        )
    if status in _UNDECIDED:
        return Problem(f"could not check: HTTP {status} from {call}", configuration=False)
    return Problem(
        f"HTTP {status} from {call}: not an answer Mixpanel documents here", configuration=False
    )


def _is_schema_list(body: bytes) -> bool:
    """Whether ``body`` is a ``ListSchemasResponse`` (``results``: a list of objects)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    results = payload.get("results") if isinstance(payload, dict) else None
    return isinstance(results, list) and all(isinstance(r, dict) for r in results)


def _clean(text: str, settings: RelaySettings) -> str:
    """One line, escaped, with every secret the settings hold masked."""
    return scrub(safe_text(" ".join(text.split())), settings.secret_values())
