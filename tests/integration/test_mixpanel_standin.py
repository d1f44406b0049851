"""The Mixpanel stand-in enforces /import's documented contract, over real HTTP on loopback."""

from __future__ import annotations

import gzip
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from helpers.standin import StartStandin

from relay.testing.mixpanel_standin import BANNED_IDS, TIMEOUT, MixpanelStandin

NOW_S = 1_700_000_000.0
NOW_MS = int(NOW_S * 1000)
HOUR_MS = 3_600_000


@pytest.fixture
def standin(start_standin: StartStandin) -> MixpanelStandin:
    """A running stand-in whose clock is pinned at NOW_S, with small limits for edge cases."""
    return start_standin(now=lambda: NOW_S, max_events=5, max_bytes=4_096)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """A plain HTTP client shared by the module (building one loads CA certificates: slow)."""
    with httpx.Client(timeout=5.0) as client:
        yield client


def _record(n: int = 0, **properties: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "time": NOW_MS - 1_000 * n,
        "distinct_id": f"user-{n}",
        "$insert_id": f"ins-{n:04d}",
    }
    base.update(properties)
    return {"event": "svc.test.thing_done", "properties": base}


def _without(record: dict[str, Any], name: str) -> dict[str, Any]:
    record["properties"].pop(name)
    return record


