"""Sending profile updates to ``/engage`` (users) and ``/groups`` (groups).

The HTTP side is the ``/import`` client's (deadlines, cancellation, capped answers, Mixpanel's
``failed_records`` filed per row, 401/403/404 stopping the send): only the URL, the encoding
and the authentication differ. Each stored update object gets the project token (``$token``)
and ``$ip: 0`` spliced in at send time (so the token never enters the outbox, and Mixpanel
never geolocates a profile to the relay host; the URL says ``ip=0`` too). The endpoints take
no other credentials. Requests carry at most ``batch_max_events`` (Mixpanel: 2000) updates.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

import orjson
from sqlalchemy.engine import Engine

from relay._config import RelaySettings
from relay._errors import ConfigurationError, EventValidationError
from relay._mixpanel.answers import SendOutcome
from relay._mixpanel.client import MixpanelImportClient
from relay._mixpanel.profile_answers import file_profile_answer
from relay._store import transaction
from relay._store.profiles import profile_updates_waiting
from relay._tables import OutboxEvent, RowKind

#: Where each kind of profile update goes.
PATHS = {RowKind.USER.value: "/engage", RowKind.GROUP.value: "/groups"}


class _ProfileEndpointClient(MixpanelImportClient):
    """The ``/import`` client pointed at ``/engage`` or ``/groups``, token in each update.

    Sent with ``strict=1`` (per-record errors) and not ``verbose=1``; answers are read by
    :func:`relay._mixpanel.profile_answers.file_profile_answer`, which says why.
    """

    _file_answer = staticmethod(file_profile_answer)

    def __init__(
        self, settings: RelaySettings, path: str, *, cancel: threading.Event | None = None
    ) -> None:
        token = settings.mixpanel_project_token
        if token is None or not token.get_secret_value():
            raise ConfigurationError(
                "profile updates need RELAY_MIXPANEL_PROJECT_TOKEN (the project token goes "
                "in every /engage and /groups update)"
            )
        super().__init__(settings, cancel=cancel)
        self._token_member = b'{"$token":' + orjson.dumps(token.get_secret_value()) + b',"$ip":0,'
        self._auth = None
        self._url = f"{settings.mixpanel_base_url}{path}?{urlencode({'strict': '1', 'ip': '0'})}"
        # Plain JSON: the endpoints' documented body; profile requests are small.
        self._gzip_level = 0
        self._headers.pop("Content-Encoding", None)

    def _encode(self, event: OutboxEvent) -> bytes:
        text = event.properties_json.encode()
        if not (text.startswith(b"{") and len(text) > 2):
            raise EventValidationError("stored update is not a JSON object", event=event.event)
        return self._token_member + text[1:].lstrip()


class ProfileClient:
    """Sends claimed profile updates, users to ``/engage`` and groups to ``/groups``."""

    def __init__(self, settings: RelaySettings, *, cancel: threading.Event | None = None) -> None:
        self._clients = {
            kind: _ProfileEndpointClient(settings, path, cancel=cancel)
            for kind, path in PATHS.items()
        }

    def close(self) -> None:
        """Close both HTTP clients."""
        for client in self._clients.values():
            client.close()

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
            _token_refusals_are_auth_errors(outcome)
            total.delivered.extend(outcome.delivered)
            total.rejected.update(outcome.rejected)
            total.retry.update(outcome.retry)
            total.unsent.extend(outcome.unsent)
            total.requests.extend(outcome.requests)
            total.auth_error = total.auth_error or outcome.auth_error
        return total


#: ``failed_records`` reason of an update Mixpanel refused for its ``$token``.
_TOKEN_REFUSED = "$token:"  # noqa: S105 - a field name, not a secret


def _token_refusals_are_auth_errors(outcome: SendOutcome) -> None:
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
        "Mixpanel refused the project token in profile updates: check RELAY_MIXPANEL_PROJECT_TOKEN"
    )


def require_profile_token(engine: Engine, settings: RelaySettings) -> None:
    """Raise ``ConfigurationError`` when profile updates wait and no project token is set.

    Called at start by the daemon and ``relay drain`` (exit 3): without the token the updates
    could never be sent, and the relay would otherwise run as if all were well.
    """
    token = settings.mixpanel_project_token
    if token is not None and token.get_secret_value():
        return
    with transaction(engine) as conn:
        waiting = profile_updates_waiting(conn)
    if waiting:
        raise ConfigurationError(
            f"{waiting} profile update(s) wait in the outbox and RELAY_MIXPANEL_PROJECT_TOKEN "
            "is not set: /engage and /groups take the project token in every update"
        )
