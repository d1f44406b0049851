"""How `relay check` reads each answer (issue 24): by its status alone, the cases taken from
Mixpanel's documents (Lexicon Schemas spec, ingestion spec, the 401 page), never from the text of
an error."""

from __future__ import annotations

import orjson
import pytest

from relay._mixpanel.check import read_app_api, read_import

CALL = "GET https://eu.mixpanel.com/api/app/projects/222/schemas/event?entity_name=relay-check"
#: ``ListSchemasResponse`` (Lexicon Schemas spec): ``results``, a list of ``SchemaEntry``.
LISTED = orjson.dumps(
    {
        "results": [{"entityType": "event", "name": "relay-check", "schemaJson": {}}],
        "status": "ok",
    }
)
#: The spec's 401 and 403 bodies share this shape; the text must not matter.
ERROR_BODY = orjson.dumps({"error": "project not found in this region", "status": "error"})


@pytest.mark.parametrize(
    ("status", "body", "ok", "configuration", "says"),
    [
        (200, LISTED, True, None, None),
        (200, orjson.dumps({"results": [], "status": "ok"}), True, None, None),
        (200, b"<html>a proxy</html>", False, True, "without Lexicon's list"),
        (401, ERROR_BODY, False, True, "credentials refused (HTTP 401"),
        (403, ERROR_BODY, False, True, "may not open project 222 here (HTTP 403"),
        (404, ERROR_BODY, False, True, "another region than 'eu'"),
        (301, b"", False, True, "redirected (HTTP 301)"),
        (429, ERROR_BODY, False, False, "could not check: HTTP 429"),
        (503, b"", False, False, "could not check: HTTP 503"),
        (418, ERROR_BODY, False, False, "not an answer Mixpanel documents"),
        (None, b"", False, False, "could not check: no answer"),
    ],
)
def test_the_app_api_answer_is_read_by_its_status(
    status: int | None, body: bytes, ok: bool, configuration: bool | None, says: str | None
) -> None:
    """200 with the documented list: ok; 401/403/404/redirects: misconfigured; else undecided."""
    problem = read_app_api(status, body, call=CALL, project_id="222", region="eu")

    assert (problem is None) is ok
    if problem is not None:
        assert problem.configuration is configuration
        assert says is not None
        assert says in problem.problem
        assert "project not found" not in problem.problem  # the server's text is not quoted


@pytest.mark.parametrize(
    ("status", "ok", "configuration"),
    [
        (200, True, None),  # StrictReceived (nothing in the batch to import)
        (400, True, None),  # StrictInvalid: the empty batch refused after authentication
        (401, False, True),  # StrictUnauthorized: credentials, or a wrong regional host
        (413, False, False),
        (429, False, False),  # RateLimitExceeded: no verdict
        (502, False, False),
        (None, False, False),
    ],
)
def test_the_import_answer_is_read_by_its_status(
    status: int | None, ok: bool, configuration: bool | None
) -> None:
    """/import's documented statuses: 200/400 ok, 401 misconfigured, the rest undecided."""
    problem = read_import(status, call="POST https://api-eu.mixpanel.com/import", region="eu")

    assert (problem is None) is ok
    if problem is not None:
        assert problem.configuration is configuration
    if status == 401:
        assert problem is not None
        assert "not in region 'eu'" in problem.problem
