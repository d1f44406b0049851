"""relay's Alembic revision 0006: ``relay_outbox.destination`` (data residency)."""

from __future__ import annotations

from django.db import migrations, models

from relay.contrib.django.migrations_utils import RunRelayRevision


class Migration(migrations.Migration):
    """Run relay's Alembic revision 0006; the outbox model gains ``destination``."""

    atomic = False
    dependencies = [("relay", "0005_compare_ids_exactly")]

    operations = [
        RunRelayRevision("0006"),
        migrations.AddField(
            model_name="outboxevent",
            name="destination",
            field=models.CharField(default="default", max_length=64),
        ),
    ]
