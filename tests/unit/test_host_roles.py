"""A host brings its own roles: ``role`` may be redefined as its own string enum, nothing else."""

from __future__ import annotations

import enum
import uuid

import pytest
from pydantic import Field

from relay import MixpanelSuperEventPropertiesSchema, SystemRole
from relay._errors import SchemaDefinitionError
from relay._event.properties import check_schema_definition


class OptimoRole(enum.StrEnum):
    """A host product's roles, unknown to relay."""

    OWNER = "owner"
    COACH = "coach"


class OptimoEventSchema(MixpanelSuperEventPropertiesSchema):
    """The host's own base schema, with its roles."""

    role: OptimoRole | None = Field(description="The acting user's role")


class CoachingBookedSchema(OptimoEventSchema):
    """A host event built on the host's base schema."""

    session_id: str


def test_a_host_role_enum_is_accepted_and_validated() -> None:
    """``role: HostRole | None`` registers; its values validate and serialise as strings."""
    check_schema_definition("svc.coaching.session.booked", CoachingBookedSchema)
    properties = CoachingBookedSchema(
        employee_id=str(uuid.uuid4()),
        organization_id=str(uuid.uuid4()),
        organization_name="Acme",
        role=OptimoRole.COACH,
        impersonation=False,
        session_id="s-1",
    )
    assert properties.model_dump(mode="json")["role"] == "coach"
    with pytest.raises(ValueError, match="role"):
        CoachingBookedSchema(
            employee_id="e",
            organization_id="o",
            organization_name="Acme",
            role=SystemRole.SUPER_ADMIN,
            impersonation=False,
            session_id="s-1",
        )


@pytest.mark.parametrize(
    "annotation",
    [str | None, OptimoRole, OptimoRole | SystemRole | None, int | None],
    ids=["free-text", "not-optional", "two-enums", "int"],
)
def test_any_other_redefinition_of_role_is_refused(annotation: object) -> None:
    """A free-text, required, mixed or non-string role is still a redefinition of a base field."""
    schema = type(
        "BadRoleSchema",
        (MixpanelSuperEventPropertiesSchema,),
        {"__annotations__": {"role": annotation}, "role": Field(default=None)},
    )
    with pytest.raises(SchemaDefinitionError, match="redefines the base field"):
        check_schema_definition("svc.coaching.session.booked", schema)
