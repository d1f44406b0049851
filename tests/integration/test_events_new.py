"""``relay events new`` grows a Django analytics package one event at a time, as the seed does."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from django_project import BIN, SEED_PACKAGE, make_project, run

from relay._errors import RelayError
from relay.cli import main
from relay.plan.scaffold import scaffold_event

PACKAGE = "optimo_analytics"


def _snapshot(package: Path) -> dict[str, str]:
    return {
        str(p.relative_to(package)): p.read_text(encoding="utf-8")
        for p in sorted(package.rglob("*.py"))
    }


def _new(project: Path, event: str, domain: str) -> None:
    result = CliRunner().invoke(
        main, ["events", "new", event, "--package", str(project / PACKAGE), "--domain", domain]
    )
    assert result.exit_code == 0, result.output


def _removed_lines(before: str, after: str) -> list[str]:
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    return [line[1:] for line in diff if line.startswith("-") and not line.startswith("---")]


@pytest.mark.heavy
def test_second_and_third_events_pass_ruff_mypy_lint_and_their_tests(
    tmp_path: Path, mypy_cache: Path
) -> None:
    """Adding events to an existing package touches only their lines; every tool passes after."""
    project = make_project(tmp_path)
    _new(project, "svc.surveys.survey_delivered", "survey")
    first = _snapshot(project / PACKAGE)
    _new(project, "svc.hris_csv.upload.analysis_completed.error", "core")
    _new(project, "svc.surveys.survey_reminded", "survey")
    after = _snapshot(project / PACKAGE)
    for name, text in first.items():
        # The host's lines stay; only an import or __all__ line is rewritten to take a name.
        removed = _removed_lines(text, after[name])
        assert all(line.startswith(("from ", "__all__")) for line in removed), (name, removed)
    added = set(after) - set(first)
    assert added == {
        "service/core.py",
        "tests/test_upload_analysis_completed_error_event.py",
        "tests/test_survey_reminded_event.py",
    }
    assert after["service/survey.py"].count("def track_") == 2
    for argv in (
        [str(BIN / "ruff"), "check", PACKAGE],
        [str(BIN / "ruff"), "format", "--check", PACKAGE],
        [str(BIN / "mypy"), "--cache-dir", str(mypy_cache), PACKAGE],
        [str(BIN / "relay"), "events", "lint", PACKAGE, "--tests", f"{PACKAGE}/tests"],
        [sys.executable, "manage.py", "check"],
        [sys.executable, "-m", "pytest", "-q", f"{PACKAGE}/tests"],
    ):
        proc = run(argv, project)
        assert proc.returncode == 0, (argv, proc.stdout[-3000:], proc.stderr[-3000:])
    assert "15 passed" in proc.stdout


def test_a_hand_written_seed_package_takes_events_in_its_own_style(tmp_path: Path) -> None:
    """A package written by hand in the seed's layout is extended in its style and stays clean."""
    project = make_project(tmp_path)
    for name, text in SEED_PACKAGE.items():
        path = project / PACKAGE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    _new(project, "svc.surveys.survey_reminded", "survey")
    _new(project, "svc.hris_csv.upload.analysis_completed", "core")
    package = project / PACKAGE
    constants = (package / "constants.py").read_text()
    # No Final where the host writes none; the host's comments stay.
    assert '    SURVEY_REMINDED = "svc.surveys.survey_reminded"\n' in constants
    assert "# the first event\n" in constants
    # The helper class takes the package's prefix, and is exported beside the existing one.
    assert "class OptimoMixpanelCoreTrackHelper:" in (package / "service" / "core.py").read_text()
    assert (
        '    "OptimoMixpanelCoreTrackHelper",\n    "OptimoMixpanelSurveyTrackHelper",\n'
        in (package / "service" / "__init__.py").read_text()
    )
    for name, text in SEED_PACKAGE.items():
        removed = _removed_lines(text, (package / name).read_text())
        assert all(line.startswith("from ") for line in removed), (name, removed)
    for argv in (
        [str(BIN / "ruff"), "check", PACKAGE],
        [str(BIN / "ruff"), "format", "--check", PACKAGE],
        # No --tests: the hand-written event has no test, which RLY011 would rightly report.
        [str(BIN / "relay"), "events", "lint", PACKAGE],
        [sys.executable, "-m", "pytest", "-q", f"{PACKAGE}/tests"],
    ):
        proc = run(argv, project)
        assert proc.returncode == 0, (argv, proc.stdout[-3000:], proc.stderr[-3000:])


