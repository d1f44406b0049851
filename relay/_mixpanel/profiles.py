"""Sending profile updates to ``/engage`` (users) and ``/groups`` (groups).

The HTTP side is the one every endpoint shares (:class:`~relay._mixpanel.client.BatchClient`
over :class:`~relay._mixpanel.http.MixpanelHttp`: deadlines, cancellation, capped answers,
401/403/404 stopping the send); a :class:`~relay._mixpanel.client.BatchEndpoint` supplies the
URL, the encoding, the limits and the reading of the spec's answers. Each stored update
object gets the project token (``$token``) and ``$ip: 0`` spliced in at send time (so the
token never enters the outbox, and Mixpanel never geolocates a profile to the relay host;
the URL says ``ip=0`` too). The endpoints take no other credentials. Requests carry at most
``batch_max_events`` updates, and never more than Mixpanel's 2000.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import urlencode

import orjson
from sqlalchemy.engine import Engine

from relay._config import RelaySettings
from relay._errors import ConfigurationError, ProfileUpdateError
from relay._mixpanel.answers import SendOutcome, url_hint
from relay._mixpanel.client import BatchClient, BatchEndpoint
from relay._mixpanel.http import MixpanelHttp
from relay._mixpanel.profile_answers import file_profile_answer
from relay._store import transaction
from relay._store.profiles import profile_updates_waiting
from relay._tables import OutboxEvent, RowKind

#: Where each kind of profile update goes.
PATHS = {RowKind.USER.value: "/engage", RowKind.GROUP.value: "/groups"}
#: "limit ... the total number profile updates that can be sent per request to 2000"
#: (``mixpanel-docs/user-profile-limits.mdx``).
MAX_UPDATES_PER_REQUEST = 2000


def profile_endpoint(settings: RelaySettings, path: str) -> BatchEndpoint:
    """``/engage`` or ``/groups``: ``strict=1&ip=0``, plain JSON, the token in every update.

    Sent with ``strict=1`` (per-record errors) and not ``verbose=1``; answers are read by
    :func:`relay._mixpanel.profile_answers.file_profile_answer`, which says why. Raises
    ``ConfigurationError`` without a project token.
    """
    token = settings.mixpanel_project_token
    if token is None or not token.get_secret_value():
        raise ConfigurationError(
            f"profile updates need {settings.setting_names()['token']} (the project token goes "
            "in every /engage and /groups update)"
        )
    return BatchEndpoint(
        name=path,
        url=f"{settings.mixpanel_base_url}{path}?{urlencode({'strict': '1', 'ip': '0'})}",
        # The endpoints take no credentials but the token inside each update.
        auth=None,
        encode=_update_encoder(token.get_secret_value()),
        read_answer=functools.partial(file_profile_answer, hint=url_hint(settings.setting_names())),
        max_events=min(settings.batch_max_events, MAX_UPDATES_PER_REQUEST),
        max_bytes=settings.batch_max_bytes,
        # Plain JSON: the endpoints' documented body; profile requests are small.
        gzip_level=0,
    )


def _update_encoder(token: str) -> Callable[[OutboxEvent], bytes]:
    """Splice ``$token`` and ``$ip: 0`` in front of a stored update object's members."""
    member = b'{"$token":' + orjson.dumps(token) + b',"$ip":0,'

    def encode(event: OutboxEvent) -> bytes:
        text = event.properties_json.encode()
        if not (text.startswith(b"{") and len(text) > 2):
            raise ProfileUpdateError("stored update is not a JSON object", event=event.event)
        return member + text[1:].lstrip()

    return encode


class ProfileClient:
    """Sends claimed profile updates, users to ``/engage`` and groups to ``/groups``.

    Both endpoints share one :class:`MixpanelHttp` (one deadline, one connection pool).
    """

    def __init__(self, settings: RelaySettings, *, cancel: threading.Event | None = None) -> None:
        endpoints = {kind: profile_endpoint(settings, path) for kind, path in PATHS.items()}
        self._http = MixpanelHttp(settings, cancel=cancel)
        self._clients = {kind: BatchClient(ep, self._http) for kind, ep in endpoints.items()}
        self._token_setting = settings.setting_names()["token"]

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()

    def send(self, updates: Sequence[OutboxEvent], kinds: Mapping[int, str]) -> SendOutcome:
        """Send ``updates`` (``kinds``: row id -> kind); every id lands in one bucket."""
        total = SendOutcome(
            delivered=[], rejected={}, retry={}, unsent=[], auth_error=None, requests=[]
        )
        for kind, client in self._clients.items():
            rows = [u for u in updates if kinds.get(u.id) == kind]
            if not rows:
                continue
            if total.auth_error is not None:
                total.unsent.extend(u.id for u in rows)
                continue
            outcome = client.send(rows)
            _token_refusals_are_auth_errors(outcome, self._token_setting)
            total.delivered.extend(outcome.delivered)
            total.rejected.update(outcome.rejected)
            total.retry.update(outcome.retry)
            total.unsent.extend(outcome.unsent)
            total.throttled.extend(outcome.throttled)
            total.requests.extend(outcome.requests)
            total.auth_error = total.auth_error or outcome.auth_error
        return total


#: ``failed_records`` reason of an update Mixpanel refused for its ``$token``.
_TOKEN_REFUSED = "$token:"  # noqa: S105 - a field name, not a secret


def _token_refusals_are_auth_errors(outcome: SendOutcome, token_setting: str) -> None:
    """Updates refused for their ``$token`` go back unsent, as after a 401.

    The token is the relay's setting, the same in every update: a refusal of it says the
    configuration is wrong, not the update, and dead-lettering would lose every profile
    update queued until someone noticed. They are handed back (attempt returned) and the
    relay pauses as for any credential failure.
    """
    refused = [row_id for row_id, why in outcome.rejected.items() if why.startswith(_TOKEN_REFUSED)]
    if not refused:
        return
    for row_id in refused:
        del outcome.rejected[row_id]
    outcome.unsent.extend(refused)
    outcome.auth_error = outcome.auth_error or (
        f"Mixpanel refused the project token in profile updates: check {token_setting}"
    )


def require_profile_token(engine: Engine, settings: RelaySettings) -> None:
    """Raise ``ConfigurationError`` when profile updates wait for a destination that has no
    project token.

    Called at start by the daemon and ``relay drain`` (exit 3): without the token the updates
    could never be sent, and the relay would otherwise run as if all were well. Each
    destination is judged by its own token and its own rows.
    """
    for name in settings.destination_names():
        token = settings.for_destination(name).mixpanel_project_token
        if token is not None and token.get_secret_value():
            continue
        with transaction(engine) as conn:
            waiting = profile_updates_waiting(conn, destination=name)
        if waiting:
            variable = settings.for_destination(name).setting_names()["token"]
            raise ConfigurationError(
                f"{waiting} profile update(s) wait in the outbox for destination {name} and "
                f"{variable} is not set: /engage and /groups take the project token in every "
                "update"
            )
