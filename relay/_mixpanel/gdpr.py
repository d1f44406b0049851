"""Mixpanel's GDPR API, the one call relay makes: file a deletion (``relay forget --mixpanel``).

``POST {app api}/data-deletions/v3.0?token=<project token>`` with ``Authorization: Bearer
<RELAY_MIXPANEL_GDPR_TOKEN>`` and ``{"distinct_ids": [id], "compliance_type": "GDPR"}``.

The documents give two success answers, and both are read: the spec's ``JobCreated`` (201,
``{"status": "ok", "results": {"task_id": ...}}``) and the docs page's example
(``mixpanel-docs/gdpr-api.mdx``: ``{"status": "ok", "results": [{"tracking_id": ...}]}``);
200 is taken like 201. The page gives a rate of 1 request a second and says to retry a 429
with exponential backoff: :data:`PACING` (5 attempts, pauses 1, 2, 4, 8 s plus up to 1 s of
jitter), so the command ends within ``5 * RELAY_REQUEST_DEADLINE_SECONDS + 19`` seconds.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from relay._config import RelaySettings
from relay._errors import ConfigurationError, GdprRequestError, RelayError
from relay._mixpanel.app_api import Pacing, call, error_of
from relay._mixpanel.http import MixpanelHttp

GDPR_DELETIONS_PATH = "/data-deletions/v3.0"
PACING = Pacing(attempts=5, first=1.0, longest=8.0)
#: The answers are a few hundred bytes; a longer body is not one.
MAX_ANSWER_BYTES = 64 * 1024
#: A task id is an id (the spec's example is a UUID, the page's a 19-digit number).
_TASK_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_HINT = "RELAY_MIXPANEL_GDPR_TOKEN and RELAY_MIXPANEL_PROJECT_TOKEN"
WHAT = "Mixpanel's GDPR API"


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
    oauth = settings.mixpanel_gdpr_token
    token = settings.mixpanel_project_token
    if oauth is None or not oauth.get_secret_value():
        raise ConfigurationError("relay forget --mixpanel needs RELAY_MIXPANEL_GDPR_TOKEN")
    if token is None or not token.get_secret_value():
        raise ConfigurationError("relay forget --mixpanel needs RELAY_MIXPANEL_PROJECT_TOKEN")
    url = (
        f"{settings.mixpanel_app_base_url}{GDPR_DELETIONS_PATH}"
        f"?{urlencode({'token': token.get_secret_value()})}"
    )
    with MixpanelHttp(settings) as http:
        try:
            reply = call(
                http,
                "POST",
                url,
                what=WHAT,
                credentials_hint=_HINT,
                pacing=PACING,
                max_bytes=MAX_ANSWER_BYTES,
                body={"distinct_ids": [distinct_id], "compliance_type": "GDPR"},
                headers={"Authorization": f"Bearer {oauth.get_secret_value()}"},
                sleep=sleep,
                rng=rng,
            )
        except ConfigurationError:
            raise
        except RelayError as exc:
            raise GdprRequestError(f"{exc}; nothing was erased") from None
    task_id = task_id_of(reply.status, reply.payload)
    if task_id is None:
        raise GdprRequestError(
            f"{WHAT} refused the deletion request (HTTP {reply.status}"
            f"{error_of(reply.payload)}); nothing was erased"
        )
    return task_id


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
