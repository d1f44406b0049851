"""Which destinations a per-project command (``relay forget --mixpanel``, ``relay events
push``) acts on, and how each one's settings are spelled in messages.

Every configured destination is acted on, except ``default`` when it has no Mixpanel
setting of its own at all while other destinations are configured: a deployment whose
projects are all named (``us``, ``eu``) leaves ``RELAY_MIXPANEL_*`` empty, and there is then
no ``default`` project to file with or push to. It is reported as skipped, never silently
dropped. A ``default`` with any Mixpanel setting is acted on (and refused when incomplete).
"""

from __future__ import annotations

from pydantic import SecretStr

from relay._config import RelaySettings
from relay._tables import DEFAULT_DESTINATION


def setting_name(destination: str, field: str) -> str:
    """The variable that sets ``field`` (``GDPR_TOKEN``, ``PROJECT_ID``, ...) of
    ``destination``: ``RELAY_MIXPANEL_<FIELD>`` for ``default``, else
    ``RELAY_DESTINATION_<NAME>_<FIELD>`` (``-`` written ``_``)."""
    field = field.upper()
    if destination == DEFAULT_DESTINATION:
        return f"RELAY_MIXPANEL_{field}"
    return f"RELAY_DESTINATION_{destination.upper().replace('-', '_')}_{field}"


def acted_on(settings: RelaySettings) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(names to act on, names skipped)``, in ``settings.destination_names()`` order."""
    names = settings.destination_names()
    if len(names) > 1 and _default_is_empty(settings):
        return tuple(n for n in names if n != DEFAULT_DESTINATION), (DEFAULT_DESTINATION,)
    return names, ()


def _default_is_empty(settings: RelaySettings) -> bool:
    """Whether ``default`` is ``RELAY_MIXPANEL_*`` with no project setting given at all."""
    if DEFAULT_DESTINATION in settings.destinations:
        return False
    given = (
        settings.mixpanel_project_id,
        settings.mixpanel_service_account_username,
        settings.mixpanel_service_account_secret,
        settings.mixpanel_project_token,
        settings.mixpanel_gdpr_token,
        settings.mixpanel_api_url,
        settings.mixpanel_app_api_url,
    )
    return not any(
        value.get_secret_value() if isinstance(value, SecretStr) else value for value in given
    )
