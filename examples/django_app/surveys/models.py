"""The product's own models."""

from __future__ import annotations

import uuid

from django.db import models


class Organization(models.Model):
    """A customer organisation."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    name = models.CharField(max_length=255)

    def __str__(self) -> str:
        return self.name


class Employee(models.Model):
    """An employee; ``role`` is one of relay's ``SystemRole`` values."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    role = models.CharField(max_length=32, null=True, blank=True)

    def __str__(self) -> str:
        return str(self.id)


class Survey(models.Model):
    """A survey with its questions."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    title = models.CharField(max_length=255)
    question_count = models.PositiveIntegerField()

    def __str__(self) -> str:
        return self.title


class Delivery(models.Model):
    """One survey handed to one employee on one channel."""

    run_id = models.UUIDField(default=uuid.uuid4)
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE)
    employee = models.ForeignKey(Employee, on_delete=models.CASCADE)
    channel = models.CharField(max_length=16)
    delivered_at = models.DateTimeField(auto_now_add=True)
