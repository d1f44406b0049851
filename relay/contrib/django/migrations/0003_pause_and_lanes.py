"""relay's Alembic revision 0003: ``relay_pause`` and ``relay_outbox.lane``."""

from __future__ import annotations

from django.db import migrations, models

from relay.contrib.django.migrations_utils import RunRelayRevision


class Migration(migrations.Migration):
    """Run relay's Alembic revision 0003; the outbox model gains ``lane``, and ``Pause``."""

    atomic = False
    dependencies = [("relay", "0002_lighten_outbox_writes")]

    operations = [
        RunRelayRevision("0003"),
        migrations.AddField(
            model_name="outboxevent",
            name="lane",
            field=models.SmallIntegerField(choices=[(0, "live"), (1, "bulk")], default=0),
        ),
        migrations.CreateModel(
            name="Pause",
            fields=[
                ("scope", models.CharField(max_length=255, primary_key=True, serialize=False)),
                ("reason", models.CharField(max_length=500)),
                ("actor", models.CharField(max_length=255)),
                ("paused_at", models.DateTimeField()),
            ],
            options={
                "managed": False,
                "db_table": "relay_pause",
                "ordering": ("scope",),
                "verbose_name": "delivery pause",
            },
        ),
    ]
