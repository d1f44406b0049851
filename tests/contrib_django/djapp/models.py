"""The host's own models: what the directory reads and what the business code writes."""

from __future__ import annotations

from django.db import models


class Organization(models.Model):
    """A customer organisation."""

    id = models.CharField(primary_key=True, max_length=36)
    name = models.CharField(max_length=255)


class Employee(models.Model):
    """An employee of an organisation, with a system role."""

    id = models.CharField(primary_key=True, max_length=36)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    role = models.CharField(max_length=32, null=True)


class Delivery(models.Model):
    """A business row written in the same transaction as an event."""

    survey_id = models.CharField(max_length=36)
    employee_id = models.CharField(max_length=36)