def test_the_host_formatting_and_comments_are_kept(tmp_path: Path) -> None:
    """Comments inside the host's class, dict, list and imports survive an added event."""
    project = make_project(tmp_path)
    package = project / PACKAGE
    _new(project, "svc.surveys.survey_delivered", "survey")
    constants = package / "constants.py"
    constants.write_text(
        constants.read_text().replace(
            '    SURVEY_DELIVERED: Final = "svc.surveys.survey_delivered"',
            '    # Surveys\n    SURVEY_DELIVERED: Final = "svc.surveys.survey_delivered"  # step 1',
        )
    )
    registry = package / "registry.py"
    registry.write_text(registry.read_text().replace("= {\n", "= {\n    # surveys\n"))
    service = package / "service" / "__init__.py"
    service.write_text(
        service.read_text().replace(
            '__all__ = ["SurveyTrackHelper"]', '__all__ = [\n    "SurveyTrackHelper",  # surveys\n]'
        )
    )
    _new(project, "svc.auth.user_logged_in", "auth")
    assert "    # Surveys\n" in constants.read_text()
    assert "# step 1\n" in constants.read_text()
    assert "    # surveys\n    MixPanelEvent.SURVEY_DELIVERED" in registry.read_text()
    assert service.read_text().endswith(
        '__all__ = [\n    "AuthTrackHelper",\n    "SurveyTrackHelper",  # surveys\n]\n'
    )
    for argv in ([str(BIN / "ruff"), "check", PACKAGE], [str(BIN / "ruff"), "format", "--check"]):
        proc = run(argv, project)
        assert proc.returncode == 0, (argv, proc.stdout, proc.stderr)


def test_an_existing_event_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    """Adding an event twice exits 1 with one line and leaves every file as it was."""
    project = make_project(tmp_path)
    _new(project, "svc.surveys.survey_delivered", "survey")
    before = _snapshot(project / PACKAGE)
    again = CliRunner().invoke(
        main, ["events", "new", "svc.surveys.survey_delivered", "--package", str(project / PACKAGE)]
    )
    assert again.exit_code == 1
    assert again.output.startswith("relay: svc.surveys.survey_delivered is already in")
    assert len(again.output.strip().splitlines()) == 1
    assert _snapshot(project / PACKAGE) == before


def test_a_failing_late_edit_writes_none_of_the_earlier_ones(tmp_path: Path) -> None:
    """When the service package cannot take the export, constants and schemas stay untouched."""
    project = make_project(tmp_path)
    _new(project, "svc.surveys.survey_delivered", "survey")
    service_init = project / PACKAGE / "service" / "__init__.py"
    service_init.write_text(service_init.read_text().replace("__all__", "EXPORTS"))
    before = _snapshot(project / PACKAGE)
    result = CliRunner().invoke(
        main, ["events", "new", "svc.map.action_plan_created", "--package", str(project / PACKAGE)]
    )
    assert result.exit_code == 1
    assert "has no __all__ list" in result.output
    assert _snapshot(project / PACKAGE) == before
    assert not list((project / PACKAGE).rglob(".relay-new-*"))


@pytest.mark.parametrize("name", ["svc.surveys.cron_sent", "Svc.surveys.sent", "svc.surveys"])
def test_a_bad_event_name_creates_no_package(tmp_path: Path, name: str) -> None:
    """A name breaking the naming rule is refused before any directory is made."""
    with pytest.raises(RelayError):
        scaffold_event(name, package_dir=tmp_path / PACKAGE)
    assert not (tmp_path / PACKAGE).exists()


def test_a_pasted_paragraph_as_event_name_is_one_short_line(tmp_path: Path) -> None:
    """A 5,000-character name exits 1 with one line that does not echo it whole; nothing written."""
    result = CliRunner().invoke(
        main, ["events", "new", "svc.surveys." + "a" * 5000, "--package", str(tmp_path / PACKAGE)]
    )
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert len(result.output) < 300
    assert "at most 255" in result.output
    assert not (tmp_path / PACKAGE).exists()


def test_a_service_module_without_a_helper_class_is_named(tmp_path: Path) -> None:
    """A service/<domain>.py with no *TrackHelper class is refused naming the file."""
    project = make_project(tmp_path)
    _new(project, "svc.surveys.survey_delivered", "survey")
    (project / PACKAGE / "service" / "map.py").write_text('"""Map helpers, to come."""\n')
    before = _snapshot(project / PACKAGE)
    result = CliRunner().invoke(
        main, ["events", "new", "svc.map.plan_created", "--package", str(project / PACKAGE)]
    )
    assert result.exit_code == 1
    assert "service/map.py: expected one class *TrackHelper, found 0" in result.output
    assert _snapshot(project / PACKAGE) == before


