"""The one place a drain is built and closed: the Mixpanel clients, the drainer, its pacing.

The daemon, ``relay drain``, the pytest plugin and the demo all drain through
:func:`open_drainer`, so each gets the same pieces and nothing stays open after it: the
``/import`` client, and the profile client the drainer opens on first need.
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


@contextlib.contextmanager
def open_drainer(
    engine: Engine,
    settings: RelaySettings,
    *,
    observer: DrainObserver | None = None,
    stop: threading.Event | None = None,
    paced: bool = True,
) -> Iterator[Drainer]:
    """A :class:`Drainer` on ``engine`` with its Mixpanel clients, closed on the way out.

    ``paced`` (the relay's own commands): ``RELAY_DRAIN_CONCURRENCY`` batches in flight and
    the adaptive limit of ``RELAY_MAX_IN_FLIGHT``; unpaced (tests, the demo): one batch at a
    time, in order. ``stop`` cuts a request in flight short and hands its rows back. Raises
    ``ConfigurationError`` (before anything is opened) when the Mixpanel settings are unusable.
    """
    client = MixpanelImportClient(settings, cancel=stop)
    try:
        drainer = Drainer(
            engine,
            client,
            settings,
            observer=observer,
            stop=stop,
            concurrency=settings.drain_concurrency if paced else 1,
            limiter=limiter_for(settings) if paced else None,
        )
        try:
            yield drainer
        finally:
            drainer.close()
    finally:
        client.close()
