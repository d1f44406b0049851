"""The benchmarks' baseline stand-in reads the ``mixpanel`` package's form bodies and ``/track``.

``bench/_baseline_standin.py`` adds to the stand-in what only the benchmarks' baseline sends:
form-encoded ``data=<json>`` bodies on ``/import`` and ``/track``, answered the way the
package's consumers parse. The stand-in alone refuses both, as relay never sends them.
"""

from __future__ import annotations

import base64
import importlib.util
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import orjson
import pytest
from mixpanel import BufferedConsumer, Mixpanel, MixpanelException, ServiceAccountCredentials

from relay.testing.mixpanel_standin import MixpanelStandin

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load_baseline() -> ModuleType:
    """``bench/_baseline_standin.py`` as a module (bench/ is scripts, not a package)."""
    name = "_baseline_standin"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / "_baseline_standin.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


BaselineStandin = _load_baseline().BaselineStandin


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """A plain HTTP client shared by the module."""
    with httpx.Client(timeout=5.0) as client:
        yield client


def test_the_stand_in_alone_refuses_form_bodies_and_track(http: httpx.Client) -> None:
    """Without the baseline, a form body on /import is a 400 and /track is not served (404)."""
    with MixpanelStandin() as standin:
        response = http.post(
            f"{standin.url}/import",
            params={"strict": "1", "project_id": standin.project_id},
            data={"data": "[]"},
            auth=(standin.username, standin.secret),
        )
        assert response.status_code == 400
        assert "Content-Type" in response.json()["error"]
        assert http.post(f"{standin.url}/track", data={"data": "[]"}).status_code == 404


# --- the mixpanel package's consumers -------------------------------------------------------


def _consumer(standin: MixpanelStandin, secret: str) -> BufferedConsumer:
    credentials = ServiceAccountCredentials(
        username=standin.username, secret=secret, project_id=standin.project_id
    )
    return BufferedConsumer(
        import_url=f"{standin.url}/import",
        events_url=f"{standin.url}/track",
        credentials=credentials,
        retry_limit=0,
        request_timeout=5,
    )


@pytest.fixture
def real_clock_standin() -> Iterator[MixpanelStandin]:
    """A stand-in on the real clock, as the mixpanel package stamps events with time.time()."""
    with BaselineStandin() as server:
        yield server


def test_buffered_consumer_import_with_service_account_is_accepted(
    real_clock_standin: MixpanelStandin,
) -> None:
    """The package's form-encoded /import batches are recorded and answered so it raises nothing."""
    standin = real_clock_standin
    consumer = _consumer(standin, standin.secret)
    try:
        client = Mixpanel(standin.project_token, consumer=consumer)
        timestamp = int(time.time()) - 86_400
        for n in range(3):
            client.import_data(None, f"user-{n}", "svc.test.imported", timestamp, {"n": n})
        consumer.flush()
    finally:
        consumer._consumer._session.close()
    events = standin.accepted_events()
    assert [e["properties"]["n"] for e in events] == [0, 1, 2]
    assert all(e["properties"]["time"] == timestamp for e in events)
    (entry,) = standin.request_log()
    assert (entry.path, entry.status, entry.events) == ("/import", 200, 3)


def test_buffered_consumer_track_is_accepted(real_clock_standin: MixpanelStandin) -> None:
    """The package's /track batches (token in properties, float seconds) are accepted."""
    standin = real_clock_standin
    consumer = _consumer(standin, standin.secret)
    try:
        client = Mixpanel(standin.project_token, consumer=consumer)
        client.track("user-1", "svc.test.tracked", {"k": "v"})
        consumer.flush()
    finally:
        consumer._consumer._session.close()
    (event,) = standin.accepted_events()
    assert event["event"] == "svc.test.tracked"
    assert standin.request_log()[0].path == "/track"


def test_buffered_consumer_track_with_wrong_token_raises(
    real_clock_standin: MixpanelStandin,
) -> None:
    """A /track event carrying another project's token is refused and the package raises."""
    standin = real_clock_standin
    consumer = _consumer(standin, standin.secret)
    try:
        client = Mixpanel("someone-elses-token", consumer=consumer)
        client.track("user-1", "svc.test.tracked")
        with pytest.raises(MixpanelException, match=r"properties\.token"):
            consumer.flush()
    finally:
        consumer._consumer._session.close()
    assert standin.stats().accepted == 0


def test_buffered_consumer_with_wrong_secret_raises(real_clock_standin: MixpanelStandin) -> None:
    """A 401 on the legacy form path makes the package raise MixpanelException."""
    standin = real_clock_standin
    consumer = _consumer(standin, "wrong-secret")
    try:
        client = Mixpanel(standin.project_token, consumer=consumer)
        client.import_data(None, "user-1", "svc.test.imported", int(time.time()))
        with pytest.raises(MixpanelException, match="Invalid credentials"):
            consumer.flush()
    finally:
        consumer._consumer._session.close()
    assert [r.status for r in standin.request_log()] == [401]


def test_legacy_form_with_basic_auth_header_is_read_like_the_package_sends_it(
    real_clock_standin: MixpanelStandin, http: httpx.Client
) -> None:
    """A hand-built form body with data=<json>&verbose=1 gets {"status": 1, "error": null}."""
    standin = real_clock_standin
    record = {
        "event": "svc.test.imported",
        "properties": {
            "time": int(time.time()),
            "distinct_id": "user-1",
            "$insert_id": "abc-123",
        },
    }
    token = base64.b64encode(f"{standin.username}:{standin.secret}".encode()).decode()
    response = http.post(
        f"{standin.url}/import",
        params={"project_id": standin.project_id},
        data={"data": orjson.dumps(record).decode(), "verbose": "1", "ip": "0"},
        headers={"Authorization": f"Basic {token}"},
    )
    assert (response.status_code, response.json()) == (200, {"status": 1, "error": None})


def test_track_form_with_ip_zero_is_not_geolocated(
    real_clock_standin: MixpanelStandin,
) -> None:
    """The mixpanel package's /track sends ip=0, so its events are not geolocated by request."""
    standin = real_clock_standin
    consumer = _consumer(standin, standin.secret)
    try:
        Mixpanel(standin.project_token, consumer=consumer).track("user-1", "svc.test.tracked")
        consumer.flush()
    finally:
        consumer._consumer._session.close()
    assert [e.geolocated for e in standin.ingested()] == [False]
