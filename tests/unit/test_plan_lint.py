"""``relay events lint``: a generated violating package per rule; the shipped catalog clean."""

from __future__ import annotations

import ast
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from relay.cli import main
from relay.plan.lint import RULES, lint_modules

_counter = itertools.count()

_CONSTANTS = '''\
from typing import Final


class MixPanelEvent:
    """Event names."""

    THING_DONE: Final = "svc.{dom}.thing_done"
'''

_SCHEMAS = '''\
from pydantic import Field

from relay._event.registry import register_event
from relay._event.properties import STRICT_MODEL_CONFIG, MixpanelSuperEventPropertiesSchema

from {pkg}.constants import MixPanelEvent


class MxpDemoThingDoneEventSchema(MixpanelSuperEventPropertiesSchema):
    """Properties of svc.{dom}.thing_done.

    Tracked when a thing is done.
    """

    thing_id: str = Field(description="Thing UUID as string")

    model_config = STRICT_MODEL_CONFIG


register_event(MixPanelEvent.THING_DONE, MxpDemoThingDoneEventSchema)
'''

_HELPER = '''\
import structlog

from relay._tracking import is_strict, track

from {pkg}.constants import MixPanelEvent
from {pkg}.schemas import MxpDemoThingDoneEventSchema

logger = structlog.get_logger(__name__)


class DemoTrackHelper:
    """Tracks demo events."""

    @classmethod
    def track_thing_done(cls, session, *, thing_id, strict=None):
        """Track it."""
        try:
            return cls._track_thing_done(session, thing_id=thing_id, strict=strict)
        except Exception:
            if is_strict(strict):
                raise
            logger.exception("thing_done_tracking_failed", thing_id=thing_id)
            return None

    @staticmethod
    def _track_thing_done(session, *, thing_id, strict):
        properties = MxpDemoThingDoneEventSchema(
            employee_id="", organization_id="", organization_name="", role=None,
            impersonation=False, thing_id=thing_id,
        )
        return track(session, event=MixPanelEvent.THING_DONE, distinct_id=thing_id,
                     properties=properties, strict=strict)
'''

_INIT = """\
from {pkg}.helper import DemoTrackHelper

__all__ = ["DemoTrackHelper"]
"""

_TEST = """\
def test_tracks(session):
    DemoTrackHelper.track_thing_done(session, thing_id="t")
    assert MixPanelEvent.THING_DONE
"""


def _make_package(
    root: Path, mutation: tuple[str, str, str] | None = None
) -> tuple[str, Path, Path]:
    """Write a clean host catalog (plus tests dir) under ``root``, apply one text mutation."""
    n = next(_counter)
    pkg, dom = f"hostcat{n}", f"demo{n}"
    files = {
        "__init__.py": _INIT,
        "constants.py": _CONSTANTS,
        "schemas.py": _SCHEMAS,
        "helper.py": _HELPER,
    }
    texts = {name: text.format(pkg=pkg, dom=dom) for name, text in files.items()}
    tests_dir = root / f"tests{n}"
    tests_dir.mkdir()
    test_text = _TEST
    if mutation is not None:
        name, old, new = mutation
        if name == "test":
            assert old in test_text
            test_text = test_text.replace(old, new)
        else:
            assert old in texts[name], (name, old)
            # Every file, so that a renamed class stays importable under its new name.
            texts = {k: v.replace(old, new.format(pkg=pkg, dom=dom)) for k, v in texts.items()}
    (root / pkg).mkdir()
    for name, text in texts.items():
        (root / pkg / name).write_text(text, encoding="utf-8")
    (tests_dir / "test_thing.py").write_text(test_text, encoding="utf-8")
    return pkg, root / pkg, tests_dir


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


