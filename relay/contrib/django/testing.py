"""Test support for Django projects (used by :mod:`relay.testing.plugin` under pytest-django).

Under pytest the plugin does this for every test. Under Django's own runner
(``manage.py test``), mix :class:`RelayTestMixin` into the test case classes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connections
from django.db.utils import DatabaseError

from relay._tracking import strict_tracking
from relay.testing.cleanup import independent_rows_removed


def flush_outbox(databases: Iterable[str] | str | None = None) -> None:
    """Delete every row of relay's tables in Django's ``databases`` (default: ``default``).

    ``"__all__"`` means every configured database. A database without relay's tables (not
    migrated) is left alone.
    """
    if databases is None:
        aliases: list[str] = ["default"]
    elif databases == "__all__":
        aliases = list(connections)
    else:
        aliases = [databases] if isinstance(databases, str) else list(databases)
    for alias in aliases:
        connection = connections[alias]
        tables = set(connection.introspection.table_names())
        for table in ("relay_outbox", "relay_audit", "relay_pause"):
            if table in tables:
                try:
                    with connection.cursor() as cursor:
                        cursor.execute(f"DELETE FROM {connection.ops.quote_name(table)}")  # noqa: S608
                except DatabaseError:  # pragma: no cover - the test's own failure says more
                    continue


class RelayTestMixin:
    """relay's test behaviour for Django's own test runner: mix it in before the test case class.

    ``class DeliveryTests(RelayTestMixin, TestCase): ...`` (or ``TransactionTestCase``):

    - tracking is strict during each test (a bad event raises instead of being logged);
    - the rows ``independent=True`` committed during a test are deleted after it (they commit
      on a connection of their own, so ``TestCase``'s rollback keeps them);
    - after a ``TransactionTestCase`` test relay's tables are emptied, also where Django's
      flush sends no ``post_migrate`` (``available_apps``, ``serialized_rollback``).
    """

    databases: Any

    def __call__(self, result: Any = None) -> Any:
        """Run the test (Django's set-up and tear-down included) with relay's rules around it."""
        from django.test import TestCase  # noqa: PLC0415

        with independent_rows_removed(), strict_tracking():
            outcome = super().__call__(result)  # type: ignore[misc]
        if not isinstance(self, TestCase):
            flush_outbox(self.databases)
        return outcome
