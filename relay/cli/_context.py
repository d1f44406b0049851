"""One place for what every command needs: settings, the engine, the schema check, output.

This is the CLI's ``CommandBase`` (after River's): the root group puts a :class:`Relay` in
``ctx.obj``; commands take it with :func:`pass_relay` and ask it for ``settings`` (built on
first use, so ``relay --help``, ``relay standin`` and ``relay events`` never read them),
``now`` (one instant per invocation, which relative WHEN values are resolved against),
``engine()`` (the URL checked, a missing SQLite file refused, the schema revision checked before
writes) and ``emit()`` (a result's ``to_json()`` with ``--json``, else its text).

Heavy modules (pydantic, SQLAlchemy, Alembic) are imported inside the methods.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

import click

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from relay._config import RelaySettings

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: What each database URL scheme that cannot work should have been.
_SCHEME_HINTS = {
    "postgres": "postgresql+psycopg://",
    "postgresql": "postgresql+psycopg://",
    "postgresql+psycopg2": "postgresql+psycopg://",
    "mysql": "mysql+pymysql://",
    "mariadb": "mysql+pymysql://",
    "mysql+mysqldb": "mysql+pymysql://",
}
_URL_EXAMPLES = (
    "such as postgresql+psycopg://user@host/db, mysql+pymysql://user@host/db or sqlite:///relay.db"
)
#: The extra of relay-outbox that installs each driver module a supported URL names.
_DRIVER_EXTRAS = {"psycopg": "postgresql", "psycopg_binary": "postgresql", "pymysql": "mysql"}


class _JSONable(Protocol):
    def to_json(self) -> Any: ...


class Relay:
    """The state of one ``relay`` invocation (``ctx.obj``)."""

    def __init__(self, *, database_url: str | None, given: Mapping[str, Any] | None = None) -> None:
        self._database_url = database_url
        self._given = dict(given or {})
        self._settings: RelaySettings | None = None
        self._now: dt.datetime | None = None

    # --- settings -----------------------------------------------------------------------------

    @property
    def settings(self) -> RelaySettings:
        """``RelaySettings`` from ``RELAY_*`` (and ``--database-url``); exit 3 if invalid."""
        if self._settings is None:
            self._settings = _build_settings(self._database_url, self._given)
        return self._settings

    def secrets(self) -> frozenset[str]:
        """Secrets to scrub from messages (none before the settings were read)."""
        return frozenset() if self._settings is None else self._settings.secret_values()

    def database_source(self) -> str:
        """Where the database URL came from, for messages."""
        if self._database_url:
            return "--database-url"
        if "RELAY_DATABASE_URL" in os.environ:  # set, even if empty
            return "RELAY_DATABASE_URL"
        if self._given.get("database_url"):
            return "the host's RELAY settings (database_url)"
        return "RELAY_DATABASE_URL is not set; the default is sqlite:///relay.db"

    def database_redacted(self) -> str:
        """The database URL as it may be shown (before the settings were read: a placeholder)."""
        if self._settings is None:
            return "the database"
        return self._settings.database_url_redacted

    # --- time, engine, output --------------------------------------------------------------

    @property
    def now(self) -> dt.datetime:
        """The invocation's instant (aware UTC), fixed at first use."""
        if self._now is None:
            self._now = dt.datetime.now(dt.UTC)
        return self._now

    @contextmanager
    def engine(self, *, writes: bool = False, create: bool = False) -> Iterator[Engine]:
        """An engine on the outbox database, disposed of afterwards.

        The URL is checked first (one line and exit 3 naming the scheme to write instead).
        Without ``create`` a SQLite file that does not exist is refused, never created.
        ``writes=True`` refuses a schema revision this relay does not run on (exit 3).
        """
        engine = open_engine(
            self.settings.database_url.get_secret_value(),
            source=self.database_source(),
            must_exist=not create,
        )
        try:
            if writes:
                from relay import _migrations  # noqa: PLC0415

                _migrations.require_current_schema(engine)
            yield engine
        finally:
            engine.dispose()

    def emit(self, result: _JSONable, *, as_json: bool, text: Callable[[], None]) -> None:
        """``result.to_json()`` as indented JSON with ``--json``, else ``text()``."""
        if as_json:
            echo_json(result.to_json())
        else:
            text()


def echo_json(value: Any) -> None:
    """``value`` as indented JSON, safe for a terminal."""
    from relay.cli._output import dumps  # noqa: PLC0415

    click.echo(dumps(value, indent=True))


