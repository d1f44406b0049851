"""The host's own models: what the directory reads and what the business code writes."""

from __future__ import annotations

import uuid

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


class Company(models.Model):
    """An organisation as the seed's ``optimo_core`` keys it: an int pk, a public ``uuid``."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True)
    name = models.CharField(max_length=255)


class Member(models.Model):
    """An employee keyed the seed's way (int pk, public ``uuid``), with a non-unique label."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True)
    company = models.ForeignKey(Company, on_delete=models.CASCADE)
    role = models.CharField(max_length=32, null=True)
    team = models.CharField(max_length=32, default="core")
