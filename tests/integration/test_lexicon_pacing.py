"""A large Lexicon upload reaches the stand-in in chunks paced to the documented limits.

The clock and the sleep are pinned (the pacing is computed, not waited for): every request
is real HTTP to the stand-in on loopback.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers.standin import StartStandin

from relay._config import RelaySettings
from relay._mixpanel.lexicon import LexiconClient, updates_in
from relay.testing.mixpanel_standin import MixpanelStandin

PROJECT_ID = "2195193"


class PinnedClock:
    """A monotonic clock that only ``sleep`` moves; it records each sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def standin(start_standin: StartStandin) -> MixpanelStandin:
    """A running stand-in serving the Lexicon Schemas API."""
    return start_standin(project_id=PROJECT_ID)


def _entry(index: int) -> dict[str, Any]:
    properties = {f"p{n}": {"type": "string"} for n in range(2)}
    return {
        "entityType": "event",
        "name": f"svc.event_{index}.done",
        "schemaJson": {"properties": properties},
    }


def test_upload_is_chunked_and_paced_under_the_documented_limits(
    standin: MixpanelStandin,
) -> None:
    """9,000 events and properties go in 3 POSTs of under 4,000 each, a minute apart, and all
    3,000 schemas arrive; no rolling minute holds more than 5 requests."""
    settings = RelaySettings(
        mixpanel_app_api_url=standin.app_api_url,
        mixpanel_project_id=PROJECT_ID,
        mixpanel_service_account_username=standin.username,
        mixpanel_service_account_secret=standin.secret,
    )
    pinned = PinnedClock()
    entries = [_entry(i) for i in range(3000)]
    with LexiconClient(settings, sleep=pinned.sleep, clock=pinned.clock) as client:
        assert client.event_schemas() == []
        totals = client.upload(entries, truncate=False)
    posts = [r for r in standin.lexicon_requests() if r.method == "POST"]
    assert len(posts) == 3
    assert all(sum(map(updates_in, post.body["entries"])) < 4000 for post in posts)
    assert totals["added"] == 3000
    assert len(standin.lexicon_entries()) == 3000
    # The first chunk used the minute's budget: each later one waited for the window to pass.
    assert sum(pinned.slept) >= 120.0
