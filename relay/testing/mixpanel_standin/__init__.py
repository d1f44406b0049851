"""A Mixpanel stand-in: an HTTP server on loopback enforcing ``/import``'s documented contract.

It answers like Mixpanel (status codes and bodies from Mixpanel's ingestion spec), judges every
record by Mixpanel's published rules (the pure functions of ``_rules``: required fields, ids,
time range, invalid UTF-8, nesting, key/element counts and the 8KB limit on list and object
values, each failing its record alone), stores a future ``time`` as Mixpanel does (overwritten
with the ingestion time, so the dedup key changes), deduplicates by (event, distinct_id, time,
``$insert_id``) and records what it accepted, so tests and benchmarks can check that nothing
was lost or invented. ``ingested()`` adds what ingestion did to each record: its key, the time
as sent, whether it was a duplicate, whether Mixpanel would geolocate it and which strings it
would truncate.

Faults (errors, delays, outages, per-record refusals) are injected from Python or, for a
stand-in running in another process, over HTTP: ``GET /_standin/stats``, ``GET
/_standin/events`` (``ingested()`` as JSON), ``POST /_standin/reset`` and ``POST
/_standin/faults`` with a JSON body such as ``[{"op": "fail_next", "status": 503, "times": 2},
{"op": "set_outage", "status": 429, "seconds": 5}]`` (see ``MixpanelStandin.apply_faults``).

It also serves the Lexicon Schemas API (``/api/app/projects/{projectId}/schemas...``, see
``_lexicon``) and keeps what was uploaded: ``lexicon_entries()``, ``GET /_standin/lexicon``;
profile updates on ``/engage`` and ``/groups`` (``$set``, ``$set_once``, ``$add``, ``$union``,
``$append``, ``$remove``, ``$unset``, ``$delete``; see ``_profiles``), keeping the profiles
built: ``profiles()``, ``GET /_standin/profiles``; and the GDPR API's deletions and retrievals
(``/api/app/data-deletions/v3.0``, ``/api/app/data-retrievals/v3.0``; see ``_gdpr``):
``gdpr_jobs()``, ``complete_gdpr_jobs()``, ``GET /_standin/gdpr``.

Data residency: ``MixpanelStandin(region="eu")`` plays one region's servers; run one per
destination (each keeps what it received) and write their ``RELAY_DESTINATIONS_FILE`` with
``write_destinations_file``. ``move_project(region)`` moves the project to another region
(the app API answers 404 for it, ingestion 401) and ``refuse_credentials()`` answers 401 to
every request until ``refuse_credentials(False)``; over HTTP, the fault ops
``refuse_credentials`` and ``move_project``.

``latency_ms`` holds every ``/import`` answer as a real round trip would, and ``rate_limit``
caps the project's events per second over a rolling window with Mixpanel's documented 429
(``_ratecap``): to rehearse a backfill against the per-project cap.

The stand-in is an independent reading of Mixpanel's documents: it imports nothing of relay's
own rules (``relay._event.limits`` and the like), so a mistake there is not repeated here.

Layout: ``_rules`` (per-record rules, pure), ``_wire`` (bodies, answers, credentials),
``_ingest`` (``/import``), ``_faults``, ``_ratecap``, ``_ledger`` (what was accepted),
``_lexicon`` and ``_lexicon_rules``, ``_profiles`` and ``_profile_rules``, ``_gdpr``,
``_control`` (``/_standin/...``), ``_http`` (the server), ``_standin``
(:class:`MixpanelStandin`, wiring them), ``_views`` (its queries), ``_cli``.

Run ``python -m relay.testing.mixpanel_standin --port 8765`` to serve in the foreground; the
first line printed is the base URL.
"""

from __future__ import annotations

from relay.testing.mixpanel_standin._cli import main
from relay.testing.mixpanel_standin._faults import TIMEOUT, Outage
from relay.testing.mixpanel_standin._gdpr import GdprJob
from relay.testing.mixpanel_standin._ledger import (
    NO_ANSWER,
    IngestedEvent,
    RequestRecord,
    StandinStats,
)
from relay.testing.mixpanel_standin._lexicon import LexiconRequest
from relay.testing.mixpanel_standin._profiles import ProfileRequest
from relay.testing.mixpanel_standin._rules import (
    BANNED_IDS,
    MAX_FUTURE_MS,
    MAX_INSERT_ID_LENGTH,
    MAX_PROPERTIES,
    MAX_PROPERTY_NAME_LENGTH,
    MIN_TIME_MS,
    SECONDS_THRESHOLD,
    TRACK_MAX_AGE_MS,
    Key,
)
from relay.testing.mixpanel_standin._standin import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_EVENTS,
    REGIONS,
    MixpanelStandin,
    write_destinations_file,
)

__all__ = [
    "BANNED_IDS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_EVENTS",
    "MAX_FUTURE_MS",
    "MAX_INSERT_ID_LENGTH",
    "MAX_PROPERTIES",
    "MAX_PROPERTY_NAME_LENGTH",
    "MIN_TIME_MS",
    "NO_ANSWER",
    "REGIONS",
    "SECONDS_THRESHOLD",
    "TIMEOUT",
    "TRACK_MAX_AGE_MS",
    "GdprJob",
    "IngestedEvent",
    "Key",
    "LexiconRequest",
    "MixpanelStandin",
    "Outage",
    "ProfileRequest",
    "RequestRecord",
    "StandinStats",
    "main",
    "write_destinations_file",
]
