"""Poison rows and future times: a row that grew in storage never wedges the relay.

PostgreSQL's JSONB writes numbers out in full: 437 KB of ``1e308`` floats come back as 20 MB of
text. Rows like that are forged here directly in SQL (as an older relay, which checked only the
JSON it built, could have stored them), mixed with normal rows and with rows that grow but stay
sendable. A real ``relay drain`` must dead-letter the poison rows alone, with their reason,
deliver every other row exactly once, and stay under 200 MB of RSS throughout.

The second scenario drives :meth:`relay._delivery.drain.Drainer.drain_once` with an injected ``now``
(the stand-in shares that clock): rows whose ``time`` is ahead are not sent before their time,
however they were written.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import sqlalchemy as sa
from ledger import Committed, Ledger
from rig import RELAY_EXECUTABLE, RelayLauncher, SurveyEvents, commit_backlog, state_counts
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from relay._config import RelaySettings
from relay._delivery.drain import Drainer
from relay._event.properties import datetime_to_timestamp_ms
from relay._mixpanel.client import MixpanelImportClient
from relay._tables import OutboxState, outbox
from relay._tracking import track
from relay.testing.mixpanel_standin import MixpanelStandin

#: 62,500 floats of 1e308: 437 KB as JSON, 20 MB as PostgreSQL renders it. No request carries it.
POISON_FLOATS = [[1e308] * 250] * 250
#: 1,250 such floats: 9 KB as JSON, 390 KB as stored; grown, but one request carries it.
GROWN_FLOATS = {f"f{i}": [1e308] * 250 for i in range(5)}
NORMAL = 3_000
CHUNK = 250
POISON = 10
GROWN = 24
RSS_LIMIT_BYTES = 200 * 2**20
#: The old relay needed minutes and gigabytes here; a fixed relay drains it in seconds.
DRAIN_TIMEOUT_SECONDS = 180.0
RSS_SAMPLE_SECONDS = 0.02


def _forge(
    engine: Engine, events: SurveyEvents, extra: dict[str, Any], *, now: dt.datetime
) -> tuple[str, Committed]:
    """Insert one row as an older relay could have: its JSON small, its stored text huge."""
    call = events.next(occurred_at=now)
    insert_id = str(uuid.uuid4())
    time_ms = datetime_to_timestamp_ms(call.occurred_at)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(outbox).values(
                insert_id=insert_id,
                event=call.event,
                distinct_id=call.distinct_id,
                time_ms=time_ms,
                properties={**call.properties, **extra},
                state=OutboxState.PENDING.value,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
    return insert_id, Committed(call.event, call.distinct_id, time_ms)


def _drain_measuring_rss(launcher: RelayLauncher, log: Path) -> tuple[int, int]:
    """Run ``relay drain`` to its end; its exit code and the highest RSS seen (bytes)."""
    env = launcher.env(lease_seconds="60")
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [str(RELAY_EXECUTABLE), "drain"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        watched = psutil.Process(proc.pid)
        peak = 0
        deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
        try:
            while proc.poll() is None:
                try:
                    peak = max(peak, watched.memory_info().rss)
                except psutil.NoSuchProcess:
                    break
                if peak > RSS_LIMIT_BYTES or time.monotonic() > deadline:
                    proc.kill()
                    break
                time.sleep(RSS_SAMPLE_SECONDS)  # sampling a process's memory, not waiting
        finally:
            code = proc.wait(timeout=30)
    return code, peak


def test_rows_that_grew_in_storage_end_dead_alone_and_the_relay_stays_small(
    pg_engine: Engine, standin: MixpanelStandin, relays: RelayLauncher, tmp_path: Path
) -> None:
    """Poison rows end dead with their reason; every other row lands once; RSS stays < 200 MB."""
    ledger = Ledger(f"poison rows: {POISON} poison, {GROWN} grown, {NORMAL:,} normal")
    events = SurveyEvents()
    poison_ids: set[str] = set()
    now = dt.datetime.now(dt.UTC)
    for chunk in range(NORMAL // CHUNK):
        commit_backlog(pg_engine, ledger, events, CHUNK)
        if chunk < POISON:
            insert_id, committed = _forge(pg_engine, events, {"floats": POISON_FLOATS}, now=now)
            ledger.record_all_committed({insert_id: committed})
            poison_ids.add(insert_id)
        for _ in range(GROWN // (NORMAL // CHUNK)):
            insert_id, committed = _forge(pg_engine, events, GROWN_FLOATS, now=now)
            ledger.record_all_committed({insert_id: committed})
    ledger.expect_refused(poison_ids)
    with pg_engine.connect() as conn:
        rendered = conn.execute(
            sa.select(sa.func.max(sa.func.octet_length(sa.cast(outbox.c.properties, sa.Text))))
        ).scalar_one()
    assert rendered > 19_000_000, "the forged rows must be the 20 MB kind"

    code, peak_rss = _drain_measuring_rss(relays, tmp_path / "drain.log")
    again, _ = _drain_measuring_rss(relays, tmp_path / "drain-again.log")

    with pg_engine.connect() as conn:
        dead = dict(
            conn.execute(
                sa.select(outbox.c.insert_id, outbox.c.last_error).where(
                    outbox.c.state == OutboxState.DEAD.value
                )
            ).all()
        )
    report = ledger.reconcile(
        standin.accepted_events(),
        notes={
            "relay peak RSS MB": f"{peak_rss / 2**20:.0f}",
            "largest stored properties MB": f"{rendered / 2**20:.1f}",
        },
    )
    print(report)
    log_tail = (tmp_path / "drain.log").read_text(errors="replace")[-2000:]
    assert peak_rss < RSS_LIMIT_BYTES, f"relay reached {peak_rss / 2**20:.0f} MB\n{report}"
    # Exit 1: the poison rows went to the dead letters, which cron must notice.
    assert code == 1, f"relay drain exited {code}:\n{log_tail}"
    assert again == 0
    assert set(dead) == poison_ids
    for reason in dead.values():
        assert reason is not None
        assert reason.startswith("stored properties render to ")
        assert reason.endswith(" bytes, over the request limit of 2097152 bytes")
    assert state_counts(pg_engine) == {
        OutboxState.DELIVERED.value: NORMAL + GROWN,
        OutboxState.DEAD.value: POISON,
    }
    report.assert_clean()
    assert report.same_key_resends == 0, f"a row was sent twice\n{report}"


def test_rows_with_a_time_ahead_are_not_sent_before_their_time(
    pg_engine: Engine, tmp_path: Path
) -> None:
    """Rows ahead of the clock (tracked, forged by an older relay, or requeued) wait their time."""
    # A few seconds past the real clock, so the rows committed below are due at the start.
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=5)
    clock = [start]
    ledger = Ledger("future times")
    events = SurveyEvents()
    with MixpanelStandin(now=lambda: clock[0].timestamp(), retain_events=True) as standin:  # noqa: PLW0108 - reads the clock as it moves
        settings = RelaySettings(
            database_url=pg_engine.url.render_as_string(hide_password=False),
            **{k.removeprefix("RELAY_").lower(): v for k, v in standin.settings_env().items()},
        )
        # Tracked 40 s ahead (within the skew): stored due at its time.
        tracked = events.next(occurred_at=start + dt.timedelta(seconds=40))
        with Session(pg_engine) as session, session.begin():
            tracked_id = track(
                session,
                event=tracked.event,
                distinct_id=tracked.distinct_id,
                properties=tracked.properties,
                occurred_at=tracked.occurred_at,
                strict=True,
            )
        assert tracked_id is not None
        ledger.record_committed(
            tracked_id,
            event=tracked.event,
            distinct_id=tracked.distinct_id,
            time_ms=tracked.time_ms,
        )
        # Written by an older relay: 50 s ahead, yet due now.
        forged_id, forged = _forge(pg_engine, events, {}, now=start)
        forged_ms = datetime_to_timestamp_ms(start + dt.timedelta(seconds=50))
        with pg_engine.begin() as conn:
            conn.execute(
                sa.update(outbox).where(outbox.c.insert_id == forged_id).values(time_ms=forged_ms)
            )
        ledger.record_committed(
            forged_id, event=forged.event, distinct_id=forged.distinct_id, time_ms=forged_ms
        )
        # Due now and on time: sent at once.
        commit_backlog(pg_engine, ledger, events, 5)

        with MixpanelImportClient(settings) as client:
            drainer = Drainer(pg_engine, client, settings, monotonic=lambda: 0.0)
            sent_by: dict[int, set[str]] = {}
            for seconds in (0, 39, 40, 49, 50, 60):
                clock[0] = start + dt.timedelta(seconds=seconds)
                drainer.drain_until_idle(clock=lambda: clock[0])
                accepted = standin.accepted_events()
                now_ms = datetime_to_timestamp_ms(clock[0])
                assert all(r["properties"]["time"] <= now_ms for r in accepted), seconds
                sent_by[seconds] = {r["properties"]["$insert_id"] for r in accepted}

    report = ledger.reconcile(standin.accepted_events())
    print(report)
    assert tracked_id not in sent_by[39]
    assert tracked_id in sent_by[40]
    assert forged_id not in sent_by[49]
    assert forged_id in sent_by[50]
    assert len(sent_by[0]) == 5
    report.assert_clean()
    assert report.same_key_resends == 0