def _post(
    http: httpx.Client,
    standin: MixpanelStandin,
    body: Any,
    *,
    params: dict[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    content_type: str = "application/json",
    compress: bool = False,
) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {"Content-Type": content_type}
    if compress:
        content = gzip.compress(content)
        headers["Content-Encoding"] = "gzip"
    return http.post(
        f"{standin.url}/import",
        params={"strict": "1", "project_id": standin.project_id} if params is None else params,
        content=content,
        headers=headers,
        auth=(standin.username, standin.secret) if auth is None else auth,
    )


def _refusal(response: httpx.Response) -> tuple[str, str]:
    """(field, message) of the only failed record of a strict 400."""
    assert response.status_code == 400, response.text
    (failed,) = response.json()["failed_records"]
    return failed["field"], failed["message"]


# --- answers ------------------------------------------------------------------------------


def test_valid_batch_is_answered_like_mixpanel(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """A valid batch gets 200 with code, num_records_imported and status OK."""
    response = _post(http, standin, [_record(0), _record(1)])
    assert response.status_code == 200
    assert response.json() == {"code": 200, "num_records_imported": 2, "status": "OK"}
    assert [e["properties"]["$insert_id"] for e in standin.accepted_events()] == [
        "ins-0000",
        "ins-0001",
    ]


def test_partial_failure_reports_failed_records_and_keeps_the_valid_ones(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """One bad record among valid ones: 400 with its index, insert_id, field and message."""
    bad = _record(1, time="yesterday")
    response = _post(http, standin, [_record(0), bad, _record(2)])
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 400
    assert body["status"] == "Bad Request"
    assert body["error"] == "some data points in the request failed validation"
    assert body["num_records_imported"] == 2
    assert body["failed_records"] == [
        {
            "index": 1,
            "insert_id": "ins-0001",
            "field": "properties.time",
            "message": "'properties.time' is invalid: must be specified as seconds since epoch",
        }
    ]
    assert standin.stats().accepted == 2
    assert standin.stats().rejected == 1


# --- auth ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "params"),
    [
        (("standin-user", "standin-secret"), {"strict": "1", "project_id": "standin-project"}),
        (("standin-token", ""), {"strict": "1"}),
        (("standin-token", ""), {"strict": "1", "project_id": "standin-project"}),
    ],
    ids=["service-account", "token", "token-with-project-id"],
)
def test_valid_credentials_are_accepted(
    standin: MixpanelStandin, http: httpx.Client, auth: tuple[str, str], params: dict[str, str]
) -> None:
    """A service account with its project_id, or the project token, authenticates."""
    assert _post(http, standin, [_record()], auth=auth, params=params).status_code == 200


@pytest.mark.parametrize(
    ("auth", "params"),
    [
        (("standin-user", "wrong"), {"strict": "1", "project_id": "standin-project"}),
        (("standin-user", "standin-secret"), {"strict": "1"}),
        (("standin-user", "standin-secret"), {"strict": "1", "project_id": "other"}),
        (("standin-token", "x"), {"strict": "1"}),
        (("standin-token", ""), {"strict": "1", "project_id": "other"}),
        (("nobody", ""), {"strict": "1"}),
    ],
    ids=[
        "wrong-secret",
        "missing-project-id",
        "wrong-project-id",
        "token-with-password",
        "token-wrong-project",
        "unknown-user",
    ],
)
def test_invalid_credentials_get_401(
    standin: MixpanelStandin, http: httpx.Client, auth: tuple[str, str], params: dict[str, str]
) -> None:
    """Wrong secrets, missing or wrong project_id and unknown users get Mixpanel's 401."""
    response = _post(http, standin, [_record()], auth=auth, params=params)
    assert response.status_code == 401
    assert response.json() == {
        "code": 401,
        "error": "Invalid credentials",
        "status": "Unauthorized",
    }
    assert standin.stats().accepted == 0


def test_request_without_authorization_header_gets_401(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """No Authorization header at all is a 401."""
    response = http.post(
        f"{standin.url}/import?strict=1",
        content=orjson.dumps([_record()]),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 401


# --- strict, encodings, content types -------------------------------------------------------


def test_missing_strict_parameter_is_a_400(standin: MixpanelStandin, http: httpx.Client) -> None:
    """Without the strict query parameter the request is refused as a whole."""
    response = _post(http, standin, [_record()], params={"project_id": standin.project_id})
    assert response.status_code == 400
    assert "strict" in response.json()["error"]


def test_strict_zero_drops_invalid_records_silently(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """strict=0 answers 200, imports the valid records and drops the invalid ones."""
    params = {"strict": "0", "project_id": standin.project_id}
    response = _post(http, standin, [_record(0), _without(_record(1), "time")], params=params)
    assert response.status_code == 200
    assert response.json()["num_records_imported"] == 1
    assert standin.stats().accepted == 1
    assert standin.stats().rejected == 1


def test_gzip_body_is_decoded(standin: MixpanelStandin, http: httpx.Client) -> None:
    """A gzip-encoded body is decompressed and accepted."""
    response = _post(http, standin, [_record()], compress=True)
    assert response.status_code == 200
    assert standin.request_log()[0].content_encoding == "gzip"


def test_corrupt_gzip_body_is_a_400(standin: MixpanelStandin, http: httpx.Client) -> None:
    """A body declared gzip that is not gzip is refused."""
    response = http.post(
        f"{standin.url}/import",
        params={"strict": "1", "project_id": standin.project_id},
        content=b"not gzip at all",
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        auth=(standin.username, standin.secret),
    )
    assert response.status_code == 400


def test_ndjson_body_is_accepted(standin: MixpanelStandin, http: httpx.Client) -> None:
    """application/x-ndjson with one event per line is accepted."""
    body = b"\n".join(orjson.dumps(r) for r in [_record(0), _record(1)]) + b"\n"
    response = _post(http, standin, body, content_type="application/x-ndjson")
    assert response.status_code == 200
    assert response.json()["num_records_imported"] == 2


def test_unsupported_content_type_is_a_400(standin: MixpanelStandin, http: httpx.Client) -> None:
    """A body that is neither JSON, NDJSON nor a legacy form is refused."""
    response = _post(http, standin, [_record()], content_type="text/plain")
    assert response.status_code == 400


def test_malformed_json_is_a_400_with_error_text(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """A body that is not JSON gets a whole-request 400 with an error text and no failed_records."""
    response = _post(http, standin, b'[{"event": ')
    assert response.status_code == 400
    body = response.json()
    assert "unable to parse" in body["error"]
    assert "failed_records" not in body


@pytest.mark.parametrize("body", [[], {"event": "x"}], ids=["empty-array", "object"])
def test_empty_array_or_non_array_body_is_a_400(
    standin: MixpanelStandin, http: httpx.Client, body: Any
) -> None:
    """The body must be a non-empty JSON array."""
    assert _post(http, standin, body).status_code == 400


# --- limits ---------------------------------------------------------------------------------


def _padded_body(size: int) -> bytes:
    """A one-record JSON array body of exactly ``size`` bytes."""
    record = _record(0, pad="")
    base = len(orjson.dumps([record]))
    record["properties"]["pad"] = "x" * (size - base)
    body = orjson.dumps([record])
    assert len(body) == size
    return body


def test_body_of_exactly_max_bytes_is_accepted(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """An uncompressed body at the byte limit is accepted."""
    assert _post(http, standin, _padded_body(4_096)).status_code == 200


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_body_over_max_bytes_is_a_413(
    standin: MixpanelStandin, http: httpx.Client, compress: bool
) -> None:
    """One byte over the limit, compressed or not, gets Mixpanel's 413 naming the limit."""
    response = _post(http, standin, _padded_body(4_097), compress=compress)
    assert response.status_code == 413
    assert response.json() == {
        "code": 413,
        "error": "request exceeds max limit of 4096 bytes",
        "status": "Request Entity Too Large",
    }


def test_max_events_records_are_accepted_and_one_more_is_a_400(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """The event-count limit (5 here) is inclusive; one more refuses the whole request."""
    assert _post(http, standin, [_record(n) for n in range(5)]).status_code == 200
    response = _post(http, standin, [_record(n) for n in range(6)])
    assert response.status_code == 400
    assert "failed_records" not in response.json()
    assert standin.stats().accepted == 5


def test_default_limits_are_2000_events_and_2_mib() -> None:
    """Out of the box the stand-in uses Mixpanel's 2000 events and 2,097,152 bytes."""
    standin = MixpanelStandin()
    assert (standin.max_events, standin.max_bytes) == (2000, 2_097_152)


# --- record shape ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ("not an object", "record"),
        ({**_record(), "extra": 1}, "extra"),
        ({"properties": _record()["properties"]}, "event"),
        ({**_record(), "event": ""}, "event"),
        ({**_record(), "event": 5}, "event"),
        ({"event": "x", "properties": [1]}, "properties"),
        ({"event": "x"}, "properties"),
    ],
    ids=[
        "not-object",
        "extra-key",
        "no-event",
        "empty-event",
        "event-not-string",
        "properties-list",
        "no-properties",
    ],
)
def test_record_must_be_exactly_event_and_properties(
    standin: MixpanelStandin, http: httpx.Client, record: Any, field: str
) -> None:
    """A record needs a non-empty string event and an object of properties, and nothing else."""
    assert _refusal(_post(http, standin, [record]))[0] == field


def test_record_with_only_event_and_properties_is_accepted(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """The minimal valid record (event plus time, distinct_id and $insert_id) is accepted."""
    assert _post(http, standin, [_record()]).status_code == 200


def test_fewer_than_255_properties_are_accepted_and_255_refused(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """254 properties (the three required ones included) pass; 255 do not."""
    extra_254 = {f"p{i}": i for i in range(251)}
    assert _post(http, standin, [_record(0, **extra_254)]).status_code == 200
    extra_255 = {f"p{i}": i for i in range(252)}
    assert _refusal(_post(http, standin, [_record(1, **extra_255)]))[0] == "properties"


def test_property_names_up_to_255_characters_are_accepted(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """A 255-character property name passes; 256 characters do not."""
    assert _post(http, standin, [_record(0, **{"n" * 255: 1})]).status_code == 200
    assert _refusal(_post(http, standin, [_record(1, **{"n" * 256: 1})]))[0] == "properties"


# --- properties.time ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [NOW_MS, NOW_MS // 1000, NOW_MS + HOUR_MS, 31_536_000, 100_000_000_000],
    ids=["ms", "seconds", "one-hour-ahead", "1971-seconds", "smallest-ms"],
)
def test_time_in_seconds_or_ms_within_range_is_accepted(
    standin: MixpanelStandin, http: httpx.Client, value: int
) -> None:
    """Integer seconds or ms from 1971 to an hour ahead pass; values under 1e11 are seconds."""
    assert _post(http, standin, [_record(0, time=value)]).status_code == 200


@pytest.mark.parametrize(
    "value",
    [NOW_MS + HOUR_MS + 1, 31_535_999, -1, "1700000000", 1.7e9, True, None],
    ids=["over-an-hour-ahead", "1970-seconds", "negative", "string", "float", "bool", "null"],
)
def test_time_out_of_range_or_not_an_integer_is_refused(
    standin: MixpanelStandin, http: httpx.Client, value: Any
) -> None:
    """Times before 1971, over an hour ahead, or not integers are refused on properties.time."""
    assert _refusal(_post(http, standin, [_record(0, time=value)]))[0] == "properties.time"


def test_missing_time_is_refused(standin: MixpanelStandin, http: httpx.Client) -> None:
    """properties.time is required."""
    response = _post(http, standin, [_without(_record(), "time")])
    assert _refusal(response) == ("properties.time", "'properties.time' is required")


# --- distinct_id ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["user-1", "", "org_123", "anonymously"])
def test_ordinary_distinct_ids_are_accepted(
    standin: MixpanelStandin, http: httpx.Client, value: str
) -> None:
    """Any string that is not a banned placeholder is a distinct_id, the empty string included."""
    assert _post(http, standin, [_record(0, distinct_id=value)]).status_code == 200


@pytest.mark.parametrize("value", [*sorted(BANNED_IDS), "NULL", "Undefined"])
def test_banned_distinct_ids_are_refused_case_insensitively(
    standin: MixpanelStandin, http: httpx.Client, value: str
) -> None:
    """Mixpanel's placeholder values are refused as distinct_id, in any letter case."""
    assert _refusal(_post(http, standin, [_record(0, distinct_id=value)]))[0] == (
        "properties.distinct_id"
    )


@pytest.mark.parametrize("value", [42, None, ["a"]], ids=["int", "null", "list"])
def test_distinct_id_must_be_a_string(
    standin: MixpanelStandin, http: httpx.Client, value: Any
) -> None:
    """A non-string or null distinct_id is refused."""
    assert _refusal(_post(http, standin, [_record(0, distinct_id=value)]))[0] == (
        "properties.distinct_id"
    )


def test_missing_distinct_id_is_refused(standin: MixpanelStandin, http: httpx.Client) -> None:
    """properties.distinct_id is required on /import."""
    response = _post(http, standin, [_without(_record(), "distinct_id")])
    assert _refusal(response)[0] == "properties.distinct_id"


# --- $insert_id -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["a", "A-z-0-9", "x" * 36, "0b6f1e2a-4a8c-4f63-9d55-2c0e3c1f7a10"]
)
def test_insert_ids_of_up_to_36_allowed_characters_are_accepted(
    standin: MixpanelStandin, http: httpx.Client, value: str
) -> None:
    """Up to 36 characters of letters, digits and '-' are a valid $insert_id."""
    assert _post(http, standin, [_record(0, **{"$insert_id": value})]).status_code == 200


@pytest.mark.parametrize(
    "value",
    ["x" * 37, "has_underscore", "has space", "", 12, "none", "NULL", "-1"],
    ids=["37-chars", "underscore", "space", "empty", "int", "banned", "banned-upper", "minus-one"],
)
def test_invalid_or_banned_insert_ids_are_refused(
    standin: MixpanelStandin, http: httpx.Client, value: Any
) -> None:
    """Long, oddly-charactered, non-string or banned $insert_ids are refused."""
    response = _post(http, standin, [_record(0, **{"$insert_id": value})])
    assert _refusal(response)[0] == "properties.$insert_id"


def test_missing_insert_id_is_refused(standin: MixpanelStandin, http: httpx.Client) -> None:
    """properties.$insert_id is required on /import."""
    response = _post(http, standin, [_without(_record(), "$insert_id")])
    assert _refusal(response)[0] == "properties.$insert_id"


# --- deduplication --------------------------------------------------------------------------


def test_resend_counts_as_duplicate_not_unique(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """Sending the same record twice stores it twice but counts one unique event."""
    _post(http, standin, [_record(0)])
    _post(http, standin, [_record(0)])
    stats = standin.stats()
    assert (stats.accepted, stats.duplicates, stats.unique) == (2, 1, 1)
    assert len(standin.accepted_events()) == 2
    assert list(standin.unique_events()) == [("svc.test.thing_done", "user-0", NOW_MS, "ins-0000")]


def test_time_in_seconds_and_ms_share_a_dedup_key(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """The dedup key normalises time, so seconds and the same instant in ms are one event."""
    _post(http, standin, [_record(0, time=1_700_000_000)])
    _post(http, standin, [_record(0, time=1_700_000_000_000)])
    assert standin.stats().unique == 1
    assert standin.stats().duplicates == 1


@pytest.mark.parametrize(
    "change",
    [{"$insert_id": "other"}, {"distinct_id": "other"}, {"time": NOW_MS - 1}],
    ids=["insert-id", "distinct-id", "time"],
)
def test_any_dedup_key_difference_is_a_new_unique_event(
    standin: MixpanelStandin, http: httpx.Client, change: dict[str, Any]
) -> None:
    """Records differing in $insert_id, distinct_id or time are distinct events."""
    _post(http, standin, [_record(0)])
    _post(http, standin, [_record(0, **change)])
    assert (standin.stats().unique, standin.stats().duplicates) == (2, 0)


def test_unique_events_keeps_the_latest_copy(standin: MixpanelStandin, http: httpx.Client) -> None:
    """Like Mixpanel, the latest ingested duplicate is the one that counts."""
    _post(http, standin, [_record(0, version=1)])
    _post(http, standin, [_record(0, version=2)])
    (event,) = standin.unique_events().values()
    assert event["properties"]["version"] == 2


# --- fault injection ------------------------------------------------------------------------


def test_fail_next_answers_in_fifo_order_then_recovers(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """Queued failures are consumed one per request in order, then requests succeed again."""
    standin.fail_next(429, times=2)
    standin.fail_next(503, error="down for maintenance")
    statuses = [_post(http, standin, [_record(0)]).status_code for _ in range(4)]
    assert statuses == [429, 429, 503, 200]
    assert standin.stats().by_status == {429: 2, 503: 1, 200: 1}
    assert standin.stats().accepted == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (
            429,
            {
                "code": 429,
                "error": (
                    "Project exceeded rate limits. Please retry the request with exponential "
                    "backoff."
                ),
                "status": "Too Many Requests",
            },
        ),
        (401, {"code": 401, "error": "Invalid credentials", "status": "Unauthorized"}),
        (
            413,
            {
                "code": 413,
                "error": "request exceeds max limit of 4096 bytes",
                "status": "Request Entity Too Large",
            },
        ),
        (502, {"code": 502, "error": "Bad Gateway", "status": "Bad Gateway"}),
    ],
)
def test_injected_failures_have_mixpanel_shaped_bodies(
    standin: MixpanelStandin, http: httpx.Client, status: int, body: dict[str, Any]
) -> None:
    """Injected 429, 401, 413 and 5xx answers carry the bodies Mixpanel documents."""
    standin.fail_next(status)
    response = _post(http, standin, [_record()])
    assert (response.status_code, response.json()) == (status, body)


def test_delay_then_drop_closes_the_connection_without_an_answer(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """A dropped request gets no response, is logged with status 0, and stores nothing."""
    standin.delay_next(0.0, drop=True)
    with pytest.raises(httpx.RemoteProtocolError):
        _post(http, standin, [_record()])
    assert [r.status for r in standin.request_log()] == [0]
    assert standin.stats().accepted == 0


def test_delay_longer_than_the_client_timeout_causes_a_read_timeout(
    standin: MixpanelStandin,
) -> None:
    """A held request outlives a client's read timeout."""
    standin.delay_next(5.0)
    with httpx.Client(timeout=0.2) as impatient, pytest.raises(httpx.ReadTimeout):
        _post(impatient, standin, [_record()])


def test_delay_then_answer_stores_the_records(standin: MixpanelStandin, http: httpx.Client) -> None:
    """A delayed request is then answered and stored normally."""
    standin.delay_next(0.05)
    assert _post(http, standin, [_record()]).status_code == 200
    assert standin.stats().accepted == 1


def test_reject_insert_ids_refuses_those_records_every_time(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """Records with a refused $insert_id fail with the given field and message on every send."""
    standin.reject_insert_ids(["ins-0001"], field="properties.x", message="no")
    for _ in range(2):
        response = _post(http, standin, [_record(0), _record(1)])
        assert response.json()["failed_records"] == [
            {"index": 1, "insert_id": "ins-0001", "field": "properties.x", "message": "no"}
        ]
    assert standin.stats().unique == 1


def test_outage_answers_every_request_until_cleared(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """During an outage every request gets its status; clearing it restores service."""
    standin.set_outage(503, None)
    assert [_post(http, standin, [_record()]).status_code for _ in range(3)] == [503] * 3
    standin.set_outage(None, None)
    assert _post(http, standin, [_record()]).status_code == 200


def test_outage_ends_at_its_deadline(standin: MixpanelStandin, http: httpx.Client) -> None:
    """An outage whose deadline has passed no longer affects requests."""
    standin.set_outage(503, time.monotonic() - 1)
    assert _post(http, standin, [_record()]).status_code == 200


def test_timeout_outage_holds_requests_past_the_client_timeout(
    standin: MixpanelStandin,
) -> None:
    """A "timeout" outage leaves requests unanswered until the client gives up."""
    standin.set_outage(TIMEOUT, None)
    with httpx.Client(timeout=0.2) as impatient, pytest.raises(httpx.ReadTimeout):
        _post(impatient, standin, [_record()])


def test_requests_held_by_a_timeout_outage_are_answered_once_it_is_cleared(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """Clearing a "timeout" outage releases held requests to a normal answer."""
    standin.set_outage(TIMEOUT, time.monotonic() + 0.1)
    assert _post(http, standin, [_record()]).status_code == 200


def test_reset_forgets_records_counters_and_faults(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """After reset the stand-in is empty and fault-free."""
    _post(http, standin, [_record()])
    standin.fail_next(503)
    standin.reject_insert_ids(["ins-0000"])
    standin.reset()
    assert standin.stats().requests == 0
    assert standin.request_log() == []
    assert _post(http, standin, [_record()]).status_code == 200


def test_request_log_records_each_request(standin: MixpanelStandin, http: httpx.Client) -> None:
    """Each request is logged with its status, record count, $insert_ids and sizes."""
    before = time.monotonic()
    _post(http, standin, [_record(0), _record(1)], compress=True)
    (entry,) = standin.request_log()
    assert entry.at >= before
    assert (entry.status, entry.events, entry.insert_ids) == (200, 2, ("ins-0000", "ins-0001"))
    assert (entry.path, entry.content_encoding) == ("/import", "gzip")
    assert entry.body_bytes == len(orjson.dumps([_record(0), _record(1)]))


def test_without_retained_events_counters_still_work(http: httpx.Client) -> None:
    """retain_events=False keeps dedup counters but refuses to list events."""
    with MixpanelStandin(now=lambda: NOW_S, retain_events=False) as standin:
        _post(http, standin, [_record(0)])
        _post(http, standin, [_record(0)])
        assert (standin.stats().unique, standin.stats().duplicates) == (1, 1)
        with pytest.raises(RuntimeError):
            standin.accepted_events()


# --- control over HTTP ----------------------------------------------------------------------


def test_http_control_injects_faults_reads_stats_and_resets(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """POST /_standin/faults, GET /_standin/stats and POST /_standin/reset drive a stand-in."""
    faults = [
        {"op": "fail_next", "status": 503, "times": 1},
        {"op": "reject_insert_ids", "ids": ["ins-0001"]},
    ]
    assert http.post(f"{standin.url}/_standin/faults", json=faults).status_code == 200
    assert _post(http, standin, [_record(0), _record(1)]).status_code == 503
    assert _post(http, standin, [_record(0), _record(1)]).status_code == 400
    stats = http.get(f"{standin.url}/_standin/stats").json()
    assert stats == {
        "requests": 2,
        "accepted": 1,
        "duplicates": 0,
        "rejected": 1,
        "unique": 1,
        "by_status": {"503": 1, "400": 1},
    }
    assert http.post(f"{standin.url}/_standin/reset").status_code == 200
    assert standin.stats().requests == 0


def test_http_control_sets_an_outage_for_some_seconds(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """set_outage over HTTP accepts a duration in seconds from now."""
    fault = {"op": "set_outage", "status": 429, "seconds": 60}
    assert http.post(f"{standin.url}/_standin/faults", json=fault).status_code == 200
    assert _post(http, standin, [_record()]).status_code == 429


def test_http_control_refuses_unknown_operations(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """An unknown fault operation is a 400 and changes nothing."""
    response = http.post(f"{standin.url}/_standin/faults", json={"op": "explode"})
    assert response.status_code == 400
    assert _post(http, standin, [_record()]).status_code == 200


def test_settings_env_points_a_subprocess_at_the_stand_in(standin: MixpanelStandin) -> None:
    """settings_env gives the base URL and service-account credentials as RELAY_* variables."""
    assert standin.settings_env() == {
        "RELAY_MIXPANEL_API_URL": standin.url,
        "RELAY_MIXPANEL_PROJECT_ID": "standin-project",
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME": "standin-user",
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET": "standin-secret",
    }


def test_keep_alive_requests_are_not_stalled_by_nagle(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """Every accepted connection has Nagle's algorithm off, so small answers are never held.

    With Nagle on, a keep-alive client's delayed ACK stalls each small response ~40 ms on
    loopback; the socket option is checked directly rather than by timing on a shared machine.
    """
    assert _post(http, standin, [_record()]).status_code == 200
    with standin._lock:
        sockets = list(standin._connections)
    assert sockets
    for sock in sockets:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_command_line_serves_and_prints_its_url() -> None:
    """`python -m relay.testing.mixpanel_standin --port 0` prints a URL that answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "relay.testing.mixpanel_standin", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/_standin/stats", timeout=5.0).json()["requests"] == 0
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        if process.stdout is not None:
            process.stdout.close()


# --- future time: Mixpanel overwrites it with its ingestion time -------------------------------


class _Clock:
    """A settable clock in seconds for the stand-in's ``now``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self) -> float:
        return self.seconds


@pytest.fixture
def clock() -> _Clock:
    """The clock of ``clocked_standin``, starting at NOW_S."""
    return _Clock(NOW_S)


@pytest.fixture
def clocked_standin(clock: _Clock) -> Iterator[MixpanelStandin]:
    """A stand-in on a settable clock with Mixpanel's default limits."""
    with MixpanelStandin(now=clock) as server:
        yield server


def test_future_time_is_stored_as_the_ingestion_time(
    clocked_standin: MixpanelStandin, http: httpx.Client
) -> None:
    """A time ahead of the stand-in's clock is accepted, stored and keyed as the ingestion time."""
    standin = clocked_standin
    response = _post(http, standin, [_record(0, time=NOW_MS + 30_000)])
    assert response.json() == {"code": 200, "num_records_imported": 1, "status": "OK"}
    (event,) = standin.accepted_events()
    assert event["properties"]["time"] == NOW_MS
    assert list(standin.unique_events()) == [("svc.test.thing_done", "user-0", NOW_MS, "ins-0000")]
    (ingested,) = standin.ingested()
    assert (ingested.sent_time_ms, ingested.time_overwritten) == (NOW_MS + 30_000, True)


def test_resending_a_future_time_counts_twice(
    clocked_standin: MixpanelStandin, clock: _Clock, http: httpx.Client
) -> None:
    """A re-send of a future-timed event a second later is a second unique event, no duplicate."""
    standin = clocked_standin
    record = _record(0, time=NOW_MS + 60_000)
    _post(http, standin, [record])
    clock.seconds += 1
    _post(http, standin, [record])
    stats = standin.stats()
    assert (stats.accepted, stats.unique, stats.duplicates) == (2, 2, 0)
    assert [e.duplicate for e in standin.ingested()] == [False, False]


def test_resending_a_past_time_later_is_still_one_event(
    clocked_standin: MixpanelStandin, clock: _Clock, http: httpx.Client
) -> None:
    """The contrast: a past time keeps its key across re-sends at any later instant."""
    standin = clocked_standin
    _post(http, standin, [_record(0)])
    clock.seconds += 3_600
    _post(http, standin, [_record(0)])
    assert (standin.stats().unique, standin.stats().duplicates) == (1, 1)
    assert [e.duplicate for e in standin.ingested()] == [False, True]
    assert not any(e.time_overwritten for e in standin.ingested())


# --- invalid UTF-8 fails one record, the rest are imported ------------------------------------


def _raw_batch(bad: bytes, *, ndjson: bool = False) -> bytes:
    """Three records as raw JSON, the middle one's utm_source being ``bad`` (raw JSON text)."""
    good = [orjson.dumps(_record(n)) for n in (0, 2)]
    middle = orjson.dumps(_record(1, utm_source="PLACEHOLDER")).replace(b"PLACEHOLDER", bad)
    lines = [good[0], middle, good[1]]
    return b"\n".join(lines) if ndjson else b"[" + b",".join(lines) + b"]"


@pytest.mark.parametrize(
    "bad",
    [b"x\\ud800y", b"x\xffy", b"\xc3(", b"\xed\xa0\x80"],
    ids=["escaped-lone-surrogate", "raw-ff-byte", "truncated-sequence", "encoded-surrogate"],
)
def test_invalid_utf8_fails_only_its_record(
    clocked_standin: MixpanelStandin, http: httpx.Client, bad: bytes
) -> None:
    """Invalid UTF-8 in one string is a failed record (index, insert_id, field); the rest import."""
    standin = clocked_standin
    response = _post(http, standin, _raw_batch(bad))
    assert response.status_code == 400
    body = response.json()
    assert body["num_records_imported"] == 2
    assert body["failed_records"] == [
        {
            "index": 1,
            "insert_id": "ins-0001",
            "field": "properties.utm_source",
            "message": "properties.utm_source is invalid: string should be valid utf8",
        }
    ]
    assert [e["properties"]["$insert_id"] for e in standin.accepted_events()] == [
        "ins-0000",
        "ins-0002",
    ]
    assert (standin.stats().accepted, standin.stats().rejected) == (2, 1)


def test_invalid_utf8_fails_per_record_in_gzip_ndjson(
    clocked_standin: MixpanelStandin, http: httpx.Client
) -> None:
    """The per-record UTF-8 failure holds for a gzip NDJSON body too."""
    standin = clocked_standin
    body = _raw_batch(b"\xff", ndjson=True)
    response = _post(http, standin, body, content_type="application/x-ndjson", compress=True)
    assert response.status_code == 400
    assert [r["index"] for r in response.json()["failed_records"]] == [1]
    assert response.json()["num_records_imported"] == 2


def test_invalid_utf8_in_the_insert_id_still_gets_a_json_answer(
    clocked_standin: MixpanelStandin, http: httpx.Client
) -> None:
    """A bad $insert_id cannot be echoed: the failed record names the field with an empty id."""
    standin = clocked_standin
    body = orjson.dumps([_record(0, **{"$insert_id": "BAD"})]).replace(b"BAD", b"ab\\udc00")
    response = _post(http, standin, body)
    assert response.status_code == 400
    (failed,) = response.json()["failed_records"]
    assert (failed["index"], failed["insert_id"], failed["field"]) == (
        0,
        "",
        "properties.$insert_id",
    )


def test_syntax_error_is_still_a_whole_body_400(
    clocked_standin: MixpanelStandin, http: httpx.Client
) -> None:
    """Invalid bytes do not make broken JSON readable: a syntax error still refuses the body."""
    response = _post(http, clocked_standin, b'[{"event": "\xff", ')
    assert response.status_code == 400
    assert "failed_records" not in response.json()


def test_nan_is_not_accepted_by_the_lenient_parse(
    clocked_standin: MixpanelStandin, http: httpx.Client
) -> None:
    """The lenient re-parse for invalid UTF-8 does not let NaN (not JSON) through."""
    body = _raw_batch(b"\xff").replace(b'"distinct_id":"user-0"', b'"distinct_id":"user-0","n":NaN')
    response = _post(http, clocked_standin, body)
    assert response.status_code == 400
    assert "failed_records" not in response.json()


# --- nesting depth, keys, elements and the 8KB value limit -----------------------------------


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (_nested(4), "properties.p.k.k.k"),
        ([[[["deep"]]]], "properties.p[0][0][0]"),
        (list(range(255)), "properties.p"),
        ({"inner": {f"k{i}": i for i in range(255)}}, "properties.p.inner"),
        ([{"brand": {"name": "Puma"}}], "properties.p[0]"),
        (["x" * 100] * 80, "properties.p"),
        ({"k": "x" * 8_000}, "properties.p"),
    ],
    ids=[
        "object-depth-4",
        "list-depth-4",
        "255-elements",
        "255-keys",
        "nested-object-in-list",
        "8kb-list",
        "8kb-object",
    ],
)
def test_list_or_object_over_a_limit_fails_only_its_record(
    clocked_standin: MixpanelStandin, http: httpx.Client, value: Any, field: str
) -> None:
    """A list or object property over Mixpanel's limits fails its record on its path alone."""
    standin = clocked_standin
    response = _post(http, standin, [_record(0), _record(1, p=value), _record(2)])
    assert response.status_code == 400
    body = response.json()
    assert body["num_records_imported"] == 2
    ((index, failed_field),) = [(r["index"], r["field"]) for r in body["failed_records"]]
    assert (index, failed_field) == (1, field)


def test_list_and_object_values_within_the_limits_are_accepted(
    clocked_standin: MixpanelStandin, http: httpx.Client
) -> None:
    """Depth 3, 254 elements or keys, a flat list of objects and 8,000 bytes all pass."""
    values = [
        _nested(3),
        list(range(254)),
        {f"k{i}": i for i in range(254)},
        [{"brand": "Puma", "price": 30}, {"brand": "Adidas", "price": 15}],
        {"k": "x" * (8_000 - len('{"k":""}'))},
    ]
    records = [_record(n, p=value) for n, value in enumerate(values)]
    response = _post(http, clocked_standin, records)
    assert response.json()["num_records_imported"] == len(values), response.text


def test_event_of_a_megabyte_fails_alone(
    clocked_standin: MixpanelStandin, http: httpx.Client
) -> None:
    """An event of 1MB of JSON or more is a failed record; its batch-mates are imported."""
    huge = _record(1, blob="x" * 1_000_000)
    response = _post(http, clocked_standin, [_record(0), huge])
    assert response.status_code == 400
    (failed,) = response.json()["failed_records"]
    assert (failed["index"], failed["field"]) == (1, "record")


# --- what was accepted, over HTTP, with geolocation and truncation ------------------------------


def test_events_endpoint_lists_accepted_records_with_their_keys(
    clocked_standin: MixpanelStandin, http: httpx.Client
) -> None:
    """GET /_standin/events lists each stored record, its dedup key and what ingestion did."""
    standin = clocked_standin
    _post(http, standin, [_record(0, ip="0"), _record(1, time=NOW_MS + 5)])
    _post(http, standin, [_record(0, ip="0")])
    events = http.get(f"{standin.url}/_standin/events").json()["events"]
    assert [e["key"] for e in events] == [
        {
            "event": "svc.test.thing_done",
            "distinct_id": "user-0",
            "time": NOW_MS,
            "$insert_id": "ins-0000",
        },
        {
            "event": "svc.test.thing_done",
            "distinct_id": "user-1",
            "time": NOW_MS,
            "$insert_id": "ins-0001",
        },
        {
            "event": "svc.test.thing_done",
            "distinct_id": "user-0",
            "time": NOW_MS,
            "$insert_id": "ins-0000",
        },
    ]
    assert [e["duplicate"] for e in events] == [False, False, True]
    assert [e["time_overwritten"] for e in events] == [False, True, False]
    assert [e["sent_time"] for e in events] == [NOW_MS, NOW_MS + 5, NOW_MS]
    assert events[1]["event"]["properties"]["time"] == NOW_MS
    assert [e["geolocated"] for e in events] == [False, True, False]
    assert [e["truncated"] for e in events] == [[], [], []]


@pytest.mark.parametrize(
    ("properties", "geolocated"),
    [({}, True), ({"ip": "0"}, False), ({"ip": 0}, False), ({"ip": "203.0.113.9"}, True)],
    ids=["no-ip", "string-zero", "int-zero", "address"],
)
def test_ingested_view_says_whether_mixpanel_would_geolocate(
    clocked_standin: MixpanelStandin,
    http: httpx.Client,
    properties: dict[str, Any],
    geolocated: bool,
) -> None:
    """An event is geolocated (request IP or its ip) unless it carries ip 0 or "0"."""
    _post(http, clocked_standin, [_record(0, **properties)])
    assert [e.geolocated for e in clocked_standin.ingested()] == [geolocated]


def test_ingested_view_lists_strings_mixpanel_would_truncate(
    clocked_standin: MixpanelStandin, http: httpx.Client
) -> None:
    """Strings over 255 characters or bytes are accepted and reported as truncated by path."""
    _post(http, clocked_standin, [_record(0, ok="x" * 255, long="x" * 256, wide="é" * 200)])
    (event,) = clocked_standin.ingested()
    assert event.truncated == ("properties.long", "properties.wide")
    assert event.event["properties"]["long"] == "x" * 256  # kept as sent: only reported


def test_events_endpoint_is_409_without_retained_events(http: httpx.Client) -> None:
    """A stand-in keeping only counters answers GET /_standin/events with 409, not a wrong list."""
    with MixpanelStandin(now=lambda: NOW_S, retain_events=False) as standin:
        _post(http, standin, [_record(0)])
        assert http.get(f"{standin.url}/_standin/events").status_code == 409
