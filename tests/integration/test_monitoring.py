"""The shipped monitoring (``monitoring/``) matches what relay exports and what the tools accept.

The Grafana dashboard and the Prometheus alert rules may only name metrics a real ``relay run``
serves on ``/metrics``, and the dashboard shows every metric relay exports. The rules pass
``promtool check rules`` and their unit tests (``promtool test rules``); so do the dashboard's
queries, checked as recording rules. promtool is Debian's ``prometheus`` package; ``.ci/run``
puts it in the virtual environment, and in CI (``CI=true``) its absence fails the test. Without
it, the structural checks here still run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from relay._store import outbox as store
from relay.testing.mixpanel_standin import MixpanelStandin

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
DASHBOARD = MONITORING / "grafana" / "relay.json"
RULES = MONITORING / "prometheus" / "relay-alerts.yml"
RULES_TESTS = MONITORING / "prometheus" / "relay-alerts.test.yml"
RELAY = Path(sys.executable).parent / "relay"
WAIT_SECONDS = 30.0
#: Alerts the README promises, at least.
PROMISED_ALERTS = {
    "RelayBacklogAgeGrowing",
    "RelayDeadLettersRising",
    "RelayAuthFailing",
    "RelayStale",
}
#: A metric name in a PromQL expression (relay's own all start with ``relay_``).
METRIC_NAME = re.compile(r"\brelay_[a-z0-9_]+\b")
#: Grafana's variables, replaced by what Grafana would put there, so promtool can parse.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$job": ".*"}
DURATION = re.compile(r"[0-9]+(ms|s|m|h|d|w|y)")


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(RULES.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def _dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL query of the dashboard: panel targets, then templating queries."""
    queries = [t["expr"] for p in _panels(dashboard) for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            queries.append(query["query"] if isinstance(query, dict) else query)
    return queries


def _as_promql(query: str) -> str:
    """A dashboard query as Prometheus would receive it from Grafana."""
    match = re.fullmatch(r"label_values\((\w+), *\w+\)", query)
    if match:  # Grafana's own helper: it asks for the series of this metric
        return match.group(1)
    for variable, value in GRAFANA_VARIABLES.items():
        query = query.replace(variable, value)
    assert "$" not in query, f"unknown Grafana variable in {query!r}"
    return query


# --- what a real relay exports ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _commit_one_event(engine: Engine) -> None:
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        store.insert_event(
            conn,
            values={
                "insert_id": str(uuid.uuid4()),
                "event": "svc.test.thing_done",
                "distinct_id": "user-1",
                "time_ms": int(now.timestamp() * 1000),
                "properties": {"organization_id": "org-1"},
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            },
        )


@pytest.fixture
def scraped(sqlite_engine: Engine, tmp_path: Path) -> Iterator[str]:
    """``/metrics`` of a real ``relay run`` that has delivered one event to a stand-in."""
    _commit_one_event(sqlite_engine)
    port = _free_port()
    with MixpanelStandin() as standin:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("RELAY_")},
            "RELAY_DATABASE_URL": sqlite_engine.url.render_as_string(hide_password=False),
            "RELAY_METRICS_PORT": str(port),
            "RELAY_POLL_MIN_SECONDS": "0.2",
            "RELAY_POLL_MAX_SECONDS": "0.5",
            **standin.settings_env(),
        }
        log = (tmp_path / "relay.log").open("w")
        relay = subprocess.Popen([str(RELAY), "run"], env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + WAIT_SECONDS
            while True:
                assert relay.poll() is None, (tmp_path / "relay.log").read_text()
                try:
                    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                except httpx.TransportError:
                    text = ""
                if 'relay_send_seconds_count{destination="default",status="200"}' in text:
                    break
                assert time.monotonic() < deadline, "the relay never delivered the event"
                time.sleep(0.2)
            yield text
        finally:
            relay.terminate()
            relay.wait(timeout=WAIT_SECONDS)
            log.close()


def _families_and_samples(text: str) -> tuple[set[str], set[str]]:
    """relay's metric families (``*_created`` aside: prometheus_client's creation times of
    counters and histograms) and the names of their samples."""
    families = list(text_string_to_metric_families(text))
    relay_families = [
        f for f in families if f.name.startswith("relay_") and not f.name.endswith("_created")
    ]
    return (
        {f.name for f in relay_families},
        {s.name for f in relay_families for s in f.samples},
    )


def test_the_dashboard_and_the_rules_name_only_metrics_relay_exports(scraped: str) -> None:
    """Every relay_* name in a dashboard query or an alert rule is a series a running relay
    serves, and every metric relay serves appears on the dashboard."""
    families, samples = _families_and_samples(scraped)
    assert "relay_send_seconds" in families  # the scrape saw a delivery, histogram included
    dashboard_names = {n for q in _dashboard_queries(_dashboard()) for n in METRIC_NAME.findall(q)}
    rule_names = {n for rule in _rules() for n in METRIC_NAME.findall(rule["expr"])}

    assert dashboard_names - samples == set()
    assert rule_names - samples == set()
    on_the_dashboard = {
        family
        for family in families
        if any(name == family or name.startswith(f"{family}_") for name in dashboard_names)
    }
    assert families - on_the_dashboard == set()


def test_a_misspelt_metric_would_be_caught(scraped: str) -> None:
    """The name check sees a query's metric names: a wrong one is not among the exported."""
    _, samples = _families_and_samples(scraped)
    names = set(METRIC_NAME.findall("sum(rate(relay_delivered_events_total[5m]))"))
    assert names == {"relay_delivered_events_total"}
    assert names - samples == names


# --- structure, without promtool --------------------------------------------------------------


def test_the_dashboard_has_the_fields_grafana_needs() -> None:
    """Title, uid, schema version, a Prometheus datasource variable, and panels each with a
    unique id, a type, a title, a grid position inside 24 columns and (except rows) queries."""
    dashboard = _dashboard()
    assert isinstance(dashboard["title"], str)
    assert dashboard["title"]
    assert re.fullmatch(r"[a-z0-9-]{1,40}", dashboard["uid"])
    assert isinstance(dashboard["schemaVersion"], int)
    assert dashboard["time"] == {"from": "now-6h", "to": "now"}
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = _panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert panel["title"], panel
        assert all(isinstance(grid[k], int) for k in ("h", "w", "x", "y")), panel["title"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["type"] in {"stat", "timeseries", "gauge", "table"}, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert ref_ids, panel["title"]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]
            _balanced(target["expr"])


def _balanced(expr: str) -> None:
    """Brackets pair up and label matchers are quoted, outside string literals."""
    closing = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr):
        if char in "([{":
            stack.append(char)
        elif char in closing:
            assert stack, f"unbalanced {char!r} in {expr!r}"
            assert stack.pop() == closing[char], f"unbalanced {char!r} in {expr!r}"
    assert not stack, f"unclosed {stack} in {expr!r}"
    for matcher in re.findall(r"\{([^}]*)\}", expr):
        for part in filter(None, (p.strip() for p in matcher.split(","))):
            assert re.fullmatch(r'\w+\s*(=~|!~|!=|=)\s*"[^"]*"', part), f"{part!r} in {expr!r}"


