"""relay reads every answer Mixpanel documents for the endpoints it sends to, as the documents say.

The cases are not written here: they are loaded from Mixpanel's own documents (the OpenAPI
specs' response examples, or an instance of the response schema where a response has no
example, and the example bodies in the docs pages), copied under ``tests/contracts/``. Each is
filed by relay's answer reader for a batch it agrees with, and the bucket it lands in is
compared with the table below. A document gaining an example fails the coverage test until the
table says how relay must read it. Where spec and docs disagree (``insert_id`` vs
``$insert_id``, text ``1`` vs verbose JSON), both forms are cases.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from relay._mixpanel import app_api, gdpr, lexicon
from relay._mixpanel.answers import Answer, SendOutcome, file_answer
from relay._mixpanel.encoding import EncodedBatch
from relay._mixpanel.profile_answers import file_profile_answer
from relay._tables import OutboxEvent

CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"
INGESTION = CONTRACTS / "mixpanel-ingestion.openapi.yaml"
DOCS = CONTRACTS / "mixpanel-docs"

DELIVERED = "delivered"
PER_RECORD = "refused per record, the rest delivered"
REFUSED = "refused"
SPLIT = "split, each half sent again"
RETRIED = "retried"
THROTTLED = "throttled: the relay slows down, the rows keep their attempt"
CONFIGURATION = "configuration error: sending stops"


@dataclass(frozen=True)
class Case:
    """One documented answer: which endpoint family, where it is documented, status, body."""

    family: str  # "import" or "profile"
    source: str
    status: int
    body: bytes


#: (family, source) -> how relay must read it, for a batch of 1 and for a batch of 2 or more
#: (the size the example implies, when it implies one).
EXPECTED: dict[tuple[str, str], tuple[str, str]] = {
    ("import", "spec /import 200 StrictReceived example"): (DELIVERED, DELIVERED),
    ("import", "spec /import 400 StrictInvalid example"): (REFUSED, PER_RECORD),
    ("import", "spec /import 401 StrictUnauthorized example"): (CONFIGURATION, CONFIGURATION),
    ("import", "spec /import 413 StrictTooLarge example"): (REFUSED, SPLIT),
    ("import", "spec /import 429 RateLimitExceeded example"): (THROTTLED, THROTTLED),
    ("import", "docs import-events.mdx validation error example"): (REFUSED, PER_RECORD),
    ("profile", "spec Received example Valid Data"): (DELIVERED, DELIVERED),
    ("profile", "spec Received example Invalid Data"): (REFUSED, SPLIT),
    ("profile", "spec verbose=1 description, status 1"): (DELIVERED, DELIVERED),
    ("profile", "spec verbose=1 description, status 0"): (REFUSED, SPLIT),
    ("profile", "spec 401 Unauthorized schema"): (CONFIGURATION, CONFIGURATION),
    ("profile", "spec 403 Forbidden schema"): (CONFIGURATION, CONFIGURATION),
    # strict=1's per-record answer: the spec describes it for /engage and /groups in the same
    # words as for /import, whose per-record object is StrictInvalid.
    ("profile", "spec strict=1 per-record answer (StrictInvalid example)"): (REFUSED, PER_RECORD),
}

#: Answers no document gives: retried, never delivered or refused on a guess.
UNDOCUMENTED: list[tuple[str, int, bytes]] = [
    ("profile", 200, b'{"code": 200, "status": "OK", "num_records_imported": 2}'),
    ("profile", 200, b""),
    ("profile", 200, b"<html>OK</html>"),
    ("profile", 200, b"2"),
    ("profile", 200, b'{"status": true, "error": null}'),
    ("profile", 200, b'{"status": 1}'),
    ("profile", 400, b'{"error": "bad", "status": "error"}'),
    ("import", 200, b"1"),
    ("import", 200, b"{}"),
    ("import", 400, b"<html>Bad Request</html>"),
    ("import", 400, b'{"code": 400, "status": "Bad Request"}'),
]


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _instance(doc: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A value the schema accepts (its examples where it gives them), for a response the spec
    gives no example of."""
    schema = _resolve(doc, schema)
    if "example" in schema:
        return schema["example"]
    if "enum" in schema:
        return schema["enum"][0]
    if "allOf" in schema:
        return _instance(doc, schema["allOf"][0])
    if schema.get("type") == "array":
        return [_instance(doc, schema["items"])]
    if schema.get("type") == "object" or "properties" in schema:
        return {name: _instance(doc, sub) for name, sub in schema.get("properties", {}).items()}
    kinds = {"string": "documented error", "integer": 0, "number": 0, "boolean": False}
    return kinds.get(schema.get("type", "string"), "documented")


