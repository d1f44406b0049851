"""Which destinations a per-project command (``relay forget --mixpanel``, ``relay events
push``) acts on, and how each one's settings are spelled in messages.

Every configured destination is acted on, except ``default`` when it has no Mixpanel
setting of its own at all while other destinations are configured: a deployment whose
projects are all named (``us``, ``eu``) leaves ``RELAY_MIXPANEL_*`` empty, and there is then
no ``default`` project to file with or push to. It is reported as skipped, never silently
dropped. A ``default`` with any Mixpanel setting is acted on (and refused when incomplete).
"""

from __future__ import annotations

from relay._config import RelaySettings
from relay._destinations import setting_label
from relay._tables import DEFAULT_DESTINATION


def setting_name(destination: str, field: str) -> str:
    """Where ``field`` (``GDPR_TOKEN``, ``PROJECT_ID``, ...) of ``destination`` is set:
    ``RELAY_MIXPANEL_<FIELD>`` for ``default``; for another destination its secret's variable
    ``RELAY_DESTINATION_<NAME>_<FIELD>`` (``-`` written ``_``), or the key of its table
    (``project_id of [destinations.eu]``) for a field no variable sets."""
    if destination == DEFAULT_DESTINATION:
        return f"RELAY_MIXPANEL_{field.upper()}"
    return setting_label(destination, field.lower())


def acted_on(settings: RelaySettings) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(names to act on, names skipped)``, in ``settings.destination_names()`` order.

    ``default`` is skipped (and reported so) when other destinations are configured and it
    has no project setting at all: ``destination_names()`` leaves it out then.
    """
    names = settings.destination_names()
    if DEFAULT_DESTINATION in names or not settings.destinations:
        return names, ()
    return names, (DEFAULT_DESTINATION,)