def test_every_alert_rule_is_complete() -> None:
    """Each rule has a unique alert name, a parseable expression, a duration for ``for``, a
    severity, and a summary and a description for the person paged; the promised alerts exist."""
    rules = _rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    assert set(names) >= PROMISED_ALERTS
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        _balanced(rule["expr"])
        assert DURATION.fullmatch(rule.get("for", "0s")), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]
        for window in re.findall(r"\[([^\]]+)\]", rule["expr"]):
            assert DURATION.fullmatch(window), f"{window!r} in {rule['alert']}"


# --- promtool ---------------------------------------------------------------------------------


def _promtool() -> str:
    """promtool's path; in CI its absence fails, elsewhere the test is skipped with the reason."""
    found = shutil.which("promtool") or shutil.which("promtool", path=str(RELAY.parent))
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("promtool is missing in CI: .ci/run installs it from Debian's prometheus")
    pytest.skip("promtool not installed (Debian's prometheus package; .ci/run installs it)")


def _run(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)


def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    """``promtool check rules`` finds every rule valid, and ``promtool test rules`` shows each
    alert firing on the series that should raise it and quiet on a healthy relay."""
    promtool = _promtool()
    checked = _run(promtool, "check", "rules", RULES.name, cwd=RULES.parent)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in checked.stdout
    tested = _run(promtool, "test", "rules", RULES_TESTS.name, cwd=RULES.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    """Each dashboard query, with Grafana's variables filled in, is valid PromQL: promtool
    checks them as recording rules."""
    promtool = _promtool()
    queries = [_as_promql(q) for q in _dashboard_queries(_dashboard())]
    records = [{"record": f"relay_dashboard:query_{n}", "expr": q} for n, q in enumerate(queries)]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    checked = _run(promtool, "check", "rules", path.name, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(records)} rules found" in checked.stdout


def test_promtool_rejects_a_broken_expression(tmp_path: Path) -> None:
    """The promtool check can fail: an unclosed call is refused."""
    promtool = _promtool()
    path = tmp_path / "broken.yml"
    broken = {"alert": "Broken", "expr": "sum(rate(relay_delivered_total[5m])"}
    path.write_text(yaml.safe_dump({"groups": [{"name": "broken", "rules": [broken]}]}))
    assert _run(promtool, "check", "rules", path.name, cwd=tmp_path).returncode != 0


def test_every_monitoring_file_ships_in_the_wheel() -> None:
    """pyproject's package data for relay.monitoring covers every file under monitoring/, so
    a dashboard or rules file added later cannot be left out of the wheel and the sdist."""
    pyproject = tomllib.loads((MONITORING.parent / "pyproject.toml").read_text())
    setuptools = pyproject["tool"]["setuptools"]
    assert setuptools["package-dir"]["relay.monitoring"] == "monitoring"
    assert "relay.monitoring" in setuptools["packages"]
    globs = setuptools["package-data"]["relay.monitoring"]
    files = [
        p.relative_to(MONITORING)
        for p in MONITORING.rglob("*")
        if p.is_file() and p.name != "__init__.py" and "__pycache__" not in p.parts
    ]
    assert {DASHBOARD.relative_to(MONITORING), RULES.relative_to(MONITORING)} <= set(files)
    assert [f for f in files if not any(f.match(g) for g in globs)] == []
