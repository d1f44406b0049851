"""Django settings for relay's Django tests: one host project on SQLite, PostgreSQL and MariaDB.

Each run's databases get names of their own (``RELAY_TEST_DJANGO_RUN``, else random), so runs
on the shared servers never meet. ``RELAY_TEST_DJANGO_PSYCOPG2=1`` hides psycopg 3, so Django
(and relay with it) uses psycopg2.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile

import pymysql

if os.environ.get("RELAY_TEST_DJANGO_PSYCOPG2"):
    # Hide psycopg 3 while Django picks its driver: it falls back to psycopg2.
    sys.modules["psycopg"] = None  # type: ignore[assignment]
    import django.db.backends.postgresql.base  # noqa: F401

    del sys.modules["psycopg"]
pymysql.install_as_MySQLdb()

RUN = os.environ.get("RELAY_TEST_DJANGO_RUN") or secrets.token_hex(4)
_TMP = tempfile.gettempdir()

SECRET_KEY = "relay-tests-not-a-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "relay_django_urls"
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The admin tests' users log in with a fast hasher, as Django advises for tests: the default
# (PBKDF2, a million iterations) took more than a second of each admin test for two hashes.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "relay.contrib.django",
    "djapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(_TMP, f"relay_dj_{RUN}.db"),
        # A file, not memory: the relay daemon and the admin's engine open it too.
        "TEST": {"NAME": os.path.join(_TMP, f"relay_djt_{RUN}.db")},
    },
    "postgresql": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": f"relay_dj_{RUN}",
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": "5432",
        # Created without waiting for default's (Django's default dependency), so that a run
        # whose tests use the servers only need not create the SQLite one.
        "TEST": {"NAME": f"relay_djt_{RUN}", "DEPENDENCIES": []},
    },
    "mariadb": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": f"relay_dj_{RUN}",
        "USER": "root",
        "PASSWORD": "",
        "HOST": "127.0.0.1",
        "PORT": "3306",
        "OPTIONS": {"charset": "utf8mb4"},
        "TEST": {"NAME": f"relay_djt_{RUN}", "DEPENDENCIES": []},
    },
}
if os.environ.get("RELAY_TEST_DJANGO_TEST_NAMES"):
    # A child process (manage.py relay ...) of a test: the test databases are the databases.
    for _entry in DATABASES.values():
        _entry["NAME"] = _entry["TEST"]["NAME"]
if os.environ.get("RELAY_TEST_DJANGO_DEFAULT"):
    # A child process that should find a given alias's database under "default".
    DATABASES["default"] = dict(DATABASES[os.environ["RELAY_TEST_DJANGO_DEFAULT"]])
if os.environ.get("RELAY_TEST_DJANGO_NAME"):
    # ... and under a given name (a scratch database of a migration test).
    DATABASES["default"]["NAME"] = os.environ["RELAY_TEST_DJANGO_NAME"]

RELAY = {"STRICT_TRACKING": False}
if os.environ.get("RELAY_TEST_DJANGO_FA9BADF"):
    # A project as commit fa9badf migrated it: relay's one Django migration of that day.
    MIGRATION_MODULES = {"relay": "fa9badf_relay_migrations"}
