"""Settings of the optimo example: the seed's analytics app on relay, SQLite files."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("OPTIMO_DATA_DIR", BASE_DIR))

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-a-secret")
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "relay.contrib.django",  # relay's tables (manage.py migrate) and manage.py relay
    "optimo_core",
    "optimo_analytics",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "optimo.db",
        # A file during tests too: relay's drain opens it itself.
        "TEST": {"NAME": DATA_DIR / "optimo-test.db"},
    }
}
