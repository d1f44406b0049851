"""Profile-update drain rate next to the event drain rate, on PostgreSQL, same invocation.

Loads ``--rows`` pending rows of one kind into a scratch database and drains them in this
process with the relay's own :class:`relay._delivery.drain.Drainer` against the in-process
stand-in over loopback HTTP (``/import`` for events, ``/engage`` for profile updates),
alternating the modes run by run on a truncated table:

* ``events``: tracked-event rows (the baseline), with the project token set, so every drain
  tick also runs the (empty) profile claim;
* ``events, no token``: the same without a project token: no profile pass at all, which
  measures what the profile claim costs the event drain;
* ``profiles, 1 update each``: one ``$set`` for each of ``--rows`` distinct users;
* ``profiles, 10 per profile``: ``--rows / 10`` users with ten ``$set``s each, which the
  per-profile order sends one per profile per claim (ten claims at least).

Reported: median rows/s per mode and its ratio to ``events``.

    .venv/bin/python bench/profile_drain.py [--rows 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import uuid
from typing import Any

import orjson
import sqlalchemy as sa
from _db import scratch_postgres, settle, truncate
from _stats import machine, median, print_table

from relay._config import RelaySettings
from relay._database import create_engine
from relay._delivery.drain import Drainer
from relay._logging import configure_logging
from relay._mixpanel.client import MixpanelImportClient
from relay._store import insert_rows
from relay._store.profiles import profile_key, profile_row
from relay._tables import RowKind
from relay.testing.mixpanel_standin import MixpanelStandin

MODES = (
    "events",
    "events, no token (no profile pass)",
    "profiles, 1 update each",
    "profiles, 10 per profile",
)


def _event_rows(count: int, now: dt.datetime) -> list[dict[str, Any]]:
    time_ms = int((time.time() - 60) * 1000)
    return [
        {
            "insert_id": str(uuid.uuid4()),
            "event": "svc.bench.thing_done",
            "distinct_id": f"user-{n}",
            "time_ms": time_ms,
            "properties": orjson.dumps({"organization_id": "org-1", "n": n}).decode(),
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for n in range(count)
    ]


def _profile_rows(count: int, per_profile: int, now: dt.datetime) -> list[dict[str, Any]]:
    users = count // per_profile
    return [
        profile_row(
            kind=RowKind.USER,
            insert_id=str(uuid.uuid4()),
            operation="$set",
            identity=f"user-{n}",
            key=profile_key(RowKind.USER, f"user-{n}"),
            update_json=orjson.dumps({"$distinct_id": f"user-{n}", "$set": {"step": step}}),
            now=now,
        )
        for step in range(per_profile)
        for n in range(users)
    ]


def _run(engine: sa.Engine, settings: RelaySettings, mode: str, rows: int) -> float:
    truncate(engine)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    if mode.startswith("events"):
        values = _event_rows(rows, now)
        if "no token" in mode:
            settings = settings.model_copy(update={"mixpanel_project_token": None})
    else:
        values = _profile_rows(rows, 1 if "1 update" in mode else 10, now)
    with engine.begin() as conn:
        insert_rows(conn, values)  # the store's own insert: properties as their JSON text
    settle(engine)
    with MixpanelImportClient(settings) as client:
        drainer = Drainer(engine, client, settings)
        started = time.perf_counter()
        delivered = 0
        while delivered < len(values):
            result = drainer.drain_until_idle()
            delivered += result.delivered
            if result.claimed == 0:
                break
        seconds = time.perf_counter() - started
        drainer.close()
    if delivered != len(values):
        sys.exit(f"{mode}: delivered {delivered} of {len(values)}")
    return len(values) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    with scratch_postgres() as url, MixpanelStandin() as standin:
        engine = create_engine(url)
        settings = RelaySettings(
            database_url=url,
            mixpanel_api_url=standin.url,
            mixpanel_project_id=standin.project_id,
            mixpanel_service_account_username=standin.username,
            mixpanel_service_account_secret=standin.secret,
            mixpanel_project_token=standin.project_token,
            log_level="WARNING",
        )
        configure_logging(settings)
        for run in range(args.runs):
            for mode in MODES:
                rate = _run(engine, settings, mode, args.rows)
                rates[mode].append(rate)
                print(f"run {run + 1} {mode}: {rate:,.0f} rows/s", file=sys.stderr)
                standin.reset()
        engine.dispose()
    base = median(rates["events"])
    print(machine())
    print_table(
        ["mode", "median rows/s", "vs events"],
        [[m, f"{median(rates[m]):,.0f}", f"{median(rates[m]) / base:.2f}x"] for m in MODES],
    )


if __name__ == "__main__":
    main()
