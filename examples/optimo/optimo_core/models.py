"""The product's core models: organizations and their employees."""

import uuid

from django.db import models


class Organization(models.Model):
    """A customer organization."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)


class Employee(models.Model):
    """An employee of an organization."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    email = models.EmailField(blank=True)
    role = models.CharField(max_length=32, blank=True)
