"""The stand-in's read side: what it accepted, the Lexicon it holds, profiles and GDPR jobs.

A mixin of :class:`MixpanelStandin`, each method handing over to the store that owns the data
(``_ledger``, ``_lexicon``, ``_profiles``, ``_gdpr``).
"""

from __future__ import annotations

from typing import Any

from relay.testing.mixpanel_standin._gdpr import GdprJob, GdprJobs
from relay.testing.mixpanel_standin._ledger import (
    IngestedEvent,
    Ledger,
    RequestRecord,
    StandinStats,
)
from relay.testing.mixpanel_standin._lexicon import LexiconRequest, LexiconStore
from relay.testing.mixpanel_standin._profiles import ProfileRequest, ProfileStore
from relay.testing.mixpanel_standin._rules import Key


class StandinViews:
    """Queries of a running (or stopped) stand-in; all thread-safe."""

    _ledger: Ledger
    _lexicon: LexiconStore
    _profiles: ProfileStore
    _gdpr: GdprJobs

    def accepted_events(self) -> list[dict[str, Any]]:
        """Every accepted record, in arrival order, re-sends included."""
        return self._ledger.accepted_events()

    def unique_events(self) -> dict[Key, dict[str, Any]]:
        """Latest accepted record per dedup key (event, distinct_id, time in ms, ``$insert_id``)."""
        return self._ledger.unique_events()

    def ingested(self) -> list[IngestedEvent]:
        """Every accepted record as Mixpanel would store it, in arrival order, re-sends included.

        Each comes with its dedup key, the time as sent, whether its key was already stored,
        whether Mixpanel would geolocate it and which strings it would truncate: what a test
        needs to prove the relay sends no future time, no geolocatable event, no long string.
        """
        return self._ledger.ingested()

    def stats(self) -> StandinStats:
        """Counters since start or the last ``reset``."""
        return self._ledger.stats()

    def request_log(self) -> list[RequestRecord]:
        """Every ingestion request, in the order answered."""
        return self._ledger.request_log()

    def lexicon_entries(self) -> list[dict[str, Any]]:
        """The Lexicon schemas held, as ``SchemaEntry`` objects sorted by entity type and name."""
        return self._lexicon.entries()

    def lexicon_requests(self) -> list[LexiconRequest]:
        """Every Lexicon Schemas API request, in the order answered, with its JSON body."""
        return self._lexicon.requests()

    def profiles(self) -> dict[tuple[str, str, str], dict[str, Any]]:
        """User and group profiles built from ``/engage`` and ``/groups`` updates, by key.

        A key is ``("user", "", distinct_id)`` or ``("group", group_key, group_id)``.
        """
        return self._profiles.profiles()

    def profile_requests(self) -> list[ProfileRequest]:
        """Every ``/engage`` and ``/groups`` request, in the order answered."""
        return self._profiles.requests()

    def gdpr_jobs(self) -> list[GdprJob]:
        """Every GDPR deletion and retrieval job, in creation order."""
        return self._gdpr.jobs()

    def complete_gdpr_jobs(self) -> list[GdprJob]:
        """Run every pending GDPR job (a deletion drops its users' profiles); those run."""
        return self._gdpr.run_pending(self._profiles.delete_users)
