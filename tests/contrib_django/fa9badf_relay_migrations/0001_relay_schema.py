"""relay's only Django migration as commit fa9badf shipped it, frozen for the upgrade test.

Verbatim but for what it called: fa9badf's ``relay.contrib.django._schema.upgrade(alias)`` ran
relay's Alembic revisions to the head of that day, 0004; this copy runs them to 0004 by name,
so the test keeps starting from fa9badf's state when relay has newer revisions.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models


def _upgrade(apps: Any, schema_editor: Any) -> None:
    from relay.contrib.django.migrations_utils import run_alembic  # noqa: PLC0415

    run_alembic(schema_editor.connection.alias, "upgrade", "0004")


def _downgrade(apps: Any, schema_editor: Any) -> None:
    from relay.contrib.django.migrations_utils import run_alembic  # noqa: PLC0415

    run_alembic(schema_editor.connection.alias, "downgrade", "base")


class Migration(migrations.Migration):
    """Run relay's Alembic revisions to head; record the unmanaged models."""

    atomic = False
    initial = True
    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.RunPython(_upgrade, _downgrade, elidable=False),
        migrations.CreateModel(
            name="OutboxEvent",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "insert_id",
                    models.CharField(max_length=36, unique=True, verbose_name="$insert_id"),
                ),
                ("event", models.CharField(max_length=255)),
                ("distinct_id", models.CharField(max_length=255)),
                ("time_ms", models.BigIntegerField(verbose_name="time (ms)")),
                ("properties", models.JSONField()),
                (
                    "state",
                    models.CharField(
                        max_length=16,
                        choices=[
                            ("pending", "pending"),
                            ("delivered", "delivered"),
                            ("dead", "dead"),
                        ],
                    ),
                ),
                ("attempts", models.IntegerField()),
                ("next_attempt_at", models.DateTimeField()),
                ("lease_token", models.CharField(max_length=32, null=True)),
                ("lease_expires_at", models.DateTimeField(null=True)),
                ("last_error", models.CharField(max_length=1000, null=True, verbose_name="reason")),
                ("created_at", models.DateTimeField()),
                ("updated_at", models.DateTimeField()),
                ("finished_at", models.DateTimeField(null=True)),
            ],
            options={
                "managed": False,
                "db_table": "relay_outbox",
                "ordering": ("-id",),
                "verbose_name": "outbox event",
                "permissions": (
                    ("operate_outbox", "Can replay, requeue and discard outbox events"),
                ),
            },
        ),
        migrations.CreateModel(
            name="AuditEntry",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("at", models.DateTimeField()),
                ("actor", models.CharField(max_length=255)),
                ("action", models.CharField(max_length=32)),
                ("filter", models.JSONField()),
                ("count", models.IntegerField()),
                ("detail", models.TextField(null=True)),
            ],
            options={
                "managed": False,
                "db_table": "relay_audit",
                "ordering": ("-id",),
                "verbose_name": "audit entry",
                "verbose_name_plural": "audit trail",
            },
        ),
        migrations.CreateModel(
            name="DeadLetter",
            fields=[],
            options={
                "proxy": True,
                "verbose_name": "dead letter",
                "indexes": [],
                "constraints": [],
            },
            bases=("relay.outboxevent",),
        ),
    ]