def _encode(value: Any) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def _spec_cases() -> Iterator[Case]:
    doc = yaml.safe_load(INGESTION.read_text(encoding="utf-8"))
    seen: set[tuple[str, str]] = set()
    for path, item in doc["paths"].items():
        if path == "/import":
            family, where = "import", "spec /import"
        elif path.startswith(("/engage#", "/groups#")):
            family, where = "profile", "spec"
        else:
            continue  # relay never calls /track or the lookup tables
        for status, ref in item["post"]["responses"].items():
            name = ref["$ref"].rsplit("/", 1)[-1]
            response = _resolve(doc, ref)
            for content in response["content"].values():
                found: list[tuple[str, Any]] = []
                if "example" in content["schema"] or "example" in content:
                    example = content.get("example", content["schema"].get("example"))
                    found.append((f"{where} {status} {name} example", example))
                for label, example in content.get("examples", {}).items():
                    found.append((f"{where} {name} example {label}", example["value"]))
                if not found:
                    found.append(
                        (f"{where} {status} {name} schema", _instance(doc, content["schema"]))
                    )
                for source, value in found:
                    if (family, source) in seen:
                        continue  # every /engage# operation shares the same responses
                    seen.add((family, source))
                    yield Case(family, source, int(status), _encode(value))
    # The verbose=1 variant of Received is given in each operation's parameter description.
    yield Case("profile", "spec verbose=1 description, status 1", 200, b'{"status":1,"error":null}')
    yield Case(
        "profile",
        "spec verbose=1 description, status 0",
        200,
        b'{"status":0,"error":"documented error"}',
    )
    strict = doc["components"]["responses"]["StrictInvalid"]["content"]["application/json"]
    yield Case(
        "profile",
        "spec strict=1 per-record answer (StrictInvalid example)",
        400,
        _encode(strict["schema"]["example"]),
    )


def _docs_cases() -> Iterator[Case]:
    text = (DOCS / "import-events.mdx").read_text(encoding="utf-8")
    section = text.split("### Example of a validation error", 1)[1]
    block = re.search(r"```json[^\n]*\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the docs page lost its validation error example"
    # The page's example has a trailing comma after the last failed record: JSON does not
    # allow one, Mixpanel's real answer would not carry one.
    body = re.sub(r",(\s*[\]}])", r"\1", block.group(1))
    yield Case("import", "docs import-events.mdx validation error example", 400, body.encode())


CASES = [*_spec_cases(), *_docs_cases()]


def _batch_size(case: Case, *, single: bool) -> int:
    """The batch the answer agrees with: the size its counts imply, else 1 or 2.

    0 (not tested) for a single row when the answer's counts imply a larger batch.
    """
    payload = _json(case.body)
    failed = payload.get("failed_records") if isinstance(payload, dict) else None
    imported = payload.get("num_records_imported") if isinstance(payload, dict) else None
    implied = int(imported or 0) + len(failed or []) if imported is not None or failed else None
    if implied is not None:
        return implied if not single or implied == 1 else 0
    return 1 if single else 2


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _events(case: Case, size: int) -> list[OutboxEvent]:
    events = [
        OutboxEvent(i, f"insert-{i}", "svc.a.b_done", "u", 1_700_000_000_000, "{}", 1)
        for i in range(size)
    ]
    payload = _json(case.body)
    for record in payload.get("failed_records", []) if isinstance(payload, dict) else []:
        insert_id = record.get("insert_id", record.get("$insert_id"))
        if insert_id is not None:
            index = int(record["index"])
            events[index] = events[index]._replace(insert_id=insert_id)
    return events


def classify(  # noqa: PLR0911 -- one return per bucket
    family: str, status: int, body: bytes, size: int, case: Case | None = None
) -> str:
    """The bucket relay files a batch of ``size`` rows in when this answer comes back."""
    events = (
        _events(case, size)
        if case
        else [
            OutboxEvent(i, f"insert-{i}", "e.v.t", "u", 1_700_000_000_000, "{}", 1)
            for i in range(size)
        ]
    )
    batch = EncodedBatch(events, [b"{}"] * size)
    request = httpx.Request("POST", "https://api.mixpanel.com/engage")
    answer = Answer(status, body, httpx.Response(status, content=body, request=request), None)
    outcome = SendOutcome(
        delivered=[], rejected={}, retry={}, unsent=[], auth_error=None, requests=[]
    )
    stack: list[EncodedBatch] = []
    reader = file_answer if family == "import" else file_profile_answer
    stopped = reader(batch, status, answer, outcome, stack, hint="RELAY_MIXPANEL_API_URL")
    if stopped and outcome.auth_error and len(outcome.unsent) == size:
        return CONFIGURATION
    if stack:
        assert sorted(e.id for b in stack for e in b.events) == list(range(size))
        return SPLIT
    if len(outcome.delivered) == size:
        return DELIVERED
    if len(outcome.retry) == size:
        return RETRIED
    if len(outcome.throttled) == size:
        return THROTTLED
    if len(outcome.rejected) == size:
        return REFUSED
    if outcome.rejected and len(outcome.rejected) + len(outcome.delivered) == size:
        return PER_RECORD
    return f"mixed: {outcome}"


def test_every_documented_answer_has_an_expected_reading() -> None:
    """The documents' answers and the table name the same cases: none unread, none invented."""
    assert {(c.family, c.source) for c in CASES} == set(EXPECTED)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.family}: {c.source}")
