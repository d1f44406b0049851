"""relay's Alembic revision 0002: ``relay_outbox.lease_expires_at`` (and lighter indexes)."""

from __future__ import annotations

from django.db import migrations, models

from relay.contrib.django.migrations_utils import RunRelayRevision


class Migration(migrations.Migration):
    """Run relay's Alembic revision 0002; the outbox model gains ``lease_expires_at``."""

    atomic = False
    dependencies = [("relay", "0001_relay_schema")]

    operations = [
        RunRelayRevision("0002"),
        migrations.AddField(
            model_name="outboxevent",
            name="lease_expires_at",
            field=models.DateTimeField(null=True),
        ),
    ]
