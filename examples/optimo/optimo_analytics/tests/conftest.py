"""Fixtures of the analytics tests (relay's plugin is enabled in the project's root conftest)."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps

from optimo_analytics.service.directory import EMPLOYEE_MODEL


@pytest.fixture
def optimo_employee(db: None) -> Any:
    """A manager of a new organization."""
    employee_model = apps.get_model(EMPLOYEE_MODEL)
    organization_model = employee_model._meta.get_field("organization").related_model
    organization = organization_model.objects.create(name="Test Org")
    return employee_model.objects.create(organization=organization, role="manager")
