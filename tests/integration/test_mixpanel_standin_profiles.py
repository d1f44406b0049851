"""The stand-in serves /engage, /groups and the GDPR API by their specs, over real HTTP.

Request bodies sent here are first validated against the ingestion spec's request schemas,
and GDPR answers against the GDPR spec's response schemas (``tests/contracts/``).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import orjson
import pytest
import yaml
from helpers.standin import StartStandin

from relay.testing.mixpanel_standin import MixpanelStandin

CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"
INGESTION = yaml.safe_load((CONTRACTS / "mixpanel-ingestion.openapi.yaml").read_text("utf-8"))
GDPR = yaml.safe_load((CONTRACTS / "mixpanel-gdpr.openapi.yaml").read_text("utf-8"))
TOKEN = "standin-token"


def _request_schema(path: str) -> jsonschema.Draft7Validator:
    body = INGESTION["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    return jsonschema.Draft7Validator({**body["schema"], "components": INGESTION["components"]})


def _gdpr_schema(name: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(
        {"$ref": f"#/components/schemas/{name}", "components": GDPR["components"]}
    )


@pytest.fixture
def standin(start_standin: StartStandin) -> MixpanelStandin:
    """A stand-in with an integer project id."""
    return start_standin(project_id="2195193")


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """A plain HTTP client."""
    with httpx.Client(timeout=5.0) as client:
        yield client


def _engage(
    http: httpx.Client, standin: MixpanelStandin, updates: Any, path: str = "/engage", **params: str
) -> httpx.Response:
    return http.post(f"{standin.url}{path}", params=params or None, json=updates)


def test_a_batch_of_user_updates_builds_the_profile_in_order(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """$set, $set_once, $add, $union, $remove and $unset in one batch apply one after another."""
    updates = [
        {"$token": TOKEN, "$distinct_id": "u-1", "$set": {"plan": "free", "old": 1}},
        {"$token": TOKEN, "$distinct_id": "u-1", "$set_once": {"plan": "x", "since": "2026"}},
        {"$token": TOKEN, "$distinct_id": "u-1", "$add": {"logins": 2}},
        {"$token": TOKEN, "$distinct_id": "u-1", "$union": {"tags": ["a", "b"]}},
        {"$token": TOKEN, "$distinct_id": "u-1", "$remove": {"tags": "a"}},
        {"$token": TOKEN, "$distinct_id": "u-1", "$unset": ["old"]},
    ]
    for update in updates:  # each is valid by its own operation's request schema
        operation = next(k for k in update if k not in ("$token", "$distinct_id"))
        path = {
            "$set": "/engage#profile-set",
            "$set_once": "/engage#profile-set-once",
            "$add": "/engage#profile-numerical-add",
            "$union": "/engage#profile-union",
            "$remove": "/engage#profile-list-remove",
            "$unset": "/engage#profile-unset",
        }[operation]
        _request_schema(path).validate([update])
    response = _engage(http, standin, updates)
    assert (response.status_code, response.text) == (200, "1")
    assert standin.profiles() == {
        ("user", "", "u-1"): {"plan": "free", "since": "2026", "logins": 2, "tags": ["b"]}
    }
    shown = http.get(f"{standin.url}/_standin/profiles").json()
    assert shown == {
        "profiles": [
            {
                "type": "user",
                "distinct_id": "u-1",
                "properties": {"plan": "free", "since": "2026", "logins": 2, "tags": ["b"]},
            }
        ]
    }


def test_delete_removes_the_profile(standin: MixpanelStandin, http: httpx.Client) -> None:
    """$delete drops the whole profile."""
    _engage(http, standin, [{"$token": TOKEN, "$distinct_id": "u-1", "$set": {"a": 1}}])
    delete = [{"$token": TOKEN, "$distinct_id": "u-1", "$delete": ""}]
    assert _engage(http, standin, delete).text == "1"
    assert standin.profiles() == {}


def test_group_updates_keep_group_profiles(standin: MixpanelStandin, http: httpx.Client) -> None:
    """/groups keys profiles by $group_key and $group_id; $union and $unset apply to them."""
    updates = [
        {"$token": TOKEN, "$group_key": "company", "$group_id": "c-1", "$set": {"n": "Acme"}},
        {"$token": TOKEN, "$group_key": "company", "$group_id": "c-1", "$union": {"t": [1, 2]}},
    ]
    _request_schema("/groups#group-set").validate(updates[:1])
    assert _engage(http, standin, updates, path="/groups").text == "1"
    assert standin.profiles() == {("group", "company", "c-1"): {"n": "Acme", "t": [1, 2]}}
    listed = http.get(f"{standin.url}/_standin/profiles").json()["profiles"]
    assert listed[0]["type"] == "group"
    assert listed[0]["group_key"] == "company"


def test_strict_mode_reports_each_refused_update_and_applies_the_rest(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """strict=1: a wrong token fails its update alone, with index, field and message; with
    nothing refused the answer is the spec's text 1."""
    updates = [
        {"$token": "someone-else", "$distinct_id": "u-1", "$set": {"a": 1}},
        {"$token": TOKEN, "$distinct_id": "u-2", "$set": {"a": 2}},
    ]
    response = _engage(http, standin, updates, strict="1")
    assert response.status_code == 400
    body = response.json()
    assert body["num_records_imported"] == 1
    (failed,) = body["failed_records"]
    assert (failed["index"], failed["field"]) == (0, "$token")
    assert list(standin.profiles()) == [("user", "", "u-2")]
    ok = _engage(http, standin, updates[1:], strict="1")
    # With nothing refused, strict=1 answers the spec's Received like any other request.
    assert (ok.headers["content-type"].split(";")[0], ok.text) == ("text/plain", "1")


