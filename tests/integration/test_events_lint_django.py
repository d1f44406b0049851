"""``relay events lint`` reads a Django app as it is: set up, violations as findings, one line."""

from __future__ import annotations

import sys
from pathlib import Path

from django_project import BIN, make_project, run

from relay.plan.scaffold import scaffold_event

PACKAGE = "optimo_analytics"
LINT = [str(BIN / "relay"), "events", "lint"]
MANAGE_LINT = [sys.executable, "manage.py", "relay", "events", "lint"]


def _project(tmp_path: Path) -> Path:
    """The Django project with a two-event analytics app whose directory imports its models."""
    project = make_project(tmp_path / "project")
    scaffold_event("svc.surveys.survey_delivered", package_dir=project / PACKAGE, domain="survey")
    scaffold_event("svc.map.action_plan_created", package_dir=project / PACKAGE, domain="map")
    directory = project / PACKAGE / "service" / "directory.py"
    directory.write_text(
        directory.read_text().replace(
            "from relay import SystemRole\n",
            "from relay import SystemRole\n\n"
            "from optimo_core.models import Employee  # noqa: F401\n",
        )
    )
    return project


def _break_a_schema(project: Path) -> None:
    schemas = project / PACKAGE / "schemas.py"
    schemas.write_text(
        schemas.read_text().replace(
            "    model_config = STRICT_MODEL_CONFIG\n",
            '    employee_email: str = Field(description="who")\n\n'
            "    model_config = STRICT_MODEL_CONFIG\n",
            1,
        )
    )


def test_an_app_importing_its_models_is_linted_after_django_setup(tmp_path: Path) -> None:
    """Run beside manage.py, lint sets Django up itself and finds the seed's layout clean."""
    project = _project(tmp_path)
    proc = run([*LINT, PACKAGE, "--tests", f"{PACKAGE}/tests"], project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr.strip() == f"0 findings in {PACKAGE}"


def test_a_django_app_without_settings_is_one_configuration_line(tmp_path: Path) -> None:
    """Away from manage.py and with no DJANGO_SETTINGS_MODULE: exit 3 and one line, no traceback."""
    project = _project(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run([*LINT, PACKAGE], elsewhere, PYTHONPATH=str(project))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stderr.startswith("relay: configuration error: optimo_analytics is a Django app")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_schema_violation_is_a_finding_through_relay_and_manage_py(tmp_path: Path) -> None:
    """A schema registration refuses is RLY000 with exit 1 both ways, never a traceback."""
    project = _project(tmp_path)
    _break_a_schema(project)
    for argv in ([*LINT, PACKAGE], [*MANAGE_LINT, PACKAGE]):
        proc = run(argv, project)
        assert proc.returncode == 1, (argv, proc.stdout, proc.stderr)
        assert "RLY000" in proc.stdout
        assert "employee_email" in proc.stdout
        assert "Traceback" not in proc.stderr


def test_a_violation_raised_while_django_starts_is_a_finding(tmp_path: Path) -> None:
    """An app registering its events in ready() fails Django's set-up: lint reports RLY000."""
    project = _project(tmp_path)
    _break_a_schema(project)
    (project / PACKAGE / "apps.py").write_text(
        "from django.apps import AppConfig\n\n\n"
        "class OptimoAnalyticsConfig(AppConfig):\n"
        '    name = "optimo_analytics"\n\n'
        "    def ready(self) -> None:\n"
        "        import optimo_analytics.registry  # noqa: F401\n"
    )
    proc = run([*LINT, PACKAGE], project)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "RLY000" in proc.stdout
    assert "setting Django up with proj.settings failed" in proc.stdout
    assert proc.stdout.startswith("optimo_analytics/schemas.py:")  # at the refused field
    assert "Traceback" not in proc.stderr


def test_a_subpackage_without_events_is_not_a_clean_lint(tmp_path: Path) -> None:
    """Linting service/ (no schemas there) exits 1 in one line naming the package to lint."""
    project = _project(tmp_path)
    proc = run([*LINT, f"{PACKAGE}.service"], project)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "relay: no events are defined in optimo_analytics.service: "
        "lint the package that defines them (optimo_analytics)"
    )


def test_docs_of_a_django_app_list_the_events_its_registry_module_registers(
    tmp_path: Path,
) -> None:
    """`events docs` imports the whole app after Django's set-up: both events are documented."""
    project = _project(tmp_path)
    proc = run([str(BIN / "relay"), "events", "docs", PACKAGE], project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "svc.surveys.survey_delivered" in proc.stdout
    assert "svc.map.action_plan_created" in proc.stdout


def test_docs_of_a_module_without_events_is_an_error_not_an_empty_plan(tmp_path: Path) -> None:
    """An empty dictionary is refused in one line (pushed with --truncate it empties Lexicon)."""
    project = _project(tmp_path)
    proc = run([str(BIN / "relay"), "events", "docs", f"{PACKAGE}.service"], project)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "relay: no events are defined in optimo_analytics.service"


def test_the_rly010_fix_names_the_service_package_and_keeps_django_starting(
    tmp_path: Path,
) -> None:
    """An unexported helper's fix points at service/__init__.py; done, Django still starts."""
    project = _project(tmp_path)
    service_init = project / PACKAGE / "service" / "__init__.py"
    exported = service_init.read_text()
    service_init.write_text(exported.replace('"MapTrackHelper", ', ""))
    proc = run([*LINT, PACKAGE], project)
    assert proc.returncode == 1
    assert "RLY010 MapTrackHelper is not in the __all__" in proc.stdout
    assert "import it in optimo_analytics.service (its __init__.py)" in proc.stdout
    service_init.write_text(exported)
    check = run([sys.executable, "manage.py", "check"], project)
    assert check.returncode == 0, check.stdout + check.stderr
    assert run([*LINT, PACKAGE], project).returncode == 0
