"""Fixtures of relay's Django tests (run by tests/integration/test_django_suite.py).

Every test names the databases it uses (``django_db(databases=[...])``); ``alias`` runs a test
once per backend: SQLite (``default``), PostgreSQL and MariaDB.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import hr_catalog  # noqa: F401 - registers the catalog's events
import pytest
from django.db import transaction

from relay._tracking import strict_tracking

ALIASES = ("default", "postgresql", "mariadb")

# The headless-browser check needs chromium, chromium-driver and selenium: opt-in.
collect_ignore = [] if os.environ.get("RELAY_TEST_BROWSER") else ["test_admin_browser.py"]

SURVEY_DELIVERED = "svc.surveys.survey_delivered"


def survey_properties(**changes: object) -> dict[str, object]:
    """Valid properties of ``svc.surveys.survey_delivered``."""
    return {
        "employee_id": "emp-1",
        "organization_id": "org-1",
        "organization_name": "Acme",
        "role": None,
        "impersonation": False,
        "is_cron_job": False,
        "survey_id": "survey-1",
        "survey_run_id": "run-1",
        "survey_type": "pulse",
        "channel": "slack",
        "question_count": 3,
        "is_reminder": False,
        **changes,
    }


@pytest.fixture(params=ALIASES)
def alias(request: pytest.FixtureRequest) -> str:
    """Each Django database alias: SQLite, PostgreSQL, MariaDB."""
    return str(request.param)


@pytest.fixture
def fire_and_forget() -> Iterator[None]:
    """Tracking as production runs it: failures logged, not raised (the plugin makes it strict)."""
    with strict_tracking(False):
        yield


class AbortBlockError(Exception):
    """Raised to roll an ``atomic()`` block back; swallowed by :func:`rolled_back`."""


@contextlib.contextmanager
def rolled_back(alias: str) -> Iterator[None]:
    """An ``atomic()`` block on ``alias`` that always rolls back (by raising and catching)."""
    with contextlib.suppress(AbortBlockError), transaction.atomic(using=alias):
        yield
        raise AbortBlockError
