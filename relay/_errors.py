"""The relay's exceptions: one root, and a type per decision a caller has to make.

Whether something is retried is decided by the exception's *type*, never by its message.
Delivery raises nothing: what becomes of each row sent to Mixpanel (delivered, rejected,
retried, unsent) is the client's ``SendOutcome``, so there is no exception family for it;
``MixpanelAuthError`` is only how ``relay drain`` turns a refused credential into exit 3.
Messages name the event and the field at fault but never carry property values, so an
error can be logged or shown to an operator without leaking personal data.
"""

from __future__ import annotations


class RelayError(Exception):
    """Root of every error raised by relay."""


class ConfigurationError(RelayError):
    """The settings are missing or contradictory; nothing will work until they are fixed."""


# --- the event contract -----------------------------------------------------------------


class EventContractError(RelayError, ValueError):
    """An event, a schema or a property breaks the event contract.

    ``event`` and ``field`` name what is wrong; the message never contains a property value.
    """

    def __init__(self, message: str, *, event: str | None = None, field: str | None = None):
        self.event = event
        self.field = field
        self.reason = message
        where = []
        if event:
            where.append(f"event {event!r}")
        if field:
            where.append(f"field {field!r}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(f"{prefix}{message}")


class EventNameError(EventContractError):
    """An event name does not follow ``{prefix}.{object}.{action}[.error]``."""


class SchemaDefinitionError(EventContractError):
    """A schema class breaks a rule that is checked when it is registered."""


class EventRegistrationError(EventContractError):
    """An event is unknown, or a different schema is already registered under its name."""


class EventValidationError(EventContractError):
    """An event's properties, ``distinct_id``, ``$insert_id`` or time fail validation."""


class ProfileUpdateError(EventValidationError):
    """A user or group profile update is refused (``relay.update_profile``, ``update_group``).

    ``event`` names the update (``user profile $set``), ``field`` the property; never a value.
    """


class FilterError(RelayError, ValueError):
    """An operator's filter is malformed or names something that does not exist.

    Raised before anything is changed. ``field`` names the filter field at fault
    (``events``, ``states``, ``created_after``, ...).
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


# --- storage ------------------------------------------------------------------------------


class StoreError(RelayError):
    """The outbox database failed; the driver's exception is chained as ``__cause__``.

    Except on the insert behind ``track()``, whose driver errors quote the bound values
    (property values, personal data): those are raised unchained. ``sqlstate`` is the
    driver's SQLSTATE when it gave one (SQLite's errors carry none).
    """

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        self.sqlstate = sqlstate
        super().__init__(message)


class DuplicateInsertIdError(StoreError):
    """The outbox already holds a row with this ``$insert_id`` (a unique-key violation)."""


class SchemaRevisionError(ConfigurationError):
    """The database's relay schema is not the revision this relay needs (exit 3 in the CLI)."""


class OutboxTablesMissingError(StoreError):
    """The outbox's tables are not in this database: it was never migrated (``relay migrate``)."""


# --- delivery -----------------------------------------------------------------------------


class MixpanelAuthError(ConfigurationError):
    """Mixpanel answered 401: credentials, role, ``project_id`` or regional host are wrong.

    Sending stops and rows are left untouched until an operator fixes the configuration.
    """


# --- operators and the tracking plan ----------------------------------------------------


class GdprRequestError(RelayError):
    """Mixpanel's GDPR API refused or did not answer a deletion request."""


class ErasureInFlightError(RelayError):
    """A relay kept sending rows of the person past its lease; nothing was erased."""


class ScaffoldExistsError(RelayError):
    """The event (or a name it needs) already exists in the package; nothing was written."""


class EditError(RelayError):
    """A host module cannot take the event's lines (named in the message); nothing was written."""


class FormatError(RelayError):
    """The formatter could not run, or refused the generated code (nothing was written)."""


class DjangoSetupError(RelayError):
    """Django's own set-up failed (an app that cannot be imported, a schema it refuses)."""


class DjangoSettingsMissingError(ConfigurationError):
    """The linted package is a Django app and no settings module is known."""