def test_plain_and_verbose_answers(standin: MixpanelStandin, http: httpx.Client) -> None:
    """Without strict: 0 when no update is valid, and verbose=1 names the error."""
    bad = [{"$token": TOKEN, "$distinct_id": "u-1"}]
    assert _engage(http, standin, bad).text == "0"
    verbose = _engage(http, standin, bad, verbose="1").json()
    assert verbose["status"] == 0
    assert verbose["error"].startswith("record:")


def test_form_encoded_data_and_gzip_are_read(standin: MixpanelStandin, http: httpx.Client) -> None:
    """The spec's form encoding (data=<json>) and a gzip body both work."""
    update = {"$token": TOKEN, "$distinct_id": "u-1", "$set": {"a": 1}}
    response = http.post(f"{standin.url}/engage", data={"data": orjson.dumps(update).decode()})
    assert response.text == "1"
    response = http.post(
        f"{standin.url}/engage",
        content=gzip.compress(orjson.dumps([{**update, "$set": {"b": 2}}])),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.text == "1"
    assert standin.profiles()[("user", "", "u-1")] == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    ("content", "status"),
    [(b"[", 400), (b"[]", 400), (orjson.dumps([{}] * 2001), 400)],
    ids=["not-json", "empty", "over-2000"],
)
def test_whole_request_refusals(
    standin: MixpanelStandin, http: httpx.Client, content: bytes, status: int
) -> None:
    """Unreadable, empty and over-2000-update bodies are refused whole."""
    response = http.post(
        f"{standin.url}/engage", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status
    assert standin.profile_requests()[-1].status == status


# --- GDPR ------------------------------------------------------------------------------------


def _gdpr(
    http: httpx.Client,
    standin: MixpanelStandin,
    method: str,
    path: str,
    *,
    body: Any = None,
    token: str | None = TOKEN,
    bearer: str | None = "standin-oauth-token",
) -> httpx.Response:
    return http.request(
        method,
        f"{standin.app_api_url}{path}",
        params={"token": token} if token is not None else None,
        json=body,
        headers={"Authorization": f"Bearer {bearer}"} if bearer else None,
    )


def test_deletion_job_is_pending_until_run_then_deletes_the_profiles(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """A deletion answers 201 with a task id; run, it removes those users' profiles only."""
    _engage(
        http,
        standin,
        [
            {"$token": TOKEN, "$distinct_id": "u-1", "$set": {"a": 1}},
            {"$token": TOKEN, "$distinct_id": "u-2", "$set": {"a": 2}},
        ],
    )
    created = _gdpr(http, standin, "POST", "/data-deletions/v3.0", body={"distinct_ids": ["u-1"]})
    assert created.status_code == 201
    _gdpr_schema("JobCreated").validate(created.json())
    task_id = created.json()["results"]["task_id"]
    report = _gdpr(http, standin, "GET", f"/data-deletions/v3.0/{task_id}").json()
    _gdpr_schema("CheckDeletionResponse").validate(report)
    assert report["results"]["status"] == "PENDING"
    assert report["results"]["compliance_type"] == "GDPR"
    assert http.post(f"{standin.url}/_standin/gdpr/complete").json() == {"completed": [task_id]}
    assert list(standin.profiles()) == [("user", "", "u-2")]
    report = _gdpr(http, standin, "GET", f"/data-deletions/v3.0/{task_id}").json()
    assert report["results"]["status"] == "SUCCESS"
    assert report["results"]["project_id"] == 2195193


def test_pending_deletion_can_be_cancelled_and_then_deletes_nothing(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """DELETE cancels a pending deletion (204, REVOKED); a finished one cannot be cancelled."""
    _engage(http, standin, [{"$token": TOKEN, "$distinct_id": "u-1", "$set": {"a": 1}}])
    first = _gdpr(http, standin, "POST", "/data-deletions/v3.0", body={"distinct_ids": ["u-1"]})
    task_id = first.json()["results"]["task_id"]
    assert _gdpr(http, standin, "DELETE", f"/data-deletions/v3.0/{task_id}").status_code == 204
    standin.complete_gdpr_jobs()
    assert list(standin.profiles()) == [("user", "", "u-1")]
    assert [job.status for job in standin.gdpr_jobs()] == ["REVOKED"]
    again = _gdpr(http, standin, "DELETE", f"/data-deletions/v3.0/{task_id}")
    assert again.status_code == 400


def test_retrieval_job_reports_a_link_once_done(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """A CCPA retrieval with a disclosure type is created, then reports its export link."""
    body = {"distinct_ids": ["u-1"], "compliance_type": "CCPA", "disclosure_type": "Categories"}
    created = _gdpr(http, standin, "POST", "/data-retrievals/v3.0", body=body)
    task_id = created.json()["results"]["task_id"]
    pending = _gdpr(http, standin, "GET", f"/data-retrievals/v3.0/{task_id}").json()
    _gdpr_schema("CheckRetrievalResponse").validate(pending)
    assert pending["results"]["results"] == ""
    standin.complete_gdpr_jobs()
    done = _gdpr(http, standin, "GET", f"/data-retrievals/v3.0/{task_id}").json()
    assert done["results"]["status"] == "SUCCESS"
    assert done["results"]["results"]
    listed = http.get(f"{standin.url}/_standin/gdpr").json()["jobs"]
    assert listed[0]["disclosure_type"] == "Categories"


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"bearer": None}, 401),
        ({"bearer": "wrong"}, 401),
        ({"token": None}, 400),
        ({"token": "other-project"}, 403),
        ({"body": {"distinct_ids": []}}, 400),
        ({"body": {"distinct_ids": ["u"], "compliance_type": "HIPAA"}}, 400),
        ({"body": [1]}, 400),
    ],
    ids=["no-oauth", "wrong-oauth", "no-token", "wrong-token", "no-ids", "bad-type", "array"],
)
def test_gdpr_refusals(
    standin: MixpanelStandin, http: httpx.Client, kwargs: dict[str, Any], status: int
) -> None:
    """OAuth bearer and the project token are required; bodies are checked; no job is made."""
    kwargs.setdefault("body", {"distinct_ids": ["u-1"]})
    response = _gdpr(http, standin, "POST", "/data-deletions/v3.0", **kwargs)
    assert response.status_code == status
    assert response.json()["status"] == "error"
    assert standin.gdpr_jobs() == []


def test_unknown_job_is_404_and_reset_forgets_profiles_and_jobs(
    standin: MixpanelStandin, http: httpx.Client
) -> None:
    """An unknown task id is 404; reset empties profiles and jobs."""
    assert _gdpr(http, standin, "GET", "/data-deletions/v3.0/nope").status_code == 404
    _engage(http, standin, [{"$token": TOKEN, "$distinct_id": "u-1", "$set": {"a": 1}}])
    _gdpr(http, standin, "POST", "/data-deletions/v3.0", body={"distinct_ids": ["u-1"]})
    standin.reset()
    assert standin.profiles() == {}
    assert standin.gdpr_jobs() == []
