"""relay's Lexicon uploads stay under the limits rate-limits.mdx documents."""

from __future__ import annotations

from typing import Any

import pytest

from relay._errors import RelayError
from relay._mixpanel.app_api import Pacing
from relay._mixpanel.lexicon import MAX_UPDATES_PER_MINUTE, PACING, chunks, updates_in


def _entry(name: str, properties: int) -> dict[str, Any]:
    schema = {"properties": {f"p{i}": {"type": "string"} for i in range(properties)}}
    return {"entityType": "event", "name": name, "schemaJson": schema}


def test_an_upload_is_cut_into_chunks_under_4000_events_and_properties() -> None:
    """3,000 events of 2 properties (9,000 updates) go in chunks of under 4,000, in order."""
    entries = [_entry(f"svc.e{i}.done", 2) for i in range(3000)]
    parts = chunks(entries)
    assert [e for part in parts for e in part] == entries
    assert all(sum(map(updates_in, part)) < MAX_UPDATES_PER_MINUTE for part in parts)
    assert len(parts) == 3


def test_an_event_with_more_properties_than_a_minute_allows_is_refused() -> None:
    """An event whose properties alone reach 4,000 updates cannot be uploaded within the limits."""
    with pytest.raises(RelayError, match="under 4000"):
        chunks([_entry("svc.big.done", 3999)])


def test_retry_pauses_start_at_the_documented_pace_and_are_bounded() -> None:
    """Lexicon retries start 12 s apart (5 requests a minute) and a call has a finite bound."""
    assert PACING.first == 12.0
    pacing = Pacing(attempts=3, first=1.0, longest=8.0, jitter=0.0)
    assert pacing.bound(deadline_seconds=2.0) == 3 * 2.0 + 1.0 + 2.0
