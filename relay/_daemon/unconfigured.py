"""Rows waiting for a destination these settings do not configure, said when a relay starts.

A row keeps the destination ``track()`` gave it. Once that destination leaves the settings (a
table removed from ``RELAY_DESTINATIONS_FILE``, a typo, a router naming a project not yet
configured here, every project named and ``RELAY_MIXPANEL_*`` emptied so that ``default`` is
gone), no relay of these settings claims its rows: they wait, silently, for ever. ``relay run``
(at its first contact with the database) and ``relay drain`` (before it claims anything) log
one warning per such destination with the number of rows waiting. A destination's name and a
count are all it says: never a row, its properties or its ids. ``relay stats`` shows the same.
"""

from __future__ import annotations

import structlog
from sqlalchemy.engine import Engine

from relay._config import RelaySettings
from relay._store import transaction
from relay._store.stats import pending_by_destination

logger = structlog.get_logger("relay.destinations")


def warn_unconfigured_destinations(engine: Engine, settings: RelaySettings) -> dict[str, int]:
    """Log ``destination_not_configured`` (WARNING) once per destination that pending rows go
    to and ``settings.destination_names()`` does not list, with the rows' count; return them.

    One grouped read of the pending index. Raises what the store raises when the database
    cannot be read (the caller's start-up handles it as any other first contact).
    """
    configured = settings.destination_names()
    with transaction(engine) as conn:
        waiting = pending_by_destination(conn, excluding=configured)
    for name, count in waiting.items():
        logger.warning(
            "destination_not_configured",
            destination=name,
            pending=count,
            configured=list(configured),
            hint="no relay with these settings delivers these rows: configure the destination "
            "(RELAY_DESTINATIONS_FILE, or RELAY_MIXPANEL_* for default) or move them (relay "
            "reroute --organization ID --to NAME)",
        )
    return waiting
