"""relay's Alembic revision 0001 (the outbox and the audit trail), and their unmanaged models.

One Django migration per relay revision (``relay.contrib.django.migrations_utils``). Before
relay 0.x this migration ran every revision to the head at once; a project that applied it
then has its tables at that head, and the next migrations find their revisions applied and
change nothing but Django's model state. Not atomic: the revisions commit their own steps, as
``relay migrate`` runs them. The models are unmanaged: Django records them for the admin and
never creates or alters their tables.
"""

from __future__ import annotations

from django.db import migrations, models

from relay.contrib.django.migrations_utils import RunRelayRevision


class Migration(migrations.Migration):
    """Run relay's Alembic revision 0001; record the unmanaged models."""

    atomic = False
    initial = True
    dependencies: list[tuple[str, str]] = []

    operations = [
        RunRelayRevision("0001"),
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
