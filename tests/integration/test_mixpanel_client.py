"""The /import client against the Mixpanel stand-in over real HTTP on loopback."""

from __future__ import annotations

import socket
import time

import orjson
import pytest
from helpers.standin import standin_settings
from pydantic import SecretStr

from relay._config import RelaySettings
from relay._errors import ConfigurationError
from relay._mixpanel.client import MixpanelImportClient, SendOutcome
from relay._tables import OutboxEvent
from relay.testing.mixpanel_standin import MixpanelStandin


def _events(count: int, *, first_id: int = 1, padding: int = 0) -> list[OutboxEvent]:
    now_ms = int(time.time() * 1000)
    return [
        OutboxEvent(
            id=first_id + n,
            insert_id=f"ins-{first_id + n:08d}",
            event="svc.surveys.survey_delivered",
            distinct_id=f"user-{n % 7}",
            time_ms=now_ms - 86_400_000 - n,
            properties_json=orjson.dumps(
                {"organization_id": "org-1", "n": n, "pad": "p" * padding}
            ).decode(),
            attempts=0,
        )
        for n in range(count)
    ]


def _send(settings: RelaySettings, events: list[OutboxEvent]) -> SendOutcome:
    with MixpanelImportClient(settings) as client:
        return client.send(events)


def _ids(events: list[OutboxEvent]) -> list[int]:
    return [event.id for event in events]


def test_accepted_batch_is_delivered_with_stored_time_and_insert_id(
    standin: MixpanelStandin,
) -> None:
    """A 200 delivers every row, and Mixpanel receives each row's own time and $insert_id."""
    events = _events(5)
    outcome = _send(standin_settings(standin), events)
    assert outcome.delivered == _ids(events)
    assert (outcome.rejected, outcome.retry, outcome.unsent, outcome.auth_error) == (
        {},
        {},
        [],
        None,
    )
    received = {e["properties"]["$insert_id"]: e for e in standin.accepted_events()}
    for event in events:
        properties = received[event.insert_id]["properties"]
        assert properties["time"] == event.time_ms
        assert properties["distinct_id"] == event.distinct_id
        assert properties["organization_id"] == "org-1"
    assert [r.status for r in outcome.requests] == [200]


def test_partial_400_rejects_exactly_the_failed_records(standin: MixpanelStandin) -> None:
    """A 400 with failed_records refuses those rows with field and message; others are delivered."""
    events = _events(6)
    future = events[4]
    events[4] = OutboxEvent(
        id=future.id,
        insert_id=future.insert_id,
        event=future.event,
        distinct_id=future.distinct_id,
        time_ms=int(time.time() * 1000) + 3 * 3_600_000,
        properties_json="{}",
        attempts=0,
    )
    standin.reject_insert_ids([events[1].insert_id], field="properties.custom", message="nope")
    outcome = _send(standin_settings(standin), events)
    assert outcome.rejected == {
        events[1].id: "properties.custom: nope",
        events[4].id: "properties.time: 'properties.time' is more than 1 hour in the future",
    }
    assert outcome.delivered == [events[i].id for i in (0, 2, 3, 5)]
    assert standin.stats().unique == 4


def test_failed_records_keyed_by_dollar_insert_id_are_matched_when_index_is_unusable(
    standin: MixpanelStandin,
) -> None:
    """A failed record with an out-of-range index is matched by its $insert_id instead."""
    events = _events(3)
    standin.fail_next(
        400,
        body={
            "code": 400,
            "error": "some data points in the request failed validation",
            "num_records_imported": 2,
            "status": "Bad Request",
            "failed_records": [
                {
                    "index": 99,
                    "$insert_id": events[2].insert_id,
                    "field": "properties.x",
                    "message": "bad",
                }
            ],
        },
    )
    outcome = _send(standin_settings(standin), events)
    assert outcome.rejected == {events[2].id: "properties.x: bad"}
    assert outcome.delivered == [events[0].id, events[1].id]


def test_unmatchable_failed_records_retry_the_whole_batch(standin: MixpanelStandin) -> None:
    """When a failed record matches no row, no row is delivered or refused on a guess: all retry."""
    events = _events(2)
    standin.fail_next(
        400,
        body={
            "code": 400,
            "error": "some data points in the request failed validation",
            "failed_records": [{"index": 7, "insert_id": "unknown-id", "message": "bad"}],
        },
    )
    outcome = _send(standin_settings(standin), events)
    assert (outcome.delivered, outcome.rejected) == ([], {})
    assert outcome.retry == dict.fromkeys(
        _ids(events),
        "HTTP 400: answer inconsistent with the batch: "
        "a failed record names an $insert_id not in the batch",
    )