@pytest.mark.parametrize(
    ("package", "domain", "what"),
    [
        ("my-app", "survey", "the package's directory name 'my-app'"),
        ("optimo_analytics", "class", "--domain 'class'"),
    ],
)
def test_a_package_or_domain_that_cannot_be_imported_is_refused(
    tmp_path: Path, package: str, domain: str, what: str
) -> None:
    """A name Python cannot import (a dash, a keyword) would write broken imports: refused."""
    result = CliRunner().invoke(
        main,
        [
            "events",
            "new",
            "svc.surveys.sent",
            "--package",
            str(tmp_path / package),
            "--domain",
            domain,
        ],
    )
    assert result.exit_code == 1
    assert result.output == f"relay: {what} is not a Python module name\n"
    assert not (tmp_path / package).exists()


def test_the_host_s_own_employee_lookup_is_used_not_duplicated(tmp_path: Path) -> None:
    """A package defining fetch_employee_info already gets helpers importing it, no directory.py."""
    project = make_project(tmp_path)
    for name, text in SEED_PACKAGE.items():
        path = project / PACKAGE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (project / PACKAGE / "service" / "base.py").write_text(
        '"""The service\'s shared lookups."""\n\n\n'
        "def fetch_employee_info(*, employee_id: str) -> object:\n"
        '    """The host\'s own lookup."""\n'
        "    raise LookupError(employee_id)\n"
    )
    _new(project, "svc.surveys.survey_reminded", "survey")
    survey = (project / PACKAGE / "service" / "survey.py").read_text()
    assert "from optimo_analytics.service.base import fetch_employee_info\n" in survey
    assert not (project / PACKAGE / "service" / "directory.py").exists()
    assert not (project / PACKAGE / "tests" / "conftest.py").exists()
    proc = run([str(BIN / "ruff"), "check", PACKAGE], project)
    assert proc.returncode == 0, proc.stdout


def test_a_helper_module_importing_another_track_is_refused(tmp_path: Path) -> None:
    """A Django service module whose `track` is relay's SQLAlchemy one is refused, not miswired."""
    project = make_project(tmp_path)
    _new(project, "svc.surveys.survey_delivered", "survey")
    survey = project / PACKAGE / "service" / "survey.py"
    survey.write_text(
        survey.read_text().replace(
            "from relay.contrib.django import track", "from relay import track"
        )
    )
    before = _snapshot(project / PACKAGE)
    result = CliRunner().invoke(
        main,
        [
            "events",
            "new",
            "svc.surveys.survey_closed",
            "--package",
            str(project / PACKAGE),
            "--domain",
            "survey",
        ],
    )
    assert result.exit_code == 1
    assert "imports track from relay; the new helper needs relay.contrib.django's" in result.output
    assert _snapshot(project / PACKAGE) == before


def test_a_registry_of_register_event_calls_gets_one_more_call(tmp_path: Path) -> None:
    """A registry.py written as register_event(...) calls (no dict) takes the event the same way."""
    project = make_project(tmp_path)
    for name, text in SEED_PACKAGE.items():
        path = project / PACKAGE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    registry = project / PACKAGE / "registry.py"
    registry.write_text(
        '"""Registration."""\n\nfrom relay import register_event\n\n'
        "from optimo_analytics.constants import MixPanelEvent\n"
        "from optimo_analytics.schemas import MxpSurveysSurveyDeliveredEventSchema\n\n"
        "register_event(MixPanelEvent.SURVEY_DELIVERED, MxpSurveysSurveyDeliveredEventSchema)\n"
    )
    _new(project, "svc.surveys.survey_reminded", "survey")
    assert registry.read_text().endswith(
        "register_event(MixPanelEvent.SURVEY_DELIVERED, MxpSurveysSurveyDeliveredEventSchema)\n"
        "register_event(MixPanelEvent.SURVEY_REMINDED, MxpSurveysSurveyRemindedEventSchema)\n"
    )
    for argv in (
        [str(BIN / "ruff"), "check", PACKAGE],
        [str(BIN / "ruff"), "format", "--check", PACKAGE],
        [str(BIN / "relay"), "events", "lint", PACKAGE],
    ):
        proc = run(argv, project)
        assert proc.returncode == 0, (argv, proc.stdout, proc.stderr)
