"""relay's Alembic revision 0007: an index for the dead letters of one reason."""

from __future__ import annotations

from django.db import migrations

from relay.contrib.django.migrations_utils import RunRelayRevision


class Migration(migrations.Migration):
    """Run relay's Alembic revision 0007 (``ix_relay_outbox_dead_reason`` on ``last_error``,
    built online); no model field changes."""

    atomic = False
    dependencies = [("relay", "0006_destinations")]

    operations = [RunRelayRevision("0007")]