def test_400_without_failed_records_rejects_every_row(standin: MixpanelStandin) -> None:
    """A whole-request 400 refuses every row with Mixpanel's error text."""
    events = _events(3)
    standin.fail_next(400, error="request body must be a JSON array of events")
    outcome = _send(standin_settings(standin), events)
    assert outcome.rejected == dict.fromkeys(
        _ids(events), "HTTP 400: request body must be a JSON array of events"
    )


def test_413_splits_the_batch_in_halves_and_delivers_everything(standin: MixpanelStandin) -> None:
    """After a 413 the client sends each half separately and every row is delivered."""
    events = _events(8)
    standin.fail_next(413)
    outcome = _send(standin_settings(standin), events)
    assert sorted(outcome.delivered) == _ids(events)
    assert [(r.status, r.events) for r in outcome.requests] == [(413, 8), (200, 4), (200, 4)]


def test_small_server_limit_is_met_by_repeated_splitting() -> None:
    """Against a server limit far below the client's cap, halving continues until batches fit."""
    with MixpanelStandin(max_bytes=2_000) as standin:
        events = _events(20, padding=200)
        outcome = _send(standin_settings(standin), events)
        assert sorted(outcome.delivered) == _ids(events)
        accepted = [r for r in standin.request_log() if r.status == 200]
        assert sum(r.events for r in accepted) == 20
        assert all(r.body_bytes <= 2_000 for r in accepted)


def test_single_event_that_still_gets_413_is_rejected() -> None:
    """One event alone answered with 413 is refused with Mixpanel's error, the others delivered."""
    with MixpanelStandin(max_bytes=1_024) as standin:
        small = _events(1)
        large = _events(1, first_id=2, padding=1_500)
        outcome = _send(standin_settings(standin), small + large)
        assert outcome.delivered == _ids(small)
        assert outcome.rejected == {
            large[0].id: "HTTP 413: request exceeds max limit of 1024 bytes"
        }


def test_event_larger_than_the_byte_cap_is_refused_without_a_request(
    standin: MixpanelStandin,
) -> None:
    """An event whose encoding alone exceeds batch_max_bytes is rejected and never sent."""
    large = _events(1, padding=2_000)
    outcome = _send(standin_settings(standin, batch_max_bytes=1_024), large)
    assert list(outcome.rejected) == _ids(large)
    assert "over the request limit of 1024 bytes" in outcome.rejected[large[0].id]
    assert outcome.requests == []
    assert standin.request_log() == []


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (503, "HTTP 503: Service Unavailable"),
        (502, "HTTP 502: Bad Gateway"),
        (418, "HTTP 418: I'm a Teapot"),
    ],
)
def test_rate_limits_server_errors_and_unexpected_statuses_retry_the_whole_batch(
    standin: MixpanelStandin, status: int, error: str
) -> None:
    """5xx and any unexpected status put every row of the request up for retry."""
    events = _events(4)
    standin.fail_next(status)
    outcome = _send(standin_settings(standin), events)
    assert outcome.retry == dict.fromkeys(_ids(events), error)
    assert outcome.delivered == []


def test_a_429_marks_its_rows_throttled_and_stops_sending(standin: MixpanelStandin) -> None:
    """Mixpanel's rate limit: the request's rows are throttled, the later requests unsent."""
    events = _events(4)
    standin.fail_next(429)
    outcome = _send(standin_settings(standin, batch_max_events=2), events)
    assert outcome.throttled == _ids(events)[:2]
    assert outcome.unsent == _ids(events)[2:]
    assert (outcome.retry, outcome.delivered, outcome.auth_error) == ({}, [], None)
    assert len(standin.request_log()) == 1


def test_read_timeout_retries_the_batch(standin: MixpanelStandin) -> None:
    """A server slower than the read timeout leaves the batch for retry as a timeout."""
    events = _events(3)
    standin.delay_next(5.0)
    outcome = _send(standin_settings(standin, read_timeout_seconds=0.2), events)
    assert outcome.retry == dict.fromkeys(_ids(events), "timeout: ReadTimeout")
    assert [r.status for r in outcome.requests] == [None]


def test_dropped_connection_retries_the_batch(standin: MixpanelStandin) -> None:
    """A connection closed without an answer leaves the batch for retry as a connection error."""
    events = _events(2)
    standin.delay_next(0.0, drop=True)
    outcome = _send(standin_settings(standin), events)
    assert outcome.retry == dict.fromkeys(_ids(events), "connection error: RemoteProtocolError")


