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
