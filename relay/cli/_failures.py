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

    from relay._store._base import is_missing_table  # noqa: PLC0415

    orig = getattr(exc, "orig", None) or exc
    kind = type(orig).__name__
    text = str(orig).strip()
    lowered = f"{kind} {text}".lower()
    # The SQLSTATE (or MySQL's error number) says a table is missing, never the message: a
    # role or a database that does not exist is a failed connection, not an unmigrated one.
    if is_missing_table(exc):
        return (
            f"relay's tables are missing in {database}: run `relay migrate` first",
            _exit.CONFIGURATION,
        )
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        # A failed connection names host, port or file; the first line says why.
        first = text.splitlines()[0] if text else kind
        hint = ""
        if database.startswith("sqlite"):
            if "unable to open" in lowered:
                hint = " (check the file's path and that relay may read and write it)"
        elif any(word in lowered for word in ("connect", "refused", "resolve", "denied")):
            # The server may have answered (a role or database that does not exist, a wrong
            # password) or not at all: name everything the URL holds.
            hint = (
                " (check that the server is running and reachable, and the host, user, password "
                "and database name in RELAY_DATABASE_URL or --database-url)"
            )
        return f"cannot use the database {database}: {first}{hint}", _exit.FAILURE
    return f"database error: {kind} on {database}", _exit.FAILURE
