"""Every exception relay raises that a caller may catch, importable from one public module.

All derive from :class:`RelayError`. Whether to retry is decided by an exception's type, never
by its message; messages name events, fields and settings, never a property value or a secret.

==========================  ==========================================================
exception                   raised when
==========================  ==========================================================
``RelayError``              the root: anything relay raises on purpose
``ConfigurationError``      settings missing or contradictory (the CLI's exit 3)
``SchemaRevisionError``     the database's relay tables are at another revision
``MixpanelAuthError``       Mixpanel refused the credentials, project or host
``EventContractError``      an event, schema or property breaks the event contract
``EventNameError``          an event name breaks ``{prefix}.{object}.{action}[.error]``
``SchemaDefinitionError``   a schema class breaks a rule checked at registration
``EventRegistrationError``  an event is unknown, or its name is taken by another schema
``EventValidationError``    an event's properties, ids or time fail validation
``ProfileUpdateError``      a user or group profile update is refused
``FilterError``             an operator's filter is malformed (the CLI's exit 2)
``StoreError``              the outbox database failed
``DuplicateInsertIdError``  the outbox already holds this ``$insert_id``
``OutboxTablesMissingError``  relay's tables are not in this database (``relay migrate``)
``GdprRequestError``        Mixpanel's GDPR API refused or did not answer (nothing erased)
``ErasureInFlightError``    ``relay forget`` found the person's rows still being sent
``ScaffoldExistsError``     ``relay events new``: the event already exists
``EditError``               ``relay events new``: a host module cannot take the edit
``FormatError``             ``relay events new``: the formatter failed (nothing written)
``DjangoSetupError``        linting a Django app: Django's own set-up failed
``DjangoSettingsMissingError``  linting a Django app: no settings module is known
==========================  ==========================================================
"""

from __future__ import annotations

from relay._errors import (
    ConfigurationError,
    DjangoSettingsMissingError,
    DjangoSetupError,
    DuplicateInsertIdError,
    EditError,
    ErasureInFlightError,
    EventContractError,
    EventNameError,
    EventRegistrationError,
    EventValidationError,
    FilterError,
    FormatError,
    GdprRequestError,
    MixpanelAuthError,
    OutboxTablesMissingError,
    ProfileUpdateError,
    RelayError,
    ScaffoldExistsError,
    SchemaDefinitionError,
    SchemaRevisionError,
    StoreError,
)

__all__ = [
    "ConfigurationError",
    "DjangoSettingsMissingError",
    "DjangoSetupError",
    "DuplicateInsertIdError",
    "EditError",
    "ErasureInFlightError",
    "EventContractError",
    "EventNameError",
    "EventRegistrationError",
    "EventValidationError",
    "FilterError",
    "FormatError",
    "GdprRequestError",
    "MixpanelAuthError",
    "OutboxTablesMissingError",
    "ProfileUpdateError",
    "RelayError",
    "ScaffoldExistsError",
    "SchemaDefinitionError",
    "SchemaRevisionError",
    "StoreError",
]
