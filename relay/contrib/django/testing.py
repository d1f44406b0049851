"""Test support for Django projects (used by :mod:`relay.testing.plugin` under pytest-django)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connections
from django.db.utils import DatabaseError


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
