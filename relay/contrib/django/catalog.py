"""A Django project's analytics helpers: a directory over its models, helpers without a session.

relay ships no event catalog: the host's analytics package defines its events (the seed's
``optimo_analytics``, as in ``examples/optimo``). This module holds the generic parts:

- :class:`ModelEmployeeDirectory`, an :class:`relay._directory.EmployeeDirectory` over the
  project's own models (who the employee is: organisation, role), and
  :func:`default_directory`, ``settings.RELAY["EMPLOYEE_DIRECTORY"]`` resolved (a directory, or
  the dotted path of one or of a callable returning one).
- :class:`SessionlessHelper`, which makes a helper class written for SQLAlchemy
  (``track_*(session, *, ...)``) callable as the seed calls it, with keyword arguments only,
  writing on Django's connection in the enclosing ``atomic()`` block (``using=`` picks the
  database)::

      SurveyTrackHelper = SessionlessHelper(SqlSurveyTrackHelper)

      with transaction.atomic():
          delivery.save()
          SurveyTrackHelper.track_survey_delivered(employee_id=str(employee.uuid), ...)

Importing this module registers no event.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import structlog
from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import transaction
from django.db.models import Model
from django.utils.module_loading import import_string
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from relay._directory import EmployeeDirectory, EmployeeInfo, OrganizationInfo
from relay._errors import StoreError
from relay._event.properties import SystemRole
from relay._tracking.guard import FireAndForget
from relay.contrib.django._settings import configured_value
from relay.contrib.django._tracking import in_django_transaction

logger = structlog.get_logger("relay.contrib.django.catalog")


class ModelEmployeeDirectory:
    """An :class:`relay._directory.EmployeeDirectory` over the host's Django models.

    The protocol is three attribute paths on the employee model: ``organization`` (the
    employee's organisation, a foreign key or any attribute), ``organization_name`` (on the
    organisation, default ``name``) and ``role`` (default ``role``; a value of
    ``roles``, default :class:`relay.SystemRole`; anything else is dropped with a warning,
    ``None`` allowed). A host with roles of its own passes its ``enum.StrEnum`` as ``roles``
    (and redefines ``role`` in its base schema: see :class:`relay.SystemRole`).
    ``employee_model`` and ``organization_model`` are model classes or ``"app_label.ModelName"``.

    Identifiers are the primary keys, as strings, unless ``employee_id_field`` /
    ``organization_id_field`` name another unique field (the seed's public ``uuid`` beside an
    integer primary key): the helpers' ``employee_id`` is then looked up in that field, and the
    event carries that field's values. A field that is not unique is refused (``StoreError``); a
    value the field cannot hold (``"abc"`` for a UUID field) is an unknown employee (``None``).

    Lookups read through the ORM on ``using`` (default: the alias the helper writes on, so they
    see the caller's uncommitted rows), each inside a savepoint: a failing query cannot break
    the caller's block. Errors are raised as :class:`relay._errors.StoreError`.
    """

    def __init__(
        self,
        *,
        employee_model: type[Model] | str,
        organization_model: type[Model] | str | None = None,
        organization: str = "organization",
        organization_name: str = "name",
        role: str | None = "role",
        using: str = "default",
        employee_id_field: str = "pk",
        organization_id_field: str = "pk",
        roles: type[enum.StrEnum] = SystemRole,
    ) -> None:
        self._roles = roles
        self._employee_id_field = employee_id_field
        self._organization_id_field = organization_id_field
        self._employee_model = employee_model
        self._organization_model = organization_model
        self._organization = organization
        self._organization_name = organization_name
        self._role = role
        self.using = using

    @staticmethod
    def _model(model: type[Model] | str) -> type[Model]:
        found: type[Model] = apps.get_model(model) if isinstance(model, str) else model
        return found

    def _read(self, read: Callable[[], Any]) -> Any:
        try:
            with transaction.atomic(using=self.using):
                return read()
        except Exception as exc:
            raise StoreError(f"employee directory lookup failed: {type(exc).__name__}") from exc

    def lookup(self, session: Session | Connection, employee_id: str) -> EmployeeInfo | None:
        """The employee ``employee_id`` with their organisation and role, or ``None``."""
        model = self._model(self._employee_model)
        related = self._organization.replace(".", "__")
        lookup = _lookup(model, self._employee_id_field, employee_id)
        if lookup is None:
            return None
        employee = self._read(
            lambda: (
                model._default_manager.using(self.using)
                .select_related(related)
                .filter(**lookup)
                .first()
            )
        )
        if employee is None:
            return None
        organization = _path(employee, self._organization)
        raw_role = _path(employee, self._role) if self._role else None
        return EmployeeInfo(
            employee_id=str(_path(employee, self._employee_id_field)),
            organization_id=str(_path(organization, self._organization_id_field)),
            organization_name=str(_path(organization, self._organization_name)),
            role=_role(raw_role, self._roles, employee_id=employee_id),
        )

    def lookup_organization(
        self, session: Session | Connection, organization_id: str
    ) -> OrganizationInfo | None:
        """The organisation ``organization_id``, or ``None``."""
        if self._organization_model is None:
            model = self._model(self._employee_model)
            field = model._meta.get_field(self._organization.split(".")[0])
            organization_model: type[Model] = field.related_model
        else:
            organization_model = self._model(self._organization_model)
        lookup = _lookup(organization_model, self._organization_id_field, organization_id)
        if lookup is None:
            return None
        organization = self._read(
            lambda: organization_model._default_manager.using(self.using).filter(**lookup).first()
        )
        if organization is None:
            return None
        return OrganizationInfo(
            organization_id=str(_path(organization, self._organization_id_field)),
            organization_name=str(_path(organization, self._organization_name)),
        )


def _lookup(model: type[Model], name: str, value: str) -> dict[str, Any] | None:
    """``{field: value}`` for a filter on the unique field ``name``; None when it cannot match."""
    try:
        field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    except FieldDoesNotExist:
        raise StoreError(f"{model._meta.label} has no field {name!r} to look ids up in") from None
    if not (field.primary_key or field.unique):
        raise StoreError(
            f"{model._meta.label}.{name} is not unique: the employee directory looks ids up "
            "in the primary key or a unique field"
        )
    try:
        return {field.attname: field.to_python(value)}
    except (ValidationError, TypeError, ValueError):
        return None  # a value this field cannot hold: no such row


def _path(obj: Any, path: str) -> Any:
    for name in path.split("."):
        obj = getattr(obj, name)
    return obj


def _role(value: Any, roles: type[enum.StrEnum], *, employee_id: str) -> Any:
    if value is None:
        return None
    try:
        return roles(str(value))
    except ValueError:
        logger.warning("mixpanel_employee_role_unknown", employee_id=employee_id)
        return None


def default_directory() -> EmployeeDirectory | None:
    """``settings.RELAY["EMPLOYEE_DIRECTORY"]`` resolved (``None``: the helper's own default)."""
    value = configured_value("employee_directory")
    if value is None:
        return None
    if isinstance(value, str):
        value = import_string(value)
    if isinstance(value, type) or (callable(value) and not hasattr(value, "lookup")):
        value = value()
    directory: EmployeeDirectory = value
    return directory


class SessionlessHelper:
    """A helper class whose ``track_*(session, *, ...)`` methods are called without a session.

    Each ``track_*`` method of ``helper`` is called with Django's connection ``using`` (default
    ``"default"``), in the enclosing ``atomic()`` block, and ``directory`` defaulting to
    :func:`default_directory`. A failure on Django's side is fire-and-forget like the helper's
    own (logged, ``None``), raised in strict mode. Other attributes are the helper's.
    """

    def __init__(self, helper: type) -> None:
        self._helper = helper
        self.__doc__ = helper.__doc__

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._helper, name)
        if not name.startswith("track_"):
            return method

        def track_in_django(*, using: str = "default", **kwargs: Any) -> str | None:
            if kwargs.get("directory") is None:
                kwargs["directory"] = default_directory()
            # Django's side failed (no connection, ...): fire-and-forget, as the helper.
            with (
                FireAndForget(
                    lambda exc: logger.error(
                        "mixpanel_event_tracking_failed",
                        helper=name,
                        at="django connection",
                        exc_info=exc,
                    ),
                    strict=kwargs.get("strict"),
                ),
                in_django_transaction(using) as conn,
            ):
                result: str | None = method(conn, **kwargs)
                return result
            return None

        track_in_django.__name__ = name
        track_in_django.__doc__ = method.__doc__
        return track_in_django

    def __dir__(self) -> list[str]:
        return [name for name in dir(self._helper) if name.startswith("track_")]


__all__ = [
    "ModelEmployeeDirectory",
    "SessionlessHelper",
    "default_directory",
]
