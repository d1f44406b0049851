"""A host process for ``test_pii_guard``: tracks refused events with the relay's real logging.

``python pii_log_probe.py <database-url> <json|console>`` configures logging exactly as the
relay's entry points do (``relay._logging.configure_logging``: structlog through the standard
library to stderr), then makes every call in :data:`REFUSED_CALLS` twice: in default mode (the
failure is logged) and in strict mode (the error's text and field are printed to stdout, as a
host that logs its own exceptions would), or ``accepted ...`` when a call was not refused.
Prints ``done <count>`` last.
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic import Field
from sqlalchemy.orm import Session

from relay._config import RelaySettings
from relay._database import create_engine
from relay._errors import RelayError
from relay._event.properties import MixpanelSuperEventPropertiesSchema
from relay._event.registry import register_event
from relay._logging import configure_logging
from relay._tables import metadata
from relay._tracking import track

EVENT = "svc.faults.pii_probe_sent"

EMAIL = "zqxjane.doe@zqxexample.com"
FULLWIDTH_EMAIL = "zqxjane.doe\uff20zqxexample\uff0ecom"
HIDDEN_EMAIL = "zqxjane.doe@zqxexa\u200bmple.com"
PHONE = "+44 20 7946 0958"
DASHED_PHONE = "\uff0b44\u201320\u20137946\u20130958"
#: Every string a refusal must never show; the test looks for each of them in the output.
SECRETS = [EMAIL, FULLWIDTH_EMAIL, HIDDEN_EMAIL, PHONE, DASHED_PHONE]


class ProbeSchema(MixpanelSuperEventPropertiesSchema):
    """Test event with a free-form object, where a host's data can put anything in a key."""

    payload: dict[str, Any] = Field(default_factory=dict)
    note: str = ""


register_event(EVENT, ProbeSchema)
BASE: dict[str, Any] = {
    "employee_id": "6f1c7a0e-1b2c-4d5e-8f90-123456789abc",
    "organization_id": "0b6a8a4e-8f55-4f8e-9a53-3f1f4f1c2d10",
    "organization_name": "Acme",
    "role": "employee",
    "impersonation": False,
}

#: track() arguments (besides the session) that must each be refused.
REFUSED_CALLS: list[dict[str, Any]] = [
    {"properties": {**BASE, "payload": {EMAIL: 1}}},
    {"properties": {**BASE, "payload": {"ok": {FULLWIDTH_EMAIL: True}}}},
    {"properties": {**BASE, "payload": {"answers": [{HIDDEN_EMAIL: 1}]}}},
    {"properties": {**BASE, "payload": {PHONE: "x"}}},
    {"properties": {**BASE, EMAIL: 1}},  # unknown top-level field: pydantic's error path
    {"properties": {**BASE, "note": FULLWIDTH_EMAIL}},
    {"properties": {**BASE, "note": DASHED_PHONE}},
    {"properties": {**BASE, "payload": {"jane": "x" * 300 + EMAIL}}},
    {"event": EMAIL},
    {"event": PHONE},
    {"event": FULLWIDTH_EMAIL},
    {"distinct_id": HIDDEN_EMAIL},
]


def main(database_url: str, log_format: str) -> None:
    """Make every refused call in default and in strict mode; report the strict errors."""
    settings = RelaySettings(database_url=database_url, log_format=log_format)
    configure_logging(settings)
    engine = create_engine(database_url)
    metadata.create_all(engine)
    for change in REFUSED_CALLS:
        arguments = {"event": EVENT, "distinct_id": "u-1", "properties": BASE, **change}
        with Session(engine) as session:
            if track(session, **arguments, strict=False) is not None:
                print("accepted in default mode")
            try:
                track(session, **arguments, strict=True)
            except RelayError as exc:
                print(f"strict error: {exc} | field={getattr(exc, 'field', None)}")
            else:
                print("accepted in strict mode")
            session.commit()
    print(f"done {len(REFUSED_CALLS)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
