"""A hostile endpoint in front of the stand-in: lies, redirects, drips and floods; nothing is lost.

Each scenario puts :class:`HostileEndpoint` (a real server on loopback) between the relay and
the Mixpanel stand-in. The endpoint answers the first request(s) with something that is not
Mixpanel's acknowledgement, then forwards everything to the stand-in. The relay must deliver no
row on the hostile answer, and every row once the stand-in answers: the ledger then shows
lost = phantom = 0. The first tests drive ``MixpanelImportClient`` in-process for exact
outcomes; the scenarios run real ``relay run`` / ``relay drain`` processes.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import psutil
import pytest
import sqlalchemy as sa
from helpers.network import free_port
from hostile import (
    Behaviour,
    HostileEndpoint,
    drip_body,
    drip_headers,
    huge_body,
    redirect,
    respond,
    truncated,
)
from ledger import Ledger, LedgerReport
from pydantic import SecretStr
from rig import (
    RELAY_EXECUTABLE,
    RelayLauncher,
    SurveyEvents,
    attempts_histogram,
    commit_backlog,
    pending_count,
    state_counts,
    wait_until,
)
from sqlalchemy.engine import Engine

from relay._config import RelaySettings
from relay._mixpanel.client import RESPONSE_MAX_BYTES, MixpanelImportClient, SendOutcome
from relay._tables import OutboxEvent, OutboxState, outbox
from relay.testing.mixpanel_standin import MixpanelStandin

EVENTS = 40
READ_TIMEOUT_SECONDS = 2.0
REQUEST_DEADLINE_SECONDS = 3.0
#: The request deadline must be under the lease.
LEASE_SECONDS = 10.0
#: Generous ceiling for a request against a drip-feed: the old code took 46 s or forever.
DEADLINE_CEILING_SECONDS = 12.0
#: The documented systemd TimeoutStopSec; the relay must stop well within it.
STOP_TIMEOUT_SECONDS = 90.0
MIXPANEL_OK = b'{"code":200,"num_records_imported":%d,"status":"OK"}'
HTML = b"<html><body>Please log in to the hotel Wi-Fi</body></html>"
SECRET_QUERY = "sig=do-not-log-me"


@pytest.fixture
def hostile(standin: MixpanelStandin) -> Iterator[HostileEndpoint]:
    """A hostile endpoint on loopback whose unscripted requests reach the stand-in."""
    with HostileEndpoint(upstream=standin.url) as endpoint:
        yield endpoint


def _client_settings(hostile: HostileEndpoint, standin: MixpanelStandin) -> RelaySettings:
    return RelaySettings(
        mixpanel_api_url=hostile.url,
        mixpanel_project_id=standin.project_id,
        mixpanel_service_account_username=standin.username,
        mixpanel_service_account_secret=SecretStr(standin.secret),
        read_timeout_seconds=READ_TIMEOUT_SECONDS,
        request_deadline_seconds=REQUEST_DEADLINE_SECONDS,
    )


def _events(count: int) -> list[OutboxEvent]:
    now_ms = int(time.time() * 1000)
    return [
        OutboxEvent(
            id=n + 1,
            insert_id=f"ins-{n + 1:08d}",
            event="svc.surveys.survey_delivered",
            distinct_id=f"user-{n}",
            time_ms=now_ms - 60_000 - n,
            properties_json='{"organization_id":"org-1"}',
            attempts=0,
        )
        for n in range(count)
    ]


def _send(hostile: HostileEndpoint, standin: MixpanelStandin, count: int = 5) -> SendOutcome:
    with MixpanelImportClient(_client_settings(hostile, standin)) as client:
        return client.send(_events(count))


# --- the client, in-process ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        (respond(200, HTML, content_type="text/html"), "not a JSON object"),
        (respond(200, b""), "empty body"),
        (truncated(200, MIXPANEL_OK % 5, keep=20), "connection error"),
        (respond(200, MIXPANEL_OK[:20]), "not a JSON object"),
        (respond(200, MIXPANEL_OK % 4), "num_records_imported is not the batch size"),
        (respond(200, b'{"ok":true}'), '"code": 200 and "status": "OK"'),
        (respond(200, b'{"code":200,"status":"error"}'), '"code": 200 and "status": "OK"'),
    ],
    ids=["html", "empty", "cut-short", "truncated-json", "wrong-count", "other-json", "not-ok"],
)
def test_a_200_that_is_not_mixpanels_answer_delivers_nothing(
    hostile: HostileEndpoint, standin: MixpanelStandin, behaviour: Behaviour, reason: str
) -> None:
    """A 200 whose body is not Mixpanel's answer for this batch retries it, naming what's wrong."""
    hostile.script(behaviour)
    outcome = _send(hostile, standin)
    assert outcome.delivered == []
    assert sorted(outcome.retry) == [1, 2, 3, 4, 5]
    assert all(reason in error for error in outcome.retry.values()), outcome.retry
    assert not any("Wi-Fi" in error or "html" in error for error in outcome.retry.values())


def test_mixpanels_answer_with_extra_keys_still_delivers(
    hostile: HostileEndpoint, standin: MixpanelStandin
) -> None:
    """Strict on what identifies the answer, lenient on keys Mixpanel may add later."""
    hostile.script(respond(200, b'{"code":200,"status":"OK","num_records_imported":5,"x":[1]}'))
    assert _send(hostile, standin).delivered == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_a_configuration_error_naming_the_target_without_its_query(
    hostile: HostileEndpoint, standin: MixpanelStandin, status: int
) -> None:
    """A 3xx leaves every row unsent and names where it pointed, never the query string."""
    hostile.script(redirect(status, f"https://elsewhere.example/import?{SECRET_QUERY}"))
    outcome = _send(hostile, standin)
    assert outcome.unsent == [1, 2, 3, 4, 5]
    assert (outcome.delivered, outcome.retry, outcome.rejected) == ([], {}, {})
    assert outcome.auth_error is not None
    assert outcome.auth_error.startswith(
        f"HTTP {status}: redirected to https://elsewhere.example/import;"
    )
    assert SECRET_QUERY not in outcome.auth_error
    assert hostile.proxied == 0


def _failed(*records: dict[str, Any], imported: int | None) -> Behaviour:
    body: dict[str, Any] = {
        "code": 400,
        "error": "some data points in the request failed validation",
        "failed_records": list(records),
        "status": "Bad Request",
    }
    if imported is not None:
        body["num_records_imported"] = imported
    return respond(400, orjson.dumps(body))


def test_failed_record_is_matched_by_insert_id_when_its_index_disagrees(
    hostile: HostileEndpoint, standin: MixpanelStandin
) -> None:
    """Index 1 with row 2's $insert_id refuses row 2 (id 3) and delivers row 1 (id 2)."""
    hostile.script(
        _failed(
            {"index": 1, "$insert_id": "ins-00000003", "field": "properties.x", "message": "bad"},
            imported=4,
        )
    )
    outcome = _send(hostile, standin)
    assert outcome.rejected == {3: "properties.x: bad"}
    assert outcome.delivered == [1, 2, 4, 5]


