"""What an exception means to the person who typed the command: one line and an exit code.

The root group hands every exception a command lets out to :func:`explain`. Driver messages
are shown only where they name the problem without quoting data (a connection that failed);
otherwise the driver's type is named with what to do. Secrets are scrubbed by the caller.

Imports are local: this runs only after a command has failed, when the libraries it names have
been imported already by whatever raised.
"""

from __future__ import annotations

import sys

from relay import _exit

#: Driver messages that mean relay's tables (or one of them) are not there.
_MISSING_TABLE = ("no such table", "undefinedtable", "doesn't exist", "does not exist")


def explain(exc: BaseException, *, database: str) -> tuple[str, int] | None:  # noqa: PLR0911
    """``(message, exit code)`` for ``exc``, or ``None`` for an exception relay does not know.

    ``database`` is the redacted URL of the outbox database, for messages about it.
    """
    from relay._errors import ConfigurationError, FilterError, RelayError  # noqa: PLC0415

    if isinstance(exc, FilterError):
        return str(exc), _exit.USAGE
    if isinstance(exc, ConfigurationError):
        return f"configuration error: {exc}", _exit.CONFIGURATION
    driver = _driver_error(exc)
    if driver is not None:
        return _explain_driver(driver, database=database)
    if isinstance(exc, RelayError):
        return str(exc), _exit.FAILURE
    if "sqlalchemy" in sys.modules:
        import sqlalchemy as sa  # noqa: PLC0415

        if isinstance(exc, sa.exc.SQLAlchemyError):
            return f"database error: {type(exc).__name__}", _exit.FAILURE
    if "alembic" in sys.modules:
        from alembic.util import CommandError  # noqa: PLC0415

        if isinstance(exc, CommandError):  # an unknown revision, a broken history
            return f"migration error: {exc}", _exit.USAGE
    return None


def _driver_error(exc: BaseException) -> BaseException | None:
    """The SQLAlchemy DBAPI error ``exc`` is or wraps (a ``StoreError`` chains it)."""
    if "sqlalchemy" not in sys.modules:
        return None
    import sqlalchemy as sa  # noqa: PLC0415

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sa.exc.DBAPIError):
            return seen
        seen = seen.__cause__
    return None


def _explain_driver(exc: BaseException, *, database: str) -> tuple[str, int]:
    import sqlalchemy as sa  # noqa: PLC0415

    orig = getattr(exc, "orig", None) or exc
    kind = type(orig).__name__
    text = str(orig).strip()
    lowered = f"{kind} {text}".lower()
    if any(marker in lowered for marker in _MISSING_TABLE) and "database" not in lowered:
        return (
            f"relay's tables are missing in {database}: run `relay migrate` first",
            _exit.CONFIGURATION,
        )
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        # A failed connection names host, port or file; the first line says why.
        first = text.splitlines()[0] if text else kind
        hint = ""
        if any(word in lowered for word in ("connect", "unable to open", "refused", "resolve")):
            hint = " (is it running and reachable? check RELAY_DATABASE_URL or --database-url)"
        return f"cannot use the database {database}: {first}{hint}", _exit.FAILURE
    return f"database error: {kind} on {database}", _exit.FAILURE
