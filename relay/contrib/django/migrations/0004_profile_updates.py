"""relay's Alembic revision 0004: ``relay_outbox.kind`` and ``relay_outbox.profile_key``."""

from __future__ import annotations

from django.db import migrations, models

from relay.contrib.django.migrations_utils import RunRelayRevision


class Migration(migrations.Migration):
    """Run relay's Alembic revision 0004; the outbox model gains ``kind`` and ``profile_key``."""

    atomic = False
    dependencies = [("relay", "0003_pause_and_lanes")]

    operations = [
        RunRelayRevision("0004"),
        migrations.AddField(
            model_name="outboxevent",
            name="kind",
            field=models.CharField(
                choices=[("event", "event"), ("user", "user"), ("group", "group")],
                default="event",
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="outboxevent",
            name="profile_key",
            field=models.CharField(max_length=64, null=True),
        ),
    ]
