"""``Location``: where an event happened, given on purpose instead of guessed from an IP address.

Mixpanel geolocates an event from the ``ip`` it is sent with; the relay always sends ``ip`` = 0
(the relay host's address says nothing about the user, and an end user's address is personal
data that must not reach the outbox). A caller that knows the location passes it to
``track(..., location=Location(...))``; it is stored as Mixpanel's own location properties.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay._errors import EventValidationError

#: The property names Mixpanel reads a location from (its GeoIP writes the same ones).
CITY_PROPERTY = "$city"
REGION_PROPERTY = "$region"
COUNTRY_CODE_PROPERTY = "mp_country_code"
LOCATION_PROPERTIES = (CITY_PROPERTY, REGION_PROPERTY, COUNTRY_CODE_PROPERTY)
#: Property names that would carry an IP address for Mixpanel to geolocate: refused.
IP_PROPERTIES = frozenset({"ip", "$ip"})

#: The 249 officially assigned ISO 3166-1 alpha-2 codes.
ISO_3166_ALPHA_2 = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
    """.split()  # noqa: SIM905 - 249 codes read better as a block than as 249 quoted strings
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    """Where an event happened: stored as ``$city``, ``$region`` and ``mp_country_code``.

    ``country_code`` is an ISO 3166-1 alpha-2 code in capitals (``"DE"``); ``city`` and
    ``region`` are optional names (``"Berlin"``, ``"Berlin"``), each a string property under
    Mixpanel's limits. Never an IP address. Constructing one never raises (tracking must
    not break business code); ``track()`` checks it, and in default mode logs a bad one and
    stores nothing.
    """

    country_code: str
    region: str | None = None
    city: str | None = None

    def properties(self, event: str) -> dict[str, str]:
        """The properties this location is stored as; raises ``EventValidationError`` if bad."""
        if not isinstance(self.country_code, str) or self.country_code not in ISO_3166_ALPHA_2:
            raise EventValidationError(
                "location country_code must be an ISO 3166-1 alpha-2 code in capitals",
                event=event,
                field=COUNTRY_CODE_PROPERTY,
            )
        stored = {COUNTRY_CODE_PROPERTY: self.country_code}
        for name, value in ((REGION_PROPERTY, self.region), (CITY_PROPERTY, self.city)):
            if value is None:
                continue
            if not isinstance(value, str) or not value.strip():
                raise EventValidationError(
                    "location names must be non-empty strings", event=event, field=name
                )
            stored[name] = value
        return stored


def with_location(
    event: str, properties: dict[str, Any], location: Location | None
) -> dict[str, Any]:
    """``properties`` with ``location`` added; refuses IP properties and location given twice."""
    _refuse_ip(event, properties)
    if location is None:
        return properties
    if not isinstance(location, Location):
        raise EventValidationError(
            f"location must be a relay.Location, not {type(location).__name__}", event=event
        )
    given_twice = [name for name in LOCATION_PROPERTIES if name in properties]
    if given_twice:
        raise EventValidationError(
            "location given both in properties and as location=", event=event, field=given_twice[0]
        )
    return {**properties, **location.properties(event)}


def _refuse_ip(event: str, properties: Mapping[str, Any]) -> None:
    for name in IP_PROPERTIES:
        if name in properties:
            raise EventValidationError(
                "an IP address is personal data and is never stored; pass location= instead",
                event=event,
                field=name,
            )