# rule, file mutated, old text, new text, (file, text on the line the finding must point at)
CASES = [
    (
        "RLY001",
        "constants.py",
        '_done"\n',
        '_done"\n    BAD_NAME: Final = "svc.{dom}.BadName"\n',
        ("constants.py", "BAD_NAME"),
    ),
    (
        "RLY002",
        "constants.py",
        '_done"\n',
        '_done"\n    OTHER_DONE: Final = "svc.{dom}.other"\n',
        ("constants.py", "OTHER_DONE"),
    ),
    (
        "RLY003",
        "schemas.py",
        "MxpDemoThingDoneEventSchema",
        "DemoThingDoneSchema",
        ("schemas.py", "class DemoThingDoneSchema"),
    ),
    (
        "RLY004",
        "schemas.py",
        "Tracked when a thing is done.",
        "Fires on things.",
        ("schemas.py", "class MxpDemoThingDone"),
    ),
    (
        "RLY005",
        "schemas.py",
        'Field(description="Thing UUID as string")',
        "Field()",
        ("schemas.py", "thing_id: str"),
    ),
    (
        "RLY006",
        "schemas.py",
        "    model_config",
        '    organization_id: str = Field(description="again")\n\n    model_config',
        ("schemas.py", "organization_id: str"),
    ),
    (
        "RLY007",
        "helper.py",
        "event=MixPanelEvent.THING_DONE",
        'event="svc.{dom}.thing_done"',
        ("schemas.py", "class MxpDemoThingDone"),
    ),
    (
        "RLY008",
        "helper.py",
        "(cls, session, *, thing_id",
        "(cls, session, thing_id",
        ("helper.py", "def track_thing_done"),
    ),
    (
        "RLY008",
        "helper.py",
        "(cls, session, *, thing_id, strict=None)",
        "(cls, thing_id, *, strict=None)",
        ("helper.py", "def track_thing_done"),
    ),
    (
        "RLY009",
        "helper.py",
        "            if is_strict(strict):\n                raise\n",
        "            raise\n",
        ("helper.py", "def track_thing_done"),
    ),
    (
        "RLY010",
        "__init__.py",
        '__all__ = ["DemoTrackHelper"]',
        "__all__: list[str] = []",
        ("helper.py", "def track_thing_done"),
    ),
    (
        "RLY011",
        "test",
        'DemoTrackHelper.track_thing_done(session, thing_id="t")\n'
        "    assert MixPanelEvent.THING_DONE",
        "pass",
        ("constants.py", "THING_DONE"),
    ),
    (
        "RLY012",
        "helper.py",
        '"""Track it."""',
        '"""Track it, usually inside a cron run."""',
        ("schemas.py", "class MxpDemoThingDone"),
    ),
    (
        "RLY013",
        "helper.py",
        'logger.exception("thing_done_tracking_failed", thing_id=thing_id)',
        'logger.exception("thing_done_tracking_failed", thing_id=thing_id, email=thing_id)',
        ("helper.py", "logger.exception("),
    ),
    (
        "RLY014",
        "helper.py",
        "distinct_id=thing_id,",
        'distinct_id=f"{{thing_id}}@example.com",',
        ("helper.py", "return track("),
    ),
]


def test_the_clean_fixture_package_is_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unmutated fixture package has no finding, so each mutation below is alone."""
    monkeypatch.syspath_prepend(str(tmp_path))
    pkg, _, tests_dir = _make_package(tmp_path)
    assert lint_modules([pkg], tests_path=tests_dir) == []


@pytest.mark.parametrize(("rule", "file", "old", "new", "where"), CASES, ids=[c[0] for c in CASES])
def test_each_rule_reports_exactly_its_id_file_and_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rule: str,
    file: str,
    old: str,
    new: str,
    where: tuple[str, str],
) -> None:
    """A package breaking one rule yields exactly that rule's id, at the offending file and line."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    pkg, pkg_dir, tests_dir = _make_package(tmp_path, (file, old, new))
    findings = lint_modules([pkg], tests_path=tests_dir)
    assert [f.rule for f in findings] == [rule], [f.as_text() for f in findings]
    where_file, needle = where
    assert findings[0].path == f"{pkg}/{where_file}"
    assert findings[0].line == _line_of(pkg_dir / where_file, needle)
    assert findings[0].fix