def test_failed_record_without_an_insert_id_is_matched_by_index(
    hostile: HostileEndpoint, standin: MixpanelStandin
) -> None:
    """A record naming only an index refuses the row at that position."""
    hostile.script(_failed({"index": 4, "message": "bad"}, imported=4))
    outcome = _send(hostile, standin)
    assert outcome.rejected == {5: "record: bad"}
    assert outcome.delivered == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("records", "imported", "problem"),
    [
        ([{"index": 0, "$insert_id": "ins-99999999"}], 4, "an $insert_id not in the batch"),
        (
            [{"index": 0, "$insert_id": "ins-00000001"}, {"index": 3, "insert_id": "ins-00000001"}],
            3,
            "two failed records name the same row",
        ),
        ([{"index": 0}, {"index": 0}], 3, "two failed records name the same row"),
        ([{"index": 1}], 2, "num_records_imported plus failed_records"),
        ([{"index": 9}], 4, "neither an $insert_id nor a usable index"),
        ([], 5, "not a non-empty list"),
    ],
    ids=["unknown-id", "duplicate-id", "duplicate-index", "count", "bad-index", "empty"],
)
def test_failed_records_that_do_not_add_up_retry_the_whole_batch(
    hostile: HostileEndpoint,
    standin: MixpanelStandin,
    records: list[dict[str, Any]],
    imported: int,
    problem: str,
) -> None:
    """An inconsistent 400 delivers and refuses nothing on a guess: the whole batch retries."""
    hostile.script(_failed(*records, imported=imported))
    outcome = _send(hostile, standin)
    assert (outcome.delivered, outcome.rejected) == ([], {})
    assert sorted(outcome.retry) == [1, 2, 3, 4, 5]
    assert all(problem in error for error in outcome.retry.values()), outcome.retry