def test_refused_connection_retries_the_batch() -> None:
    """Nothing listening on the port is a connection error, and the batch is retried."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = RelaySettings(
        mixpanel_api_url=f"http://127.0.0.1:{port}",
        mixpanel_project_token=SecretStr("token"),
        connect_timeout_seconds=2.0,
    )
    events = _events(2)
    outcome = _send(settings, events)
    assert outcome.retry == dict.fromkeys(_ids(events), "connection error: ConnectError")


def test_wrong_secret_stops_sending_and_leaves_every_row_unsent(standin: MixpanelStandin) -> None:
    """A 401 sets auth_error, leaves all rows unsent, and no further request is made."""
    events = _events(6)
    settings = standin_settings(
        standin, mixpanel_service_account_secret=SecretStr("wrong"), batch_max_events=2
    )
    outcome = _send(settings, events)
    assert outcome.auth_error == "HTTP 401: Invalid credentials"
    assert sorted(outcome.unsent) == _ids(events)
    assert (outcome.delivered, outcome.rejected, outcome.retry) == ([], {}, {})
    assert len(standin.request_log()) == 1


@pytest.mark.parametrize("status", [403, 404])
def test_forbidden_or_not_found_is_treated_as_misconfiguration(
    standin: MixpanelStandin, status: int
) -> None:
    """403 and 404, which /import never returns for good requests, stop sending like a 401."""
    events = _events(4)
    standin.fail_next(status)
    outcome = _send(standin_settings(standin, batch_max_events=2), events)
    assert outcome.auth_error is not None
    assert outcome.auth_error.startswith(f"HTTP {status}")
    assert sorted(outcome.unsent) == _ids(events)
    assert len(standin.request_log()) == 1


def test_rows_after_an_auth_failure_mid_send_stay_unsent(standin: MixpanelStandin) -> None:
    """Batches delivered before a 401 stay delivered; the failed and later ones are unsent."""
    events = _events(6)
    standin.fail_next(200, body={"code": 200, "num_records_imported": 2, "status": "OK"})
    standin.fail_next(401)
    outcome = _send(standin_settings(standin, batch_max_events=2), events)
    assert outcome.delivered == _ids(events[:2])
    assert sorted(outcome.unsent) == _ids(events[2:])
    assert len(standin.request_log()) == 2


def test_project_token_authenticates_without_project_id(standin: MixpanelStandin) -> None:
    """The project token as basic-auth username with an empty password is accepted."""
    settings = RelaySettings(
        mixpanel_api_url=standin.url, mixpanel_project_token=SecretStr(standin.project_token)
    )
    events = _events(3)
    outcome = _send(settings, events)
    assert outcome.delivered == _ids(events)


def test_missing_credentials_are_a_configuration_error(standin: MixpanelStandin) -> None:
    """Without any credentials the client refuses to be built."""
    with pytest.raises(ConfigurationError):
        MixpanelImportClient(RelaySettings(mixpanel_api_url=standin.url))


def test_blank_service_account_secret_is_a_configuration_error(standin: MixpanelStandin) -> None:
    """A whitespace-only secret, refused by ServiceAccountCredentials, is a configuration error."""
    settings = standin_settings(standin, mixpanel_service_account_secret=SecretStr("  "))
    with pytest.raises(ConfigurationError, match="secret cannot be empty"):
        MixpanelImportClient(settings)


def test_bodies_are_gzipped_by_default(standin: MixpanelStandin) -> None:
    """The stand-in receives Content-Encoding gzip and still reads every event."""
    events = _events(10)
    outcome = _send(standin_settings(standin), events)
    assert outcome.delivered == _ids(events)
    assert [r.content_encoding for r in standin.request_log()] == ["gzip"]


def test_gzip_level_zero_sends_plain_json(standin: MixpanelStandin) -> None:
    """gzip_level 0 sends the JSON body uncompressed."""
    outcome = _send(standin_settings(standin, gzip_level=0), _events(2))
    assert len(outcome.delivered) == 2
    assert [r.content_encoding for r in standin.request_log()] == [None]


def test_batches_never_exceed_2000_events(standin: MixpanelStandin) -> None:
    """4,500 rows go out as 2000 + 2000 + 500 events, all delivered."""
    events = _events(4_500)
    outcome = _send(standin_settings(standin), events)
    assert len(outcome.delivered) == 4_500
    assert [r.events for r in standin.request_log()] == [2000, 2000, 500]
    assert standin.stats().unique == 4_500


def test_batches_never_exceed_the_byte_cap(standin: MixpanelStandin) -> None:
    """With a 4 KiB cap every uncompressed body the server sees is at most 4 KiB."""
    events = _events(60, padding=100)
    outcome = _send(standin_settings(standin, batch_max_bytes=4_096), events)
    assert sorted(outcome.delivered) == _ids(events)
    log = standin.request_log()
    assert len(log) > 1
    assert all(r.body_bytes <= 4_096 and r.status == 200 for r in log)
    assert [r.body_bytes for r in log] == [r.body_bytes for r in outcome.requests]
