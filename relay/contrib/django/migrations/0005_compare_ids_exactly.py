"""relay's Alembic revision 0005: ids compared byte for byte on MariaDB and MySQL."""

from __future__ import annotations

from django.db import migrations

from relay.contrib.django.migrations_utils import RunRelayRevision


class Migration(migrations.Migration):
    """Run relay's Alembic revision 0005 (a binary collation for ``insert_id``, ``distinct_id``
    and ``profile_key`` on MariaDB/MySQL); no model field changes."""

    atomic = False
    dependencies = [("relay", "0004_profile_updates")]

    operations = [RunRelayRevision("0005")]
