"""No test sees the relay rows of the test before it, in every Django test case style.

Order matters here (pytest runs a file's tests in order, a unittest class's in name order):
each "starts empty" test follows one that left rows behind before the fix.
"""

from __future__ import annotations

import unittest
from typing import ClassVar

import pytest
import sqlalchemy as sa
from conftest import SURVEY_DELIVERED, survey_properties
from django.core.management import call_command
from django.db import transaction
from django.test import TestCase, TransactionTestCase

from relay._tables import outbox
from relay.contrib.django import relay_engine, track
from relay.contrib.django.testing import RelayTestMixin

SERVERS = ("postgresql", "mariadb")


def _count(alias: str) -> int:
    """Committed outbox rows in ``alias``, read on a connection of relay's own."""
    with relay_engine(alias).connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one())


def _commit_one(alias: str) -> None:
    with transaction.atomic(using=alias):
        track(
            event=SURVEY_DELIVERED, distinct_id="emp-1", properties=survey_properties(), using=alias
        )


class TransactionTestCaseStyle(TransactionTestCase):
    """Django's ``TransactionTestCase``: its flush after each test now empties relay's tables."""

    databases: ClassVar[set[str]] = {"default", "postgresql", "mariadb"}

    def test_1_commits_an_event_in_each_database(self) -> None:
        """Each database holds the committed event during the test."""
        for alias in ("default", *SERVERS):
            _commit_one(alias)
            assert _count(alias) == 1

    def test_2_starts_with_an_empty_outbox(self) -> None:
        """The previous test's committed events are gone (Django's flush emptied relay's too)."""
        for alias in ("default", *SERVERS):
            assert _count(alias) == 0


class TestCaseStyle(TestCase):
    """Django's ``TestCase``: an independent event commits outside the test's transaction."""

    databases: ClassVar[set[str]] = {"postgresql"}

    def test_1_independent_event_commits_outside_the_tests_transaction(self) -> None:
        """The ``.error``-style event is committed (seen on another connection) during the test."""
        track(
            event=SURVEY_DELIVERED,
            distinct_id="emp-1",
            properties=survey_properties(),
            using="postgresql",
            independent=True,
        )
        assert _count("postgresql") == 1

    def test_2_starts_with_an_empty_outbox(self) -> None:
        """The plugin deleted the independent row the previous test committed."""
        assert _count("postgresql") == 0


@pytest.mark.django_db(transaction=True, databases=["postgresql"])
def test_django_flush_empties_relays_tables_and_migrate_does_not() -> None:
    """``manage.py flush`` empties relay's tables (it empties every table); ``migrate`` does not."""
    _commit_one("postgresql")
    call_command("migrate", database="postgresql", verbosity=0)
    assert _count("postgresql") == 1
    call_command("flush", database="postgresql", interactive=False, verbosity=0)
    assert _count("postgresql") == 0


class _MixedInTestCase(RelayTestMixin, TestCase):
    """What a project under Django's own runner writes: the mixin before ``TestCase``."""

    __test__ = False
    databases: ClassVar[set[str]] = {"postgresql"}

    def test_independent(self) -> None:
        track(
            event=SURVEY_DELIVERED,
            distinct_id="emp-2",
            properties=survey_properties(),
            using="postgresql",
            independent=True,
        )
        assert _count("postgresql") == 1

    def test_strict(self) -> None:
        track(event=SURVEY_DELIVERED, distinct_id="emp-2", properties={}, using="postgresql")


@pytest.mark.django_db(transaction=True, databases=["postgresql"])
def test_mixin_under_djangos_runner_is_strict_and_removes_independent_rows() -> None:
    """``RelayTestMixin``: strict tracking in the test, its independent rows deleted after."""
    result = unittest.TestResult()
    _MixedInTestCase("test_independent")(result)  # as a runner calls it
    assert result.wasSuccessful(), result.errors + result.failures
    assert _count("postgresql") == 0
    strict = unittest.TestResult()
    _MixedInTestCase("test_strict")(strict)
    assert len(strict.errors) == 1
    assert "EventValidationError" in strict.errors[0][1]
