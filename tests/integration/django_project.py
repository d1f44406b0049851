"""A small Django project in a directory, as the seed's team has it: ``optimo_core`` + analytics.

``optimo_core`` holds Organization and Employee, keyed by an int primary key with a public
``uuid``; the analytics app (``optimo_analytics``) is left to the test (``relay events new``
makes it). SQLite files, relay's Django app installed, relay's pytest plugin in the root
conftest, and the host's ruff and mypy configuration in ``pyproject.toml``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

FILES = {
    "pyproject.toml": """\
[tool.ruff]
line-length = 100
target-version = "py311"
[tool.ruff.lint]
select = ["E", "F", "I", "B", "UP", "RUF"]
[tool.ruff.lint.isort]
known-first-party = ["optimo_analytics", "optimo_core", "proj"]
[tool.mypy]
strict = true
plugins = ["pydantic.mypy"]
[[tool.mypy.overrides]]
module = ["django.*", "mixpanel.*", "MySQLdb.*", "apscheduler.*"]
ignore_missing_imports = true
""",
    "pytest.ini": """\
[pytest]
DJANGO_SETTINGS_MODULE = proj.settings
addopts = -p no:cacheprovider
filterwarnings = error
""",
    "conftest.py": '''\
"""relay's pytest plugin for the whole project."""

pytest_plugins = ["relay.testing.plugin"]
''',
    "manage.py": '''\
"""Django's command-line utility."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
''',
    "proj/__init__.py": "",
    "proj/settings.py": '''\
"""Settings of a small Django project with the seed's analytics app."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "test-only-not-a-secret"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "relay.contrib.django",
    "optimo_core",
    "optimo_analytics",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
        "TEST": {"NAME": BASE_DIR / "test-db.sqlite3"},
    }
}
''',
    "optimo_core/__init__.py": "",
    "optimo_core/models.py": '''\
"""The product's core models: organizations and their employees."""

import uuid

from django.db import models


class Organization(models.Model):
    """A customer organization."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)


class Employee(models.Model):
    """An employee of an organization."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    email = models.EmailField(blank=True)
    role = models.CharField(max_length=32, blank=True)
''',
    "optimo_core/migrations/__init__.py": "",
    "optimo_core/migrations/0001_initial.py": """\
import uuid

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Organization",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                ("uuid", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("name", models.CharField(max_length=200)),
            ],
        ),
        migrations.CreateModel(
            name="Employee",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                ("uuid", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("email", models.EmailField(blank=True, max_length=254)),
                ("role", models.CharField(blank=True, max_length=32)),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        to="optimo_core.organization",
                    ),
                ),
            ],
        ),
    ]
""",
}


#: A seed-layout analytics app written by hand (no `relay events new`), with one event.
SEED_PACKAGE = {
    "__init__.py": "",
    "constants.py": '''\
"""MixPanel event names."""


class MixPanelEvent:
    """Event names, grouped by domain."""

    # Surveys
    SURVEY_DELIVERED = "svc.surveys.survey_delivered"  # the first event
''',
    "schemas.py": '''\
"""MixPanel event schemas."""

from pydantic import Field
from relay import STRICT_MODEL_CONFIG, MixpanelSuperEventPropertiesSchema


class MxpSurveysSurveyDeliveredEventSchema(MixpanelSuperEventPropertiesSchema):
    """Properties for svc.surveys.survey_delivered.

    Tracked when a survey is delivered to an employee.
    """

    survey_id: str = Field(description="Survey UUID as string")

    model_config = STRICT_MODEL_CONFIG
''',
    "registry.py": '''\
"""Event -> schema registry."""

from relay import MixpanelSuperEventPropertiesSchema, register_event

from optimo_analytics.constants import MixPanelEvent
from optimo_analytics.schemas import (
    MxpSurveysSurveyDeliveredEventSchema,
)

_EVENT_SCHEMA_REGISTRY: dict[str, type[MixpanelSuperEventPropertiesSchema]] = {
    # Surveys
    MixPanelEvent.SURVEY_DELIVERED: MxpSurveysSurveyDeliveredEventSchema,
}

for _event, _schema in _EVENT_SCHEMA_REGISTRY.items():
    register_event(_event, _schema)
''',
    "service/__init__.py": '''\
"""Tracking helpers."""

import optimo_analytics.registry  # noqa: F401
from optimo_analytics.service.survey import OptimoMixpanelSurveyTrackHelper

__all__ = [
    "OptimoMixpanelSurveyTrackHelper",
]
''',
    "service/survey.py": '''\
"""Survey tracking helpers."""

import structlog
from relay.contrib.django import track

from optimo_analytics.constants import MixPanelEvent
from optimo_analytics.schemas import MxpSurveysSurveyDeliveredEventSchema

logger = structlog.get_logger(__name__)


class OptimoMixpanelSurveyTrackHelper:
    """Helper class for Survey event tracking."""

    @classmethod
    def track_survey_delivered(cls, *, employee_id: str, survey_id: str) -> None:
        """Track survey delivered (svc.surveys.survey_delivered)."""
        try:
            cls._track_survey_delivered(employee_id=employee_id, survey_id=survey_id)
        except Exception:
            # Fire-and-forget: log but don't propagate
            logger.exception("mixpanel_survey_delivered_tracking_failed", employee_id=employee_id)

    @staticmethod
    def _track_survey_delivered(*, employee_id: str, survey_id: str) -> None:
        properties = MxpSurveysSurveyDeliveredEventSchema(
            employee_id=employee_id,
            organization_id="",
            organization_name="",
            role=None,
            impersonation=False,
            survey_id=survey_id,
        )
        track(
            event=MixPanelEvent.SURVEY_DELIVERED,
            distinct_id=employee_id,
            properties=properties,
        )
''',
    "tests/__init__.py": "",
}


def make_project(root: Path) -> Path:
    """The project's files written under ``root``; returns ``root``."""
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``argv`` run in the project (importable from its root, relay's sources typed)."""
    full = {**os.environ, "PYTHONPATH": str(cwd), "MYPYPATH": str(ROOT), **env}
    full.pop("DJANGO_SETTINGS_MODULE", None)
    full.update(env)
    return subprocess.run(
        argv, cwd=cwd, env=full, capture_output=True, text=True, check=False, timeout=600
    )