def test_documented_answer_is_read_as_documented(case: Case) -> None:
    """Each documented answer lands every row in the bucket the table gives, alone and batched."""
    single, batched = EXPECTED[(case.family, case.source)]
    many = _batch_size(case, single=False)
    assert classify(case.family, case.status, case.body, many, case) == batched
    one = _batch_size(case, single=True)
    if one:
        assert classify(case.family, case.status, case.body, one, case) == single


@pytest.mark.parametrize(("family", "status", "body"), UNDOCUMENTED)
def test_undocumented_answer_is_retried_never_delivered(
    family: str, status: int, body: bytes
) -> None:
    """An answer in no document (another endpoint's shape, a proxy page) is retried."""
    assert classify(family, status, body, 2) == RETRIED


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize("family", ["import", "profile"])
def test_server_errors_are_retried(family: str, status: int) -> None:
    """5xx (the docs: retry with exponential backoff) is retried on every endpoint."""
    assert classify(family, status, b'{"error": "down", "status": "error"}', 2) == RETRIED


def test_contract_copies_match_the_shared_reference() -> None:
    """tests/contracts/ holds the same documents as ../shared/reference, when that is present."""
    shared = Path(__file__).resolve().parents[3] / "shared" / "reference"
    if not shared.is_dir():
        pytest.skip("no ../shared/reference beside the clone")
    for copy in [*CONTRACTS.glob("*.yaml"), *DOCS.glob("*.mdx")]:
        original = shared / copy.relative_to(CONTRACTS)
        assert copy.read_bytes() == original.read_bytes(), copy.name


# --- the application API: GDPR and Lexicon ---------------------------------------------------

FILED = "deletion filed, its task id kept"
NOT_FILED = "refused: nothing erased"
LISTED = "schemas read"
UPLOADED = "upload confirmed"
NOT_CONFIRMED = "upload not confirmed"

#: (operation, source) -> how relay reads it. GDPR: relay calls create-deletion; Lexicon:
#: list-schemas-for-entity and upload-schemas-for-project.
APP_EXPECTED: dict[tuple[str, str], str] = {
    ("create-deletion", "spec 201 JobCreated schema"): FILED,
    ("create-deletion", "spec 401 schema"): CONFIGURATION,
    ("create-deletion", "spec 403 schema"): CONFIGURATION,
    ("create-deletion", "docs gdpr-api.mdx Create a Deletion Task example"): FILED,
    ("list-schemas-for-entity", "spec 200 ListSchemasResponse schema"): LISTED,
    ("list-schemas-for-entity", "spec 401 schema"): CONFIGURATION,
    ("list-schemas-for-entity", "spec 403 schema"): CONFIGURATION,
    ("upload-schemas-for-project", "spec 200 BatchUploadSchemasResponse schema"): UPLOADED,
    ("upload-schemas-for-project", "spec 401 schema"): CONFIGURATION,
    ("upload-schemas-for-project", "spec 403 schema"): CONFIGURATION,
}