def test_a_400_that_is_not_mixpanels_json_is_retried(
    hostile: HostileEndpoint, standin: MixpanelStandin
) -> None:
    """A proxy's 400 page says nothing about the rows: they are retried, not dead-lettered."""
    hostile.script(respond(400, HTML, content_type="text/html"))
    outcome = _send(hostile, standin)
    assert (outcome.delivered, outcome.rejected) == ([], {})
    assert sorted(outcome.retry) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("behaviour", [drip_headers(interval=0.5), drip_body(interval=0.5)])
def test_a_drip_feed_ends_at_the_request_deadline(
    hostile: HostileEndpoint, standin: MixpanelStandin, behaviour: Behaviour
) -> None:
    """A server dripping a byte per half second (inside the read timeout) is cut at the deadline."""
    hostile.script(behaviour)
    started = time.monotonic()
    outcome = _send(hostile, standin)
    elapsed = time.monotonic() - started
    assert elapsed < DEADLINE_CEILING_SECONDS
    assert outcome.retry == dict.fromkeys(
        [1, 2, 3, 4, 5], f"timeout: no complete answer within {REQUEST_DEADLINE_SECONDS:g} s"
    )


def test_an_oversized_body_is_not_read(hostile: HostileEndpoint, standin: MixpanelStandin) -> None:
    """A body over the cap is a retryable failure; the connection is dropped, not drained:
    the server got rid of a small part of the 200 MB it offered (the cap plus what the
    sockets' buffers hold) before the client hung up."""
    body = huge_body(total_bytes=200 * 1024 * 1024)
    hostile.script(body)
    outcome = _send(hostile, standin)
    assert body.sent < body.total_bytes // 4
    assert outcome.retry == dict.fromkeys(
        [1, 2, 3, 4, 5], f"HTTP 200 with a body over {RESPONSE_MAX_BYTES} bytes"
    )


# --- real relay processes and the ledger ---------------------------------------------------------


def _hostile_relays(relays: RelayLauncher, hostile: HostileEndpoint) -> RelayLauncher:
    """The rig's launcher, but with relays pointed at the hostile endpoint."""
    original = relays.standin.settings_env

    def settings_env() -> dict[str, str]:
        return {**original(), "RELAY_MIXPANEL_API_URL": hostile.url}

    relays.standin.settings_env = settings_env  # type: ignore[method-assign]
    return relays


def _healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def _delivered(engine: Engine) -> int:
    return state_counts(engine).get(OutboxState.DELIVERED.value, 0)


def _rows_with_error(engine: Engine, like: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(outbox).where(outbox.c.last_error.like(like))
            ).scalar_one()
        )


def _run_scenario(
    engine: Engine,
    standin: MixpanelStandin,
    relays: RelayLauncher,
    hostile: HostileEndpoint,
    *,
    name: str,
    behaviours: list[Behaviour],
    error_like: str,
) -> LedgerReport:
    """Commit a batch, let the endpoint lie ``behaviours``, check nothing was delivered on a lie,
    then let the stand-in answer and reconcile the ledger."""
    ledger = Ledger(f"hostile endpoint: {name}")
    commit_backlog(engine, ledger, SurveyEvents(), EVENTS)
    hostile.script(*behaviours)
    relay = _hostile_relays(relays, hostile).start(
        read_timeout_seconds=str(READ_TIMEOUT_SECONDS),
        request_deadline_seconds=str(REQUEST_DEADLINE_SECONDS),
        lease_seconds=str(LEASE_SECONDS),
    )
    wait_until(
        lambda: _rows_with_error(engine, error_like) == EVENTS,
        timeout=60,
        what=f"the relay to record the hostile answer ({error_like})",
        context=relays.diagnosis,
    )
    delivered_on_a_lie = _delivered(engine)
    wait_until(
        lambda: pending_count(engine) == 0 or not relay.alive,
        timeout=120,
        what="the backlog to drain once the stand-in answers",
        context=relays.diagnosis,
    )
    exit_code = relay.stop()
    report = ledger.reconcile(
        standin.accepted_events(),
        notes={
            "hostile answers": hostile.hostile_answers,
            "proxied": hostile.proxied,
            "outbox states": state_counts(engine),
            "attempts per row": attempts_histogram(engine),
        },
    )
    print(f"\n{report}")
    context = f"\n{report}\n" + "\n".join(relays.logs())
    report.assert_clean()
    assert delivered_on_a_lie == 0, context
    assert exit_code == 0, context
    assert state_counts(engine) == {OutboxState.DELIVERED.value: EVENTS}, context
    return report


