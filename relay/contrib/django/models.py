"""relay's tables as unmanaged Django models, for the admin: Django never creates or alters them.

The tables are relay's own (created by relay's Alembic migrations, each run by one Django
migration of this app); these models only read them, and match the tables at relay's head
revision column for column (``tests/contrib_django/test_migrate.py`` compares them). A new
revision's columns are added here and, as state-only operations, in its Django migration.
Change rows through :mod:`relay.admin`, never here.
"""

from __future__ import annotations

from typing import Any

from django.db import models


class _DecodedJSONField(models.JSONField):
    """A ``JSONField`` over a ``json`` column (not ``jsonb``): ``relay_audit.filter``.

    On PostgreSQL the driver decodes ``json`` itself (psycopg registers a loader for it, which
    Django only overrides for ``jsonb``), so Django's field got a dict where it expects text
    and the audit pages answered 500. A value already decoded is kept as it is. The schema is
    relay's (Alembic), so the fix is here, on Django's side.
    """

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or isinstance(value, str | bytes | bytearray):
            return super().from_db_value(value, expression, connection)
        return value

    def deconstruct(self) -> Any:
        # Migrations see a plain JSONField: the model is unmanaged and the column unchanged.
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.JSONField", args, kwargs


class OutboxEvent(models.Model):
    """One ``relay_outbox`` row: a tracked event, pending, delivered or dead."""

    STATES = (("pending", "pending"), ("delivered", "delivered"), ("dead", "dead"))
    LANES = ((0, "live"), (1, "bulk"))
    KINDS = (("event", "event"), ("user", "user"), ("group", "group"))

    id = models.BigAutoField(primary_key=True)
    insert_id = models.CharField("$insert_id", max_length=36, unique=True)
    event = models.CharField(max_length=255)
    distinct_id = models.CharField(max_length=255)
    time_ms = models.BigIntegerField("time (ms)")
    properties = models.JSONField()
    state = models.CharField(max_length=16, choices=STATES)
    attempts = models.IntegerField()
    next_attempt_at = models.DateTimeField()
    lease_token = models.CharField(max_length=32, null=True)
    lease_expires_at = models.DateTimeField(null=True)
    last_error = models.CharField("reason", max_length=1000, null=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True)
    #: 0 for rows track() wrote, 1 for rows a replay or requeue made pending (revision 0003).
    lane = models.SmallIntegerField(choices=LANES, default=0)
    #: ``event``, or ``user`` / ``group`` for a profile update (revision 0004).
    kind = models.CharField(max_length=8, choices=KINDS, default="event")
    #: SHA-256 hex of the profile a profile update is for; NULL for events (revision 0004).
    profile_key = models.CharField(max_length=64, null=True)
    #: The configured Mixpanel project the row goes to; ``default`` without destinations
    #: (revision 0006).
    destination = models.CharField(max_length=64, default="default")

    class Meta:
        managed = False
        db_table = "relay_outbox"
        ordering = ("-id",)
        verbose_name = "outbox event"
        permissions = (("operate_outbox", "Can replay, requeue and discard outbox events"),)

    def __str__(self) -> str:
        return f"{self.event} {self.insert_id}"


class DeadLetter(OutboxEvent):
    """The outbox's dead rows (a proxy: the admin lists them grouped by reason)."""

    class Meta:
        proxy = True
        verbose_name = "dead letter"


class AuditEntry(models.Model):
    """One ``relay_audit`` row: an operator action (replay, requeue, discard, purge, ...)."""

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField()
    actor = models.CharField(max_length=255)
    action = models.CharField(max_length=32)
    filter = _DecodedJSONField()
    count = models.IntegerField()
    detail = models.TextField(null=True)

    class Meta:
        managed = False
        db_table = "relay_audit"
        ordering = ("-id",)
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail"

    def __str__(self) -> str:
        return f"{self.action} by {self.actor} at {self.at:%Y-%m-%d %H:%M:%S}"


class Pause(models.Model):
    """One ``relay_pause`` row: delivery paused by an operator (``relay pause``)."""

    scope = models.CharField(max_length=255, primary_key=True)
    reason = models.CharField(max_length=500)
    actor = models.CharField(max_length=255)
    paused_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "relay_pause"
        ordering = ("scope",)
        verbose_name = "delivery pause"

    def __str__(self) -> str:
        return f"{self.scope} paused by {self.actor}"
