"""The one place a drain is built and closed: the Mixpanel clients, the drainer, its pacing.

The daemon, ``relay drain``, the pytest plugin and the demo all drain through
:func:`open_drainer`, so each gets the same pieces and nothing stays open after it: the
``/import`` client, and the profile client the drainer opens on first need.

A drainer serves one destination (one Mixpanel project, data residency): its clients are
built from ``settings.for_destination(name)``, and it has its own limiter (Mixpanel's cap is
per project), its own shared throttle row and, in the daemon, its own credentials pause; so a
project that refuses the credentials, throttles or answers slowly holds back only its rows.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from sqlalchemy.engine import Engine

from relay._config import RelaySettings
from relay._delivery.drain import Drainer
from relay._delivery.limiter import limiter_for
from relay._delivery.results import DrainObserver
from relay._mixpanel.client import MixpanelImportClient
from relay._tables import DEFAULT_DESTINATION


@contextlib.contextmanager
def open_drainer(
    engine: Engine,
    settings: RelaySettings,
    *,
    destination: str = DEFAULT_DESTINATION,
    observer: DrainObserver | None = None,
    stop: threading.Event | None = None,
    paced: bool = True,
) -> Iterator[Drainer]:
    """A :class:`Drainer` on ``engine`` for ``destination``, with its Mixpanel clients, closed
    on the way out.

    ``settings`` are the relay's; the drainer and its clients get
    ``settings.for_destination(destination)`` (``RELAY_MIXPANEL_*`` for ``default``).
    ``paced`` (the relay's own commands): ``RELAY_DRAIN_CONCURRENCY`` batches in flight and
    the adaptive limit of ``RELAY_MAX_IN_FLIGHT``, per destination; unpaced (tests, the demo):
    one batch at a time, in order. ``stop`` cuts a request in flight short and hands its rows
    back. Raises ``ConfigurationError`` (before anything is opened) when the destination is
    not configured or its Mixpanel settings are unusable.
    """
    own = settings.for_destination(destination)
    client = MixpanelImportClient(own, cancel=stop)
    try:
        drainer = Drainer(
            engine,
            client,
            own,
            observer=observer,
            stop=stop,
            concurrency=own.drain_concurrency if paced else 1,
            limiter=limiter_for(own) if paced else None,
            destination=destination,
        )
        try:
            yield drainer
        finally:
            drainer.close()
    finally:
        client.close()