@pytest.mark.parametrize(
    ("behaviour", "error_like"),
    [
        (respond(200, HTML, content_type="text/html"), "HTTP 200 with a body that is not%"),
        (respond(200, b""), "HTTP 200 with an empty body%"),
        (truncated(200, MIXPANEL_OK % EVENTS, keep=25), "connection error%"),
        (respond(200, MIXPANEL_OK % (EVENTS - 1)), "HTTP 200 whose num_records_imported%"),
        (drip_headers(interval=0.5), "timeout: no complete answer%"),
        (drip_body(interval=0.5), "timeout: no complete answer%"),
        (huge_body(total_bytes=100 * 1024 * 1024), "HTTP 200 with a body over%"),
        (
            _failed({"index": 1, "$insert_id": "not-in-this-batch"}, imported=EVENTS - 1),
            "HTTP 400: answer inconsistent%",
        ),
    ],
    ids=[
        "html-200",
        "empty-200",
        "truncated-200",
        "wrong-count",
        "header-drip",
        "body-drip",
        "oversized",
        "mismatched-failed-records",
    ],
)
def test_hostile_answer_delivers_nothing_and_the_stand_in_then_gets_everything(
    pg_engine: Engine,
    standin: MixpanelStandin,
    relays: RelayLauncher,
    hostile: HostileEndpoint,
    behaviour: Behaviour,
    error_like: str,
) -> None:
    """No row is delivered on a hostile answer, all are once Mixpanel answers; nothing is lost."""
    _run_scenario(
        pg_engine,
        standin,
        relays,
        hostile,
        name=error_like,
        behaviours=[behaviour],
        error_like=error_like,
    )


@pytest.mark.parametrize("status", [301, 307])
def test_redirects_leave_rows_untouched_and_fail_healthz_until_mixpanel_answers(
    pg_engine: Engine,
    standin: MixpanelStandin,
    relays: RelayLauncher,
    hostile: HostileEndpoint,
    status: int,
) -> None:
    """Redirects use no attempt, make /healthz 503 and are logged by target; then all deliver."""
    ledger = Ledger(f"hostile endpoint: {status} redirects")
    commit_backlog(pg_engine, ledger, SurveyEvents(), EVENTS)
    hostile.script(*[redirect(status, f"https://elsewhere.example/import?{SECRET_QUERY}")] * 4)
    port = free_port()
    relay = _hostile_relays(relays, hostile).start(
        auth_failure_pause_seconds="1", metrics_port=str(port)
    )
    wait_until(
        lambda: _healthz(port) == 503, timeout=60, what="/healthz 503", context=relays.diagnosis
    )
    wait_until(
        lambda: pending_count(pg_engine) == 0 or not relay.alive,
        timeout=60,
        what="the backlog to drain once the stand-in answers",
        context=relays.diagnosis,
    )
    wait_until(lambda: _healthz(port) == 200, timeout=30, what="/healthz 200 after recovery")
    exit_code = relay.stop()
    report = ledger.reconcile(standin.accepted_events())
    log = relay.log_path.read_text()
    context = f"\n{report}\n" + "\n".join(relays.logs())
    report.assert_clean()
    assert exit_code == 0, context
    assert attempts_histogram(pg_engine) == {1: EVENTS}, context
    assert "redirected to https://elsewhere.example/import" in log, context
    assert SECRET_QUERY not in log, context


