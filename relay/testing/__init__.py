"""Test support for host applications and for relay's own tests.

- :mod:`relay.testing.plugin`: the pytest plugin. Enable it in your ``conftest.py`` with
  ``pytest_plugins = ["relay.testing.plugin"]``: every test then runs with strict tracking,
  and the ``relay_outbox`` fixture (:class:`OutboxCapture`) reads back the events tracked so
  far as :class:`CapturedEvent` values, including those in the test's uncommitted transaction;
  ``mixpanel_standin`` and ``relay_drain`` (:class:`EagerDrain`) drain committed events to a
  stand-in on demand.
- :mod:`relay.testing.mixpanel_standin`: :class:`MixpanelStandin`, a real HTTP server on
  loopback that answers like Mixpanel's ``/import`` and records what it accepted;
  :meth:`MixpanelStandin.ingested` lists each accepted record as :class:`IngestedEvent` (its
  dedup key, whether Mixpanel overwrote its time, would geolocate it or truncate a string).
  For data residency run one per destination (``MixpanelStandin(region="eu")``) and
  configure a relay with :func:`write_destinations_file`.
- :class:`relay._directory.StaticEmployeeDirectory`: an in-memory employee directory for a
  host's tracking helpers.

The names above are imported on first use, so ``import relay.testing`` stays cheap and pulls
in neither pytest nor the HTTP server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from relay.testing.mixpanel_standin import (
        IngestedEvent,
        MixpanelStandin,
        RequestRecord,
        StandinStats,
        write_destinations_file,
    )
    from relay.testing.plugin import CapturedEvent, EagerDrain, OutboxCapture

__all__ = [
    "CapturedEvent",
    "EagerDrain",
    "IngestedEvent",
    "MixpanelStandin",
    "OutboxCapture",
    "RequestRecord",
    "StandinStats",
    "write_destinations_file",
]

_LAZY = {
    "CapturedEvent": "relay.testing.plugin",
    "EagerDrain": "relay.testing.plugin",
    "OutboxCapture": "relay.testing.plugin",
    "IngestedEvent": "relay.testing.mixpanel_standin",
    "MixpanelStandin": "relay.testing.mixpanel_standin",
    "RequestRecord": "relay.testing.mixpanel_standin",
    "StandinStats": "relay.testing.mixpanel_standin",
    "write_destinations_file": "relay.testing.mixpanel_standin",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