@dataclass(frozen=True)
class AppCase:
    """One documented answer of an application API operation relay calls."""

    operation: str
    source: str
    status: int
    payload: Any


def _app_cases() -> Iterator[AppCase]:
    for name in ("mixpanel-gdpr.openapi.yaml", "mixpanel-lexicon-schemas.openapi.yaml"):
        doc = yaml.safe_load((CONTRACTS / name).read_text(encoding="utf-8"))
        for item in doc["paths"].values():
            for operation in item.values():
                if not isinstance(operation, dict):
                    continue
                op = operation.get("operationId")
                if op not in {o for o, _ in APP_EXPECTED}:
                    continue
                for status, response in operation["responses"].items():
                    for content in _resolve(doc, response).get("content", {}).values():
                        schema = content["schema"]
                        label = schema.get("$ref", "").rsplit("/", 1)[-1]
                        source = f"spec {status} {label} schema".replace("  ", " ")
                        yield AppCase(op, source, int(status), _instance(doc, schema))
    text = (DOCS / "gdpr-api.mdx").read_text(encoding="utf-8")
    section = text.split("#### Create a Deletion Task", 1)[1].split("####", 1)[0]
    found = re.search(r"Example Return:<br />`(\{.*\})`", section)
    assert found is not None, "the docs page lost its deletion example"
    yield AppCase(
        "create-deletion",
        "docs gdpr-api.mdx Create a Deletion Task example",
        200,
        json.loads(found.group(1)),
    )


APP_CASES = list(_app_cases())


def app_classify(operation: str, status: int, payload: Any) -> str:
    """How relay reads one application API answer."""
    reading = app_api.status_reading(status)
    if reading == app_api.CONFIGURATION:
        return CONFIGURATION  # exit 3
    if reading != app_api.ANSWER:
        return reading
    reply = app_api.Reply(status, payload)
    if operation == "create-deletion":
        return FILED if gdpr.task_id_of(status, payload) else NOT_FILED
    if operation == "upload-schemas-for-project":
        return UPLOADED if lexicon.upload_counts(reply) is not None else NOT_CONFIRMED
    results = payload.get("results") if isinstance(payload, dict) else None
    return LISTED if status == 200 and isinstance(results, list) else "not a listing"


def test_every_documented_app_api_answer_has_an_expected_reading() -> None:
    """The GDPR and Lexicon documents' answers and the table name the same cases."""
    assert {(c.operation, c.source) for c in APP_CASES} == set(APP_EXPECTED)


@pytest.mark.parametrize("case", APP_CASES, ids=lambda c: f"{c.operation}: {c.source}")
def test_documented_app_api_answer_is_read_as_documented(case: AppCase) -> None:
    """Each documented GDPR or Lexicon answer is read as the table says."""
    expected = APP_EXPECTED[(case.operation, case.source)]
    assert app_classify(case.operation, case.status, case.payload) == expected


@pytest.mark.parametrize(
    ("operation", "status", "payload", "expected"),
    [
        ("create-deletion", 200, {"status": "error", "error": "no"}, NOT_FILED),
        ("create-deletion", 201, {"status": "ok", "results": {}}, NOT_FILED),
        ("create-deletion", 201, {"status": "ok", "results": {"task_id": "a\x1b[2J"}}, NOT_FILED),
        ("create-deletion", 429, None, app_api.RETRIED),
        ("create-deletion", 503, None, app_api.RETRIED),
        ("create-deletion", 302, None, CONFIGURATION),
        ("upload-schemas-for-project", 200, {}, NOT_CONFIRMED),
        ("upload-schemas-for-project", 200, {"status": "error", "error": "quota"}, NOT_CONFIRMED),
        ("upload-schemas-for-project", 429, None, app_api.RETRIED),
        ("list-schemas-for-entity", 200, {"results": {}}, "not a listing"),
    ],
)
def test_undocumented_app_api_answers_are_never_success(
    operation: str, status: int, payload: Any, expected: str
) -> None:
    """An answer outside the documents is never a filed deletion or a confirmed upload; 429 and
    5xx are retried, a redirect is a configuration error."""
    assert app_classify(operation, status, payload) == expected