def test_relay_drain_exits_3_on_a_redirect_and_leaves_rows_untouched(
    pg_engine: Engine,
    standin: MixpanelStandin,
    relays: RelayLauncher,
    hostile: HostileEndpoint,
) -> None:
    """``relay drain`` against a redirect exits 3, names the redirect, and uses no attempt."""
    ledger = Ledger("hostile endpoint: relay drain and a 308")
    commit_backlog(pg_engine, ledger, SurveyEvents(), EVENTS)
    hostile.script(redirect(308, f"https://elsewhere.example/import?{SECRET_QUERY}"))
    env = _hostile_relays(relays, hostile).env()
    done = subprocess.run(
        [str(RELAY_EXECUTABLE), "drain"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "HTTP 308: redirected to https://elsewhere.example/import" in done.stderr
    assert SECRET_QUERY not in done.stderr + done.stdout
    assert attempts_histogram(pg_engine) == {0: EVENTS}
    assert pending_count(pg_engine) == EVENTS
    again = subprocess.run(
        [str(RELAY_EXECUTABLE), "drain"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    ledger.reconcile(standin.accepted_events()).assert_clean()


def test_sigterm_mid_drip_feed_stops_the_daemon_promptly_and_releases_the_rows(
    pg_engine: Engine,
    standin: MixpanelStandin,
    relays: RelayLauncher,
    hostile: HostileEndpoint,
) -> None:
    """SIGTERM while a server drips its headers ends ``relay run`` in seconds; rows go back."""
    ledger = Ledger("hostile endpoint: SIGTERM during a header drip-feed")
    commit_backlog(pg_engine, ledger, SurveyEvents(), EVENTS)
    hostile.script(drip_headers(interval=0.5))
    launcher = _hostile_relays(relays, hostile)
    # The default 45 s deadline (under a 60 s lease): only the stop may end this request early.
    relay = launcher.start(
        read_timeout_seconds=str(READ_TIMEOUT_SECONDS),
        request_deadline_seconds="45",
        lease_seconds="60",
    )
    wait_until(lambda: hostile.hostile_answers == 1, timeout=30, what="the drip-fed request")
    time.sleep(1.0)  # let the drip run past a read timeout: the request is truly in flight
    started = time.monotonic()
    exit_code = relay.stop()
    stop_seconds = time.monotonic() - started
    context = "\n".join(relays.logs())
    print(f"\nrelay run stopped {stop_seconds:.2f} s after SIGTERM mid drip-feed")
    assert exit_code == 0, context
    assert stop_seconds < 10.0 < STOP_TIMEOUT_SECONDS, context
    assert attempts_histogram(pg_engine) == {0: EVENTS}, context
    assert pending_count(pg_engine) == EVENTS, context
    second = launcher.start()
    wait_until(
        lambda: pending_count(pg_engine) == 0,
        timeout=60,
        what="the next relay to deliver the released rows",
        context=relays.diagnosis,
    )
    assert second.stop() == 0
    ledger.reconcile(standin.accepted_events()).assert_clean()


def _peak_rss_bytes(pid: int) -> int:
    """VmHWM: the most memory the process ever held resident (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def test_an_oversized_answer_does_not_grow_the_relay(
    pg_engine: Engine,
    standin: MixpanelStandin,
    relays: RelayLauncher,
    hostile: HostileEndpoint,
) -> None:
    """Streaming 400 MB at ``relay run`` keeps its peak RSS near its idle size; all deliver."""
    ledger = Ledger("hostile endpoint: 400 MB answer")
    commit_backlog(pg_engine, ledger, SurveyEvents(), EVENTS)
    hostile.script(huge_body(total_bytes=400 * 1024 * 1024))
    relay = _hostile_relays(relays, hostile).start(
        read_timeout_seconds=str(READ_TIMEOUT_SECONDS),
        request_deadline_seconds="20",
        lease_seconds="30",
    )
    wait_until(
        lambda: _rows_with_error(pg_engine, "HTTP 200 with a body over%") == EVENTS,
        timeout=60,
        what="the oversized answer to be refused",
        context=relays.diagnosis,
    )
    peak = _peak_rss_bytes(relay.proc.pid)
    rss_now = psutil.Process(relay.proc.pid).memory_info().rss
    wait_until(lambda: pending_count(pg_engine) == 0, timeout=60, what="delivery after the flood")
    assert relay.stop() == 0
    print(f"\nrelay peak RSS {peak / 2**20:.0f} MiB (now {rss_now / 2**20:.0f} MiB) after 400 MB")
    assert peak < 200 * 1024 * 1024, f"peak RSS {peak / 2**20:.0f} MiB"
    ledger.reconcile(standin.accepted_events()).assert_clean()
