"""The base event schema, its model configs, the cron rule, and the checks on schema classes.

Every event schema derives from ``MixpanelSuperEventPropertiesSchema`` and is checked when it
is registered (``check_schema_definition``): base fields keep their types, identifiers are
strings, no field is named like personal data (the vocabulary lives in :mod:`relay._event.pii`).
"""

from __future__ import annotations

import datetime as dt
import enum
import types
import typing
import uuid
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from relay._errors import SchemaDefinitionError
from relay._event.pii import field_name_refusal, value_refusal

#: Internal schemas: field names are the wire names; unknown fields are refused; immutable.
STRICT_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True, validate_default=True)
#: Schemas with ``$``-prefixed wire names (``Field(alias="$device_id")``): populated by the
#: Python name or the alias, serialised under the alias.
ALIASED_MODEL_CONFIG = ConfigDict(
    extra="forbid",
    frozen=True,
    validate_default=True,
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
)


class SystemRole(enum.StrEnum):
    """The role of the acting user in the product (the seed's roles).

    A host whose product has other roles brings its own ``enum.StrEnum`` and redefines ``role``
    in its own base schema as ``TheirRole | None`` (the one base field that may change type)::

        class OptimoRole(enum.StrEnum):
            OWNER = "owner"
            COACH = "coach"

        class OptimoEventSchema(MixpanelSuperEventPropertiesSchema):
            role: OptimoRole | None = Field(description="The acting user's role")
    """

    SUPER_ADMIN = "super_admin"
    ADMIN = "admin"
    HR_ADMIN = "hr_admin"
    MANAGER = "manager"
    EMPLOYEE = "employee"


def datetime_to_timestamp_ms(value: dt.datetime) -> int:
    """Milliseconds since the Unix epoch of an aware datetime (naive input is refused)."""
    if value.tzinfo is None:
        raise ValueError("datetime_to_timestamp_ms needs a timezone-aware datetime")
    delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return delta // dt.timedelta(milliseconds=1)


def timestamp_ms_to_datetime(value: int) -> dt.datetime:
    """The aware UTC datetime of milliseconds since the Unix epoch."""
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=value)


class MixpanelSuperEventPropertiesSchema(BaseModel):
    """Properties every event carries. Children inherit these fields and never redefine them.

    A string that has no value is ``""``, never ``None``. ``is_cron_job`` marks events tracked
    by a cron run; such events also carry ``cron_execution_timestamp`` (ms) of that run, while
    the event's ``time`` stays the time of the original action.
    """

    model_config = STRICT_MODEL_CONFIG

    employee_id: str = Field(description="Employee UUID as string")
    organization_id: str = Field(description="Organization UUID as string")
    organization_name: str = Field(description="Organization name (approved for analytics)")
    role: SystemRole | None = Field(description="The acting user's role")
    impersonation: bool = Field(description="Whether the session is impersonated")
    is_cron_job: bool = Field(default=False, description="Tracked by a cron run")
    cron_execution_timestamp: int | None = Field(
        default=None, ge=0, description="When the cron run executed, ms since the epoch"
    )

    @model_validator(mode="after")
    def validate_cron_properties(self) -> Self:
        """``cron_execution_timestamp`` is required exactly when ``is_cron_job`` is true."""
        if self.is_cron_job and self.cron_execution_timestamp is None:
            raise ValueError("cron_execution_timestamp is required when is_cron_job is true")
        if not self.is_cron_job and self.cron_execution_timestamp is not None:
            raise ValueError("cron_execution_timestamp is set but is_cron_job is false")
        return self


# --- checks on schema classes, run at registration ------------------------------------------

#: Property names Mixpanel reserves or that the relay sets itself.
RESERVED_PROPERTY_NAMES = frozenset(
    {
        "time",
        "$time",
        "distinct_id",
        "$distinct_id",
        "$insert_id",
        "token",
        "ip",
        "$ignore",
        "bucket",
        "$bucket",
        "$event_name",
        "mp_original_distinct_id",
        "mp_original_event_name",
    }
)


def is_pii_field_name(name: str) -> bool:
    """Whether a field or property name names personal data (see :mod:`relay._event.pii`).

    ``organization_name`` is approved; names of things (``survey_name``) are not personal.
    """
    return field_name_refusal(name) is not None


def _mentions_uuid(annotation: Any) -> bool:
    if annotation is uuid.UUID:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _mentions_uuid(typing.get_args(annotation)[0])
    return any(_mentions_uuid(arg) for arg in typing.get_args(annotation))


def _is_optional(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(annotation)


def _is_host_role(annotation: Any) -> bool:
    """``R | None`` with ``R`` a string enum: a host's own roles in place of ``SystemRole``."""
    if not _is_optional(annotation):
        return False
    (role, *more) = [a for a in typing.get_args(annotation) if a is not type(None)]
    return not more and isinstance(role, type) and issubclass(role, enum.StrEnum)


def check_schema_definition(event: str, schema: type[BaseModel]) -> None:
    """Raise ``SchemaDefinitionError`` if ``schema`` may not describe an event's properties."""
    if not (isinstance(schema, type) and issubclass(schema, MixpanelSuperEventPropertiesSchema)):
        raise SchemaDefinitionError(
            "schema must derive from MixpanelSuperEventPropertiesSchema", event=event
        )
    if schema.model_config.get("extra") != "forbid":
        raise SchemaDefinitionError(
            "schema must use STRICT_MODEL_CONFIG or ALIASED_MODEL_CONFIG (unknown fields refused)",
            event=event,
        )
    base_fields = MixpanelSuperEventPropertiesSchema.model_fields
    for name, info in schema.model_fields.items():
        base = base_fields.get(name)
        if base is not None:
            if name == "role" and _is_host_role(info.annotation):
                continue
            if info.annotation != base.annotation:
                how = "Optional" if _is_optional(info.annotation) else "another type"
                raise SchemaDefinitionError(
                    f"redefines the base field as {how}; inherit it and pass '' for no value",
                    event=event,
                    field=name,
                )
            continue
        if _mentions_uuid(info.annotation):
            raise SchemaDefinitionError(
                "uuid.UUID is not allowed; identifiers travel as str", event=event, field=name
            )
        for wire_name in {name, info.serialization_alias or info.alias or name}:
            if (refusal := value_refusal(wire_name)) is not None:
                # An alias that is itself an email or a phone number is named by its field.
                raise SchemaDefinitionError(
                    f"wire name looks like {refusal} (personal data)", event=event, field=name
                )
            if (refusal := field_name_refusal(wire_name)) is not None:
                raise SchemaDefinitionError(
                    f"looks like personal data ({refusal})", event=event, field=wire_name
                )
            if wire_name in RESERVED_PROPERTY_NAMES:
                raise SchemaDefinitionError(
                    "is reserved by Mixpanel or set by the relay", event=event, field=wire_name
                )
