"""Engines for the outbox database, with each dialect set up the way the relay relies on.

SQLite needs two fixes that SQLAlchemy documents for pysqlite: the driver's own transaction
handling is switched off so that SAVEPOINT works and so that the relay can ``BEGIN IMMEDIATE``
(taking the write lock up front instead of failing to upgrade a read lock mid-claim). WAL mode
lets the application write while a relay reads.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

SQLITE_BUSY_TIMEOUT_MS = 30_000
_SQLITE_BEGIN_OPTION = "relay_sqlite_begin"

#: What a hidden secret is shown as.
MASK = "***"
#: Rendered in place of MASK, then swapped for it: URL rendering would percent-encode ``***``.
_PLACEHOLDER = "RELAYREDACTEDSECRET"
#: Shown instead of a database URL that cannot be parsed (it may be anything, secrets included).
UNPARSEABLE_URL = "<unparseable database URL>"
#: Query parameters that carry a password for some driver (libpq, PyMySQL, mysqlclient, ...).
_PASSWORD_PARAMS = frozenset({"password", "passwd", "pwd", "sslpassword", "pass"})
#: ``password=...`` inside a libpq connection string (a ``dsn``/``options`` value, or a whole DSN):
#: a single-quoted value with backslash escapes, or a run of non-blank characters.
_LIBPQ_PASSWORD = re.compile(
    r"""(\b(?:password|passwd|pwd|sslpassword)\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)""",
    re.IGNORECASE,
)


def _mask_libpq(text: str, mask: str = MASK) -> str:
    return _LIBPQ_PASSWORD.sub(lambda m: m.group(1) + mask, text)


def redact_url(url: str | sa.URL) -> str:
    """``url`` as it may be shown to people: every password it carries replaced by ``***``.

    Covers the password of ``user:PW@``, query parameters that carry one (``?password=PW``,
    ``passwd``, ``pwd``, ``sslpassword``) and ``password=PW`` inside any query value (a libpq
    connection string in ``?dsn=`` or ``?options=``). A string SQLAlchemy cannot parse is shown
    as :data:`UNPARSEABLE_URL` (unless it is a libpq DSN, shown with its password masked), never
    as itself. Use it wherever a database URL is printed, logged or put in an error.
    """
    try:
        parsed = url if isinstance(url, sa.URL) else sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError, TypeError):
        text = str(url)
        if "://" not in text and "=" in text:  # a libpq key=value DSN
            return _mask_libpq(text)
        return UNPARSEABLE_URL
    if parsed.password is not None:
        parsed = parsed.set(password=_PLACEHOLDER)
    query: dict[str, str | tuple[str, ...]] = {}
    for key, value in parsed.query.items():
        values = (value,) if isinstance(value, str) else tuple(value)
        masked = tuple(
            _PLACEHOLDER if key.lower() in _PASSWORD_PARAMS else _mask_libpq(v, _PLACEHOLDER)
            for v in values
        )
        query[key] = masked[0] if isinstance(value, str) else masked
    parsed = parsed.set(query=query)
    return parsed.render_as_string(hide_password=False).replace(_PLACEHOLDER, MASK)


def url_secrets(url: str | sa.URL) -> frozenset[str]:
    """Every password ``url`` carries, in the spellings it may appear in elsewhere.

    The raw value, its percent-encoded forms and its libpq-quoted form, for scrubbing text a
    driver or library produced (an exception message that quotes a connection string). Empty
    for a URL without a password. A string that cannot be parsed counts as a secret whole.
    """
    try:
        parsed = url if isinstance(url, sa.URL) else sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError, TypeError):
        text = str(url)
        found = {m.group(2) for m in _LIBPQ_PASSWORD.finditer(text)}
        return _spellings(found | {text})
    found = set()
    if parsed.password:
        found.add(str(parsed.password))
    for key, value in parsed.query.items():
        for v in (value,) if isinstance(value, str) else value:
            if key.lower() in _PASSWORD_PARAMS and v:
                found.add(v)
            found.update(m.group(2) for m in _LIBPQ_PASSWORD.finditer(v))
    return _spellings(found)


def _spellings(values: set[str]) -> frozenset[str]:
    out: set[str] = set()
    for value in values:
        if not value:
            continue
        bare = value[1:-1] if len(value) > 1 and value[0] == value[-1] == "'" else value
        for text in (value, bare):
            out.update(
                {
                    text,
                    urllib.parse.quote(text, safe=""),
                    urllib.parse.quote_plus(text, safe=""),
                    text.replace("\\", "\\\\").replace("'", "\\'"),
                }
            )
    return frozenset(v for v in out if v)


#: Secrets shorter than this are masked only where they stand alone (not inside a word): a
#: one-letter test password masked in every word would make every line unreadable ("i***").
SHORT_SECRET_LENGTH = 8


def scrub(text: str, secrets: frozenset[str]) -> str:
    """``text`` with every occurrence of each of ``secrets`` replaced by ``***``.

    Longest first, so a secret that contains another is masked whole. A secret shorter than
    :data:`SHORT_SECRET_LENGTH` is masked where no letter or digit touches it (``u:x@host``,
    ``token=x``), never inside an ordinary word.
    """
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= SHORT_SECRET_LENGTH:
            text = text.replace(secret, MASK)
        else:
            alone = re.compile(rf"(?<![^\W_]){re.escape(secret)}(?![^\W_])")
            text = alone.sub(MASK, text)
    return text


def _json_serializer(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` set up for relay (and fine for the host application too).

    Extra keyword arguments go to :func:`sqlalchemy.create_engine`.
    """
    kwargs.setdefault("json_serializer", _json_serializer)
    kwargs.setdefault("json_deserializer", orjson.loads)
    kwargs.setdefault("pool_pre_ping", True)
    if sa.make_url(url).get_dialect().driver == "psycopg":
        # Never prepare statements on the server: behind a transaction-pooling PgBouncer the
        # next transaction may run on another server connection, where psycopg's prepared
        # statement is missing (or its name taken: DuplicatePreparedStatement).
        connect_args = dict(kwargs.get("connect_args") or {})
        connect_args.setdefault("prepare_threshold", None)
        kwargs["connect_args"] = connect_args
    engine = sa.create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        configure_sqlite(engine)
    return engine


def configure_sqlite(engine: Engine) -> None:
    """Apply SQLAlchemy's pysqlite recipe: explicit BEGIN, working SAVEPOINT, WAL, busy timeout.

    A host application on SQLite that passes its own engine's sessions to ``track()`` should
    call this on that engine (``relay._database.create_engine`` does it already).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver must not BEGIN on its own
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if engine.url.database not in (None, "", ":memory:"):
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get(_SQLITE_BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def immediate(conn: sa.Connection) -> sa.Connection:
    """Mark ``conn`` so that its next transaction on SQLite takes the write lock at BEGIN."""
    return conn.execution_options(**{_SQLITE_BEGIN_OPTION: "IMMEDIATE"})
