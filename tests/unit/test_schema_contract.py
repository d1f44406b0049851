"""The base schema, the cron rule and the checks made when a schema is registered."""

import datetime as dt
import re
import uuid

import pytest
from hr_catalog.schemas import CATALOG_SCHEMAS
from pydantic import BaseModel, Field, ValidationError

from relay._errors import SchemaDefinitionError
from relay._event.properties import (
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


#: Field names that name personal data, in every spelling a schema author might use.
PII_FIELD_NAMES = [
    # emails
    "userEmail",
    "emailAddress",
    "e_mail",
    "e-mail",
    "WorkEmail",
    "useremailaddress",
    # phones
    "mobileNumber",
    "mobile_number",
    "cellphone",
    "cell_phone",
    "CellPhone",
    "cell",
    "mobile",
    "tel",
    "telephone",
    "fax",
    "msisdn",
    "phoneNo",
    "contact_phone2",
    # names
    "givenName",
    "displayName",
    "first_name",
    "FirstName",
    "lastname",
    "surname",
    "fullName",
    "middle_name",
    "maidenName",
    "user_name",
    "username",
    "nickname",
    "employee_name",
    "manager_name",
    "recipient_names",
    "account_holder_name",
    "names",
    # addresses
    "address",
    "street",
    "postcode",
    "postal_code",
    "zip",
    "zipCode",
    "address_line_1",
    # birth dates
    "date_of_birth",
    "dateOfBirth",
    "dob",
    "birthday",
    "birth_date",
    # national and passport ids
    "passport_number",
    "socialSecurityNumber",
    "ssn",
    "national_id",
    "nino",
    "tax_id",
    "drivers_license",
    # bank and card numbers
    "iban",
    "bic",
    "swift_code",
    "account_number",
    "sort_code",
    "routing_number",
    "credit_card",
    "creditCardNumber",
    "card_number",
    "card",
    "pan",
    "cvv",
    # network addresses
    "ip",
    "ip_address",
    "ipAddress",
    "client_ip",
    "ipv4",
    "IPv6Address",
    "mac_address",
    # disguised spellings
    "\uff45\uff4d\uff41\uff49\uff4c",
    "e\u00admail",
    "ph\u200bone",
]


@pytest.mark.parametrize("field", PII_FIELD_NAMES)
def test_pii_field_names_are_recognised_in_every_spelling(field: str) -> None:
    """camelCase, PascalCase, snake, kebab, glued and disguised names of personal data."""
    assert is_pii_field_name(field) is True


@pytest.mark.parametrize("field", ["userEmail", "givenName", "date_of_birth", "iban", "cvv"])
def test_pii_field_names_in_camel_case_are_refused_at_registration(field: str) -> None:
    """The registration check uses the full vocabulary, not only snake_case words."""
    bad = type("Bad", (MixpanelSuperEventPropertiesSchema,), {"__annotations__": {field: str}})
    with pytest.raises(SchemaDefinitionError, match=f"'{field}': looks like personal data"):
        check_schema_definition("svc.a.b", bad)


@pytest.mark.parametrize(
    ("field", "kind"),
    [
        ("address", "a postal address"),
        ("home_address", "a postal address"),
        ("ip_address", "an IP address"),
        ("email_address", "an email address"),
        ("mac_address", "a device's hardware (MAC) address"),
        ("date_of_birth", "a birth date"),
        ("credit_card", "a bank or card number"),
    ],
)
def test_the_refusal_names_the_kind_of_personal_data(field: str, kind: str) -> None:
    """The longest matching words decide: ip_address is an IP address, not a postal one."""
    bad = type("Bad", (MixpanelSuperEventPropertiesSchema,), {"__annotations__": {field: str}})
    with pytest.raises(SchemaDefinitionError, match=re.escape(f"personal data ({kind})")):
        check_schema_definition("svc.a.b", bad)


#: Names of things, and analytics words that share a word with personal data.
NOT_PII_FIELD_NAMES = [
    "organization_name",
    "survey_name",
    "file_name",
    "event_name",
    "team_name",
    "plan_name",
    "template_name",
    "host_name",
    "fileName",
    "role",
    "is_first_login",
    "first_seen_at",
    "is_mobile",
    "mobile_app_version",
    "card_id",
    "dashboard_card_type",
    "cell_count",
    "pan_offset",
    "server_address",
    "listen_address",
    "zip_file",
    "device_id",
    "$device_id",
    "hotel_id",
    "account_id",
    "account_type",
    "duration_ms",
    "contributing_factors",
    "error_code",
    "survey_run_id",
    "tip_amount",
    "shipping_method",
]


@pytest.mark.parametrize("field", NOT_PII_FIELD_NAMES)
def test_business_names_are_not_pii(field: str) -> None:
    """organization_name is approved, names of things are fine, shared words do not trip it."""
    assert is_pii_field_name(field) is False


def test_every_catalog_field_passes_the_vocabulary() -> None:
    """The shipped catalog's wire names are all accepted by the fuller vocabulary."""
    for schema in CATALOG_SCHEMAS.values():
        for name, info in schema.model_fields.items():
            assert is_pii_field_name(name) is False, name
            assert is_pii_field_name(info.alias or name) is False, info.alias


def test_an_alias_that_is_an_email_is_refused_without_echoing_it() -> None:
    """A wire alias shaped like an email is refused and reported by its Python field name."""

    class Bad(MixpanelSuperEventPropertiesSchema):
        model_config = ALIASED_MODEL_CONFIG
        contact: str = Field(alias="jane\uff20example.com")

    with pytest.raises(SchemaDefinitionError, match="'contact': wire name looks like an email"):
        check_schema_definition("svc.a.b", Bad)


def test_mixpanels_ip_property_is_reserved() -> None:
    """A schema may not declare ``ip``: Mixpanel geolocates from it, and the relay sets it."""

    class Bad(MixpanelSuperEventPropertiesSchema):
        ip: str

    with pytest.raises(SchemaDefinitionError, match="'ip': "):
        check_schema_definition("svc.a.b", Bad)


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
