"""Mixpanel's GDPR API, the one call relay makes: file a deletion (``relay forget --mixpanel``).

One project per call: :func:`request_deletion` files with the project of the settings it is
given (``RelaySettings.for_destination(name)``: that destination's app API host, GDPR token
and project token) and reports what happened as a :class:`Deletion`, so a caller filing with
several destinations can report each one.

``POST {app api}/data-deletions/v3.0?token=<project token>`` with ``Authorization: Bearer
<RELAY_MIXPANEL_GDPR_TOKEN>`` and ``{"distinct_ids": [id], "compliance_type": "GDPR"}``.

The documents give two success answers, and both are read: the spec's ``JobCreated`` (201,
``{"status": "ok", "results": {"task_id": ...}}``) and the docs page's example
(``mixpanel-docs/gdpr-api.mdx``: ``{"status": "ok", "results": [{"tracking_id": ...}]}``);
200 is taken like 201. The page gives a rate of 1 request a second and says to retry a 429
with exponential backoff: :data:`PACING` (5 attempts, pauses 1, 2, 4, 8 s plus up to 1 s of
jitter), so each destination's filing ends within ``5 * RELAY_REQUEST_DEADLINE_SECONDS + 19``
seconds.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from relay._config import RelaySettings
from relay._errors import ConfigurationError, GdprRequestError, RelayError
from relay._mixpanel.app_api import Pacing, app_url_hint, call, error_of
from relay._mixpanel.destinations import setting_name
from relay._mixpanel.http import MixpanelHttp
from relay._tables import DEFAULT_DESTINATION

GDPR_DELETIONS_PATH = "/data-deletions/v3.0"
PACING = Pacing(attempts=5, first=1.0, longest=8.0)
#: The answers are a few hundred bytes; a longer body is not one.
MAX_ANSWER_BYTES = 64 * 1024
#: A task id is an id (the spec's example is a UUID, the page's a 19-digit number).
_TASK_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
WHAT = "Mixpanel's GDPR API"


#: :attr:`Deletion.outcome` values: filed (a task id), refused (Mixpanel answered no), failed
#: (no documented answer: unreachable, past the deadline, still 429/5xx after every retry).
FILED = "filed"
REFUSED = "refused"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Deletion:
    """What one project's GDPR API did with a deletion request.

    ``configuration`` marks a refusal of the credentials or URL (401, 403, a redirect): a
    configuration error, exit 3. ``problem`` is one line without a secret or the person's id.
    """

    outcome: str
    task_id: str | None = None
    problem: str | None = None
    configuration: bool = False


def require_tokens(
    settings: RelaySettings, *, destination: str = DEFAULT_DESTINATION
) -> tuple[str, str]:
    """(GDPR token, project token), or ``ConfigurationError`` naming the missing setting."""
    found = []
    for field, value in (
        ("GDPR_TOKEN", settings.mixpanel_gdpr_token),
        ("PROJECT_TOKEN", settings.mixpanel_project_token),
    ):
        if value is None or not value.get_secret_value():
            raise ConfigurationError(
                f"relay forget --mixpanel needs {setting_name(destination, field)}"
            )
        found.append(value.get_secret_value())
    return found[0], found[1]


def request_deletion(
    settings: RelaySettings,
    distinct_id: str,
    *,
    destination: str = DEFAULT_DESTINATION,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> Deletion:
    """File a GDPR deletion request for ``distinct_id`` with the project of ``settings``
    (built with ``RelaySettings.for_destination(destination)``); never raises for what
    Mixpanel answers, only ``ConfigurationError`` when a token is not set (before any request).
    """
    oauth, token = require_tokens(settings, destination=destination)
    hint = (
        f"{setting_name(destination, 'GDPR_TOKEN')} and "
        f"{setting_name(destination, 'PROJECT_TOKEN')}"
    )
    url = f"{settings.mixpanel_app_base_url}{GDPR_DELETIONS_PATH}?{urlencode({'token': token})}"
    try:
        with MixpanelHttp(settings) as http:
            reply = call(
                http,
                "POST",
                url,
                what=WHAT,
                credentials_hint=hint,
                url_hint=app_url_hint(settings.setting_names()),
                pacing=PACING,
                max_bytes=MAX_ANSWER_BYTES,
                body={"distinct_ids": [distinct_id], "compliance_type": "GDPR"},
                headers={"Authorization": f"Bearer {oauth}"},
                sleep=sleep,
                rng=rng,
            )
    except ConfigurationError as exc:  # its text quotes nothing Mixpanel wrote
        return Deletion(REFUSED, problem=str(exc), configuration=True)
    except RelayError as exc:
        return Deletion(FAILED, problem=str(exc))
    task_id = task_id_of(reply.status, reply.payload)
    if task_id is None:
        said = error_of(_masked(reply.payload, distinct_id))
        problem = f"{WHAT} refused the deletion request (HTTP {reply.status}{said})"
        return Deletion(REFUSED, problem=problem)
    return Deletion(FILED, task_id=task_id)


def file_deletion(
    settings: RelaySettings,
    distinct_id: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> str:
    """File a GDPR deletion request for ``distinct_id``; returns Mixpanel's task id.

    Raises ``ConfigurationError`` without the tokens or when Mixpanel refuses them (exit 3),
    :class:`GdprRequestError` when it refuses the request or never answers as documented.
    """
    deletion = request_deletion(settings, distinct_id, sleep=sleep, rng=rng)
    if deletion.task_id is not None:
        return deletion.task_id
    if deletion.configuration:
        raise ConfigurationError(str(deletion.problem))
    raise GdprRequestError(f"{deletion.problem}; nothing was erased")


def _masked(payload: Any, distinct_id: str) -> Any:
    """``payload`` with the person's id masked in its error text, which may quote the
    request: what relay prints and audits names nobody."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, str) or not distinct_id:
        return payload
    return {**payload, "error": error.replace(distinct_id, "<the person's id>")}


def task_id_of(status: int, payload: Any) -> str | None:
    """The task id of a documented success answer, ``None`` for anything else.

    ``results`` as an object with ``task_id`` (the spec) or a list whose first item has
    ``tracking_id`` (the docs page); ``status`` ``"ok"`` when present. An id that is not a
    short run of id characters is not Mixpanel's.
    """
    if status not in (200, 201) or not isinstance(payload, dict):
        return None
    if payload.get("status", "ok") != "ok":
        return None
    results = payload.get("results")
    found: object = None
    if isinstance(results, dict):
        found = results.get("task_id")
    elif isinstance(results, list) and results and isinstance(results[0], dict):
        found = results[0].get("tracking_id")
    if isinstance(found, int) and not isinstance(found, bool):
        found = str(found)
    if isinstance(found, str) and _TASK_ID.fullmatch(found):
        return found
    return None
