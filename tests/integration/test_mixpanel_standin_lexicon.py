"""The stand-in serves the Lexicon Schemas API by its spec, over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from helpers.standin import StartStandin

from relay.testing.mixpanel_standin import MixpanelStandin

PROJECT = "2195193"


@pytest.fixture
def standin(start_standin: StartStandin) -> MixpanelStandin:
    """A stand-in with an integer project id."""
    return start_standin(project_id=PROJECT)


@pytest.fixture
def api(standin: MixpanelStandin) -> Iterator[httpx.Client]:
    """A client of the project's schemas, authenticated as the service account."""
    with httpx.Client(
        base_url=f"{standin.app_api_url}/projects/{PROJECT}/schemas",
        auth=(standin.username, standin.secret),
        timeout=5.0,
    ) as client:
        yield client


def _entry(name: str, entity: str = "event", **schema: Any) -> dict[str, Any]:
    return {"entityType": entity, "name": name, "schemaJson": schema}


def test_upload_then_list_all_one_type_and_one_name(api: httpx.Client) -> None:
    """POST /schemas stores entries; GET lists all, one entity type, ?entity_name=, or one."""
    entries = [_entry("b.done", description="B"), _entry("a.done"), _entry("plan", "profile")]
    response = api.post("", json={"entries": entries})
    assert response.json() == {"results": {"added": 3, "deleted": 0}, "status": "ok"}
    listed = api.get("").json()
    assert listed["status"] == "ok"
    assert [(e["entityType"], e["name"]) for e in listed["results"]] == [
        ("event", "a.done"),
        ("event", "b.done"),
        ("profile", "plan"),
    ]
    assert [e["name"] for e in api.get("/event").json()["results"]] == ["a.done", "b.done"]
    by_name = api.get("/event", params={"entity_name": "b.done"}).json()["results"]
    assert by_name == [_entry("b.done", description="B")]
    assert api.get("/event/b.done").json() == {"description": "B"}
    assert api.get("/event/missing").status_code == 404


def test_upload_replaces_by_type_and_name_and_truncate_empties_first(api: httpx.Client) -> None:
    """Re-uploading a name replaces its schema; truncate: true deletes everything first."""
    api.post("", json={"entries": [_entry("a.done", description="1"), _entry("p", "profile")]})
    api.post("", json={"entries": [_entry("a.done", description="2")]})
    assert api.get("/event/a.done").json() == {"description": "2"}
    response = api.post("", json={"entries": [_entry("c.done")], "truncate": True})
    assert response.json()["results"] == {"added": 1, "deleted": 2}
    assert [e["name"] for e in api.get("").json()["results"]] == ["c.done"]


def test_post_one_and_the_three_deletes(api: httpx.Client) -> None:
    """POST one creates; DELETE one, one type, and all report their delete_count."""
    assert api.post("/event/a.done", json={"description": "A"}).json() == {"status": "ok"}
    api.post("", json={"entries": [_entry("b.done"), _entry("p", "profile")]})
    assert api.delete("/event/a.done").json()["results"] == {"delete_count": 1}
    assert api.delete("/event/a.done").json()["results"] == {"delete_count": 0}
    assert api.delete("/event").json()["results"] == {"delete_count": 1}
    assert api.delete("").json()["results"] == {"delete_count": 1}
    assert api.get("").json()["results"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"entries": [{"name": "x", "schemaJson": {}}]}, "body.entries[0].entityType"),
        ({"entries": [_entry("x", properties={"k": {"type": "date"}})]}, "properties.k.type"),
        ({"entries": [], "truncate": "true"}, "body.truncate"),
    ],
    ids=["no-entity-type", "unknown-type", "truncate-string"],
)
def test_invalid_body_is_a_400_naming_the_field_and_stores_nothing(
    api: httpx.Client, standin: MixpanelStandin, body: dict[str, Any], field: str
) -> None:
    """A body the spec refuses gets 400 {"error": <field: problem>, "status": "error"}."""
    response = api.post("", json=body)
    assert response.status_code == 400
    assert response.json()["status"] == "error"
    assert field in response.json()["error"]
    assert standin.lexicon_entries() == []


def test_non_json_body_is_a_400(api: httpx.Client) -> None:
    """A body that is not JSON is refused."""
    response = api.post("", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "auth",
    [None, ("standin-user", "wrong"), ("standin-token", "")],
    ids=["none", "wrong-secret", "project-token"],
)
def test_without_the_service_account_it_is_401(
    standin: MixpanelStandin, auth: tuple[str, str] | None
) -> None:
    """No credentials, a wrong secret or a project token (not a service account): 401."""
    response = httpx.get(
        f"{standin.app_api_url}/projects/{PROJECT}/schemas", auth=auth, timeout=5.0
    )
    assert response.status_code == 401
    assert response.json()["status"] == "error"


def test_another_project_is_403_and_a_non_integer_project_is_400(
    standin: MixpanelStandin,
) -> None:
    """The service account opens its project only; the path's projectId is an integer."""
    auth = (standin.username, standin.secret)
    base = f"{standin.app_api_url}/projects"
    assert httpx.get(f"{base}/1/schemas", auth=auth, timeout=5.0).status_code == 403
    assert httpx.get(f"{base}/abc/schemas", auth=auth, timeout=5.0).status_code == 400
    assert httpx.get(f"{base}/{PROJECT}/schemas/group", auth=auth, timeout=5.0).status_code == 400


def test_control_plane_shows_what_was_uploaded_and_reset_forgets_it(
    api: httpx.Client, standin: MixpanelStandin
) -> None:
    """GET /_standin/lexicon lists the held schemas; POST /_standin/reset empties Lexicon."""
    api.post("", json={"entries": [_entry("a.done", description="A")]})
    shown = httpx.get(f"{standin.url}/_standin/lexicon", timeout=5.0).json()
    assert shown == {"results": [_entry("a.done", description="A")]}
    httpx.post(f"{standin.url}/_standin/reset", timeout=5.0)
    assert standin.lexicon_entries() == []
    assert standin.lexicon_requests() == []
