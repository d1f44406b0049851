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
    """``(names to act on, names skipped)``, in ``settings.destination_names()`` order.

    ``default`` is skipped (and reported so) when other destinations are configured and it
    has no project setting at all: ``destination_names()`` leaves it out then.
    """
    names = settings.destination_names()
    if DEFAULT_DESTINATION in names or not settings.destinations:
        return names, ()
    return names, (DEFAULT_DESTINATION,)