def pass_relay(func: Callable[Concatenate[Relay, _P], _R]) -> Callable[_P, _R]:
    """Pass the invocation's :class:`Relay` as the first argument."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        relay = click.get_current_context().find_object(Relay)
        if relay is None:  # a command invoked on its own, outside `relay`
            relay = Relay(database_url=None)
        return func(relay, *args, **kwargs)

    return wrapper


def _build_settings(database_url: str | None, given: Mapping[str, Any]) -> RelaySettings:
    from relay import _exit  # noqa: PLC0415
    from relay._config import load_settings  # noqa: PLC0415
    from relay._errors import ConfigurationError  # noqa: PLC0415

    try:
        settings = load_settings(**given)
        if database_url:
            settings = load_settings(**(settings.model_dump() | {"database_url": database_url}))
    except ConfigurationError as exc:
        # Names and rules only: the rejected value may be a secret.
        _exit.fail(f"configuration error: {exc}", _exit.CONFIGURATION)
    return settings


def open_engine(url: str, *, source: str, must_exist: bool) -> Engine:
    """``relay._database.create_engine(url)``, with a :class:`ConfigurationError` naming
    ``source`` and the scheme to write for a URL no installed driver can use, and (with
    ``must_exist``) for a SQLite file that is not there."""
    import sqlalchemy as sa  # noqa: PLC0415

    from relay._database import create_engine  # noqa: PLC0415
    from relay._errors import ConfigurationError  # noqa: PLC0415

    if not url.strip():
        raise ConfigurationError(
            f"{source} is empty: set it to a database URL {_URL_EXAMPLES}, or unset "
            "RELAY_DATABASE_URL for the default sqlite:///relay.db"
        )
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        raise ConfigurationError(
            f"{source} is not a database URL: expected dialect+driver://..., {_URL_EXAMPLES}"
        ) from None
    scheme = parsed.drivername
    hint = _SCHEME_HINTS.get(scheme)
    if hint and "+" not in scheme:
        # A URL naming no driver is refused even where SQLAlchemy's default driver for it
        # (psycopg2, MySQLdb) happens to be installed: say which one. A driver named on
        # purpose (postgresql+psycopg2, as a Django project on psycopg2 hands over) is used.
        raise ConfigurationError(
            f"{source}: a {scheme}:// URL names no driver (SQLAlchemy would pick one relay "
            f"does not install): write {hint} instead"
        )
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite(parsed, source=source, must_exist=must_exist)
    try:
        return create_engine(url)
    except sa.exc.NoSuchModuleError:
        raise ConfigurationError(
            f"{source}: relay cannot use database URLs starting {scheme}://; expected a URL "
            f"{_URL_EXAMPLES}"
        ) from None
    except ModuleNotFoundError as exc:
        top = (exc.name or "").partition(".")[0]
        extra = _DRIVER_EXTRAS.get(top)
        if extra:
            install = f': install it with pip install "relay-outbox[{extra}]"'
        elif hint:
            install = f": write {hint} instead"
        else:
            install = f"; expected a URL {_URL_EXAMPLES}"
        raise ConfigurationError(
            f"{source}: {scheme}:// needs the driver module {exc.name!r}, which is not "
            f"installed{install}"
        ) from None


def _check_sqlite(parsed: Any, *, source: str, must_exist: bool) -> None:
    """Refuse a SQLite URL that cannot name a usable file, before any driver sees it."""
    from relay._errors import ConfigurationError  # noqa: PLC0415

    if parsed.host:  # sqlite://nope.db: the file name was read as a host
        raise ConfigurationError(
            f"{source}: a SQLite URL names no host; write sqlite:///{parsed.host}"
            f"{'/' + parsed.database if parsed.database else ''} (three slashes, a path "
            "relative to the current directory) or sqlite:////absolute/path.db (four)"
        )
    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or parsed.query.get("mode") == "memory"
    if in_memory or database.startswith("file:"):
        return
    path = Path(database)
    if path.is_dir():
        raise ConfigurationError(
            f"{source}: the SQLite database {database} is a directory: name a file in it"
        )
    parent = path.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise ConfigurationError(
            f"{source}: the directory of the SQLite database {database}, {parent}, {what}"
        )
    if must_exist and not path.exists():
        raise ConfigurationError(
            f"no SQLite database at {database} ({source}): point RELAY_DATABASE_URL at "
            "the outbox database, or run `relay migrate` to create one there"
        )
