"""The base schema, the cron rule and the checks made when a schema is registered."""

import datetime as dt
import uuid

import pytest
from pydantic import BaseModel, Field, ValidationError

from relay.errors import SchemaDefinitionError
from relay.schema import (
    ALIASED_MODEL_CONFIG,
    MixpanelSuperEventPropertiesSchema,
    SystemRole,
    check_schema_definition,
    datetime_to_timestamp_ms,
    is_pii_field_name,
    timestamp_ms_to_datetime,
)

BASE = {
    "employee_id": "e1",
    "organization_id": "o1",
    "organization_name": "Acme",
    "role": SystemRole.EMPLOYEE,
    "impersonation": False,
}


def test_base_schema_accepts_the_super_properties() -> None:
    """The seed's super-properties validate, with is_cron_job defaulting to false."""
    props = MixpanelSuperEventPropertiesSchema(**BASE)
    assert props.is_cron_job is False
    assert props.cron_execution_timestamp is None


def test_base_schema_refuses_unknown_fields() -> None:
    """STRICT_MODEL_CONFIG refuses fields the schema does not declare."""
    with pytest.raises(ValidationError, match="extra_thing"):
        MixpanelSuperEventPropertiesSchema(**BASE, extra_thing=1)


def test_cron_job_without_execution_timestamp_is_refused() -> None:
    """validate_cron_properties requires cron_execution_timestamp when is_cron_job is true."""
    with pytest.raises(ValidationError, match="cron_execution_timestamp is required"):
        MixpanelSuperEventPropertiesSchema(**BASE, is_cron_job=True)


def test_cron_job_with_execution_timestamp_is_accepted() -> None:
    """A cron event with its execution timestamp validates."""
    props = MixpanelSuperEventPropertiesSchema(
        **BASE, is_cron_job=True, cron_execution_timestamp=1_700_000_000_000
    )
    assert props.cron_execution_timestamp == 1_700_000_000_000


def test_execution_timestamp_without_cron_flag_is_refused() -> None:
    """A cron timestamp on a non-cron event is a contradiction and is refused."""
    with pytest.raises(ValidationError, match="is_cron_job is false"):
        MixpanelSuperEventPropertiesSchema(**BASE, cron_execution_timestamp=1)


def test_datetime_to_timestamp_ms_is_exact_and_refuses_naive() -> None:
    """Milliseconds since the epoch, exact for aware datetimes; naive ones are refused."""
    moment = dt.datetime(2026, 11, 26, 12, 0, 0, 123000, tzinfo=dt.UTC)
    assert datetime_to_timestamp_ms(moment) == 1_795_694_400_123
    assert timestamp_ms_to_datetime(1_795_694_400_123) == moment
    with pytest.raises(ValueError, match="timezone-aware"):
        datetime_to_timestamp_ms(dt.datetime(2026, 1, 1))  # noqa: DTZ001 - the naive case


class GoodSchema(MixpanelSuperEventPropertiesSchema):
    survey_id: str
    survey_name: str
    recipient_ids: list[str] = Field(default_factory=list)


def test_a_well_formed_schema_passes_the_definition_check() -> None:
    """A child schema with string ids and no PII fields is accepted."""
    check_schema_definition("svc.surveys.survey_delivered", GoodSchema)


def test_redefining_a_base_field_as_optional_is_refused() -> None:
    """Children may not redefine organization_id as Optional; they pass '' instead."""

    class Bad(MixpanelSuperEventPropertiesSchema):
        organization_id: str | None = None  # type: ignore[assignment]

    with pytest.raises(
        SchemaDefinitionError, match="'organization_id': redefines the base field as Optional"
    ):
        check_schema_definition("svc.a.b", Bad)


def test_uuid_fields_are_refused() -> None:
    """Identifiers travel as str; a uuid.UUID field (even inside a list) is refused."""

    class Bad(MixpanelSuperEventPropertiesSchema):
        survey_ids: list[uuid.UUID]

    with pytest.raises(SchemaDefinitionError, match=r"'survey_ids': uuid\.UUID is not allowed"):
        check_schema_definition("svc.a.b", Bad)


@pytest.mark.parametrize(
    "field", ["email", "manager_email", "phone_number", "first_name", "name", "home_address"]
)
def test_pii_named_fields_are_refused(field: str) -> None:
    """Fields named like names, emails, phones or addresses are refused at registration."""
    bad = type("Bad", (MixpanelSuperEventPropertiesSchema,), {"__annotations__": {field: str}})
    with pytest.raises(SchemaDefinitionError, match=f"'{field}': looks like personal data"):
        check_schema_definition("svc.a.b", bad)


@pytest.mark.parametrize("field", ["organization_name", "survey_name", "file_name", "role"])
def test_business_names_are_not_pii(field: str) -> None:
    """organization_name is approved, and names of things (not people) are fine."""
    assert is_pii_field_name(field) is False


def test_pii_check_covers_wire_aliases() -> None:
    """A `$`-aliased field whose wire name is personal data is refused."""

    class Bad(MixpanelSuperEventPropertiesSchema):
        model_config = ALIASED_MODEL_CONFIG
        contact: str = Field(alias="$email")

    with pytest.raises(SchemaDefinitionError, match=r"'\$email': looks like personal data"):
        check_schema_definition("svc.a.b", Bad)


def test_reserved_property_names_are_refused() -> None:
    """A schema may not define 'time' or 'token': the relay and Mixpanel own them."""

    class Bad(MixpanelSuperEventPropertiesSchema):
        token: str

    with pytest.raises(SchemaDefinitionError, match="'token': is reserved"):
        check_schema_definition("svc.a.b", Bad)


def test_schemas_not_derived_from_the_base_are_refused() -> None:
    """Only MixpanelSuperEventPropertiesSchema children can describe events."""

    class Plain(BaseModel):
        x: int

    with pytest.raises(SchemaDefinitionError, match="must derive from"):
        check_schema_definition("svc.a.b", Plain)
