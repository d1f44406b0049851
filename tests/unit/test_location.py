"""Location given on purpose, never an IP address: the checks behind track(location=...)."""

import pytest

from relay import Location
from relay._errors import EventValidationError
from relay._event.location import ISO_3166_ALPHA_2, with_location

EV = "svc.a.b"


def test_location_becomes_mixpanels_three_location_properties() -> None:
    """City, region and country code are stored under exactly $city, $region, mp_country_code."""
    stored = with_location(EV, {"a": 1}, Location(city="Lyon", region="ARA", country_code="FR"))
    assert stored == {"a": 1, "$city": "Lyon", "$region": "ARA", "mp_country_code": "FR"}


def test_location_without_names_stores_only_the_country() -> None:
    """Optional city and region left out are not stored at all."""
    assert with_location(EV, {}, Location(country_code="JP")) == {"mp_country_code": "JP"}


@pytest.mark.parametrize("code", ["XX", "de", "DEU", "", "UK", 49])
def test_country_code_must_be_an_assigned_alpha_2_code(code: object) -> None:
    """Unassigned, lower-case, alpha-3 and non-string codes are refused naming the field."""
    with pytest.raises(EventValidationError) as info:
        with_location(EV, {}, Location(country_code=code))  # type: ignore[arg-type]
    assert info.value.field == "mp_country_code"


def test_the_iso_list_has_every_assigned_code() -> None:
    """249 codes are assigned in ISO 3166-1; common ones are among them."""
    assert len(ISO_3166_ALPHA_2) == 249
    assert {"DE", "US", "GB", "FR", "IN", "BR", "SS", "XK"} - ISO_3166_ALPHA_2 == {"XK"}


@pytest.mark.parametrize("key", ["ip", "$ip"])
def test_ip_properties_are_refused(key: str) -> None:
    """An ip or $ip property is refused with or without a location: it is personal data."""
    with pytest.raises(EventValidationError) as info:
        with_location(EV, {key: "203.0.113.9"}, None)
    assert info.value.field == key
    assert "203.0.113.9" not in str(info.value)


def test_location_given_twice_is_refused() -> None:
    """A $city property and location= together are refused rather than one silently winning."""
    with pytest.raises(EventValidationError) as info:
        with_location(EV, {"$city": "Paris"}, Location(country_code="FR", city="Lyon"))
    assert info.value.field == "$city"


def test_blank_city_is_refused() -> None:
    """An empty or blank city name is refused naming $city."""
    with pytest.raises(EventValidationError) as info:
        with_location(EV, {}, Location(country_code="FR", city="  "))
    assert info.value.field == "$city"


def test_location_is_exported_from_relay() -> None:
    """relay.Location is public API."""
    import relay  # noqa: PLC0415

    assert "Location" in relay.__all__
