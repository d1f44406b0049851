"""Fixtures of relay's Django tests (run by tests/integration/test_django_suite.py).

Every test names the databases it uses (``django_db(databases=[...])``); ``alias`` runs a test
once per backend: SQLite (``default``), PostgreSQL and MariaDB, and such a test gets that one
database only (:func:`pytest_collection_modifyitems`).
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test run once per backend (an ``alias`` parameter) is given that backend's database
    only: the databases its ``django_db`` mark names, narrowed to its ``alias``.

    Django then flushes one database after a transactional test instead of three (the flush
    and the permissions and content types its ``post_migrate`` re-creates were most of these
    tests' time), and refuses, as it does for any database a test did not name, a query the
    test makes on one of the other two. A run whose tests all use one backend creates that
    backend's test database only.
    """
    for item in items:
        callspec = getattr(item, "callspec", None)
        alias = callspec.params.get("alias") if callspec is not None else None
        marker = item.get_closest_marker("django_db")
        if alias is None or marker is None:
            continue
        named = marker.kwargs.get("databases")
        if named is None or alias not in named:
            continue
        item.add_marker(
            pytest.mark.django_db(*marker.args, **{**marker.kwargs, "databases": [alias]}),
            append=False,
        )


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