def test_a_helper_without_try_is_not_fire_and_forget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A helper that calls its implementation unguarded is RLY009."""
    monkeypatch.syspath_prepend(str(tmp_path))
    pkg, _, tests_dir = _make_package(
        tmp_path,
        (
            "helper.py",
            '        """Track it."""\n        try:',
            '        """Track it."""\n        cls._track_thing_done(session, thing_id=thing_id,'
            " strict=strict)\n        try:",
        ),
    )
    assert [f.rule for f in lint_modules([pkg], tests_path=tests_dir)] == ["RLY009"]


def test_a_registration_failure_is_a_finding_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A schema that registration refuses (a PII field) is RLY000, naming the module."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    pkg, _, _ = _make_package(
        tmp_path,
        (
            "schemas.py",
            "    model_config",
            '    email: str = Field(description="x")\n\n    model_config',
        ),
    )
    findings = lint_modules([pkg])
    assert [f.rule for f in findings] == ["RLY000"]
    assert pkg in findings[0].message
    # It points at the refused field, not at line 0 of the package.
    assert findings[0].path == f"{pkg}/schemas.py"
    assert findings[0].line == _line_of(tmp_path / pkg / "schemas.py", "email: str")


def test_every_rule_has_a_case() -> None:
    """Each rule id in RULES (but the import rule, tested above) has a violating fixture."""
    assert {c[0] for c in CASES} == set(RULES) - {"RLY000"}


def test_the_test_catalog_is_clean_with_this_projects_tests() -> None:
    """hr_catalog (the HR events relay once shipped) passes every rule, with a test per event."""
    tests = Path(__file__).resolve().parents[1]
    assert lint_modules(["hr_catalog"], tests_path=tests) == []


def test_cli_exit_codes_and_json_shape(tmp_path: Path) -> None:
    """`events lint` exits 0 clean, 1 with findings, and --json lists rule/path/line/fix."""
    runner = CliRunner()
    clean = runner.invoke(main, ["events", "lint", "hr_catalog", "--json"])
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.output)["findings"] == []

    pkg, _, tests_dir = _make_package(
        tmp_path, ("schemas.py", "Tracked when a thing is done.", "Fires on things.")
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from relay.cli import main; main()",
            "events",
            "lint",
            pkg,
            "--json",
            "--tests",
            str(tests_dir),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["count"] == 1
    (finding,) = payload["findings"]
    assert set(finding) == {"rule", "path", "line", "event", "message", "fix"}
    assert finding["rule"] == "RLY004"
    assert finding["path"] == f"{pkg}/schemas.py"
    assert finding["event"].startswith("svc.demo")

    text = subprocess.run(
        [sys.executable, "-c", "from relay.cli import main; main()", "events", "lint", pkg],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert text.returncode == 1
    assert text.stdout.startswith(f"{pkg}/schemas.py:")
    assert " RLY004 " in text.stdout


def test_helpers_exported_from_a_service_subpackage_satisfy_rly010(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seed's layout (exports in service/__init__.py, none at the root) is not RLY010."""
    monkeypatch.syspath_prepend(str(tmp_path))
    pkg, pkg_dir, tests_dir = _make_package(
        tmp_path, ("__init__.py", '__all__ = ["DemoTrackHelper"]', "__all__: list[str] = []")
    )
    (pkg_dir / "__init__.py").write_text('"""The app: imports nothing."""\n', encoding="utf-8")
    (pkg_dir / "service").mkdir()
    (pkg_dir / "service" / "__init__.py").write_text(
        f'from {pkg}.helper import DemoTrackHelper\n\n__all__ = ["DemoTrackHelper"]\n',
        encoding="utf-8",
    )
    assert lint_modules([pkg], tests_path=tests_dir) == []


def test_the_organization_name_in_a_log_call_is_not_personal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``organization.name`` reads as organization_name, which the seed allows: no RLY013."""
    monkeypatch.syspath_prepend(str(tmp_path))
    pkg, _, tests_dir = _make_package(
        tmp_path,
        (
            "helper.py",
            'logger.exception("thing_done_tracking_failed", thing_id=thing_id)',
            'logger.exception("thing_done_tracking_failed", thing_id=thing_id, '
            "org=session.organization.name)",
        ),
    )
    assert lint_modules([pkg], tests_path=tests_dir) == []


def test_a_helper_guarded_by_relay_fire_and_forget_is_fire_and_forget() -> None:
    """RLY009 accepts `with relay.fire_and_forget(...)` (the guard the docs recommend) and still
    refuses a `with` block of anything else."""
    from relay.plan._code import fire_and_forget_problem  # noqa: PLC0415

    def helper(body: str) -> ast.FunctionDef:
        node = ast.parse(f'def track_it(*, thing_id):\n    """Track it."""\n{body}').body[0]
        assert isinstance(node, ast.FunctionDef)
        return node

    guarded = "    with relay.fire_and_forget('failed', thing_id=thing_id):\n        track(x)\n"
    bare = "    with fire_and_forget('failed'):\n        track(x)\n"
    other = "    with open('x'):\n        track(x)\n"
    assert fire_and_forget_problem(helper(guarded)) is None
    assert fire_and_forget_problem(helper(bare)) is None
    assert fire_and_forget_problem(helper(other)) is not None
