"""The outbox, audit and pause tables, as SQLAlchemy Core metadata with a naming convention.

``relay_outbox`` holds one row per tracked event; ``relay_audit`` records every operator action;
``relay_pause`` holds the pauses of delivery an operator set (``relay pause``).
Alembic revisions in ``migrations/`` must equal these definitions (``alembic check``).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: Longest ``$insert_id`` Mixpanel accepts (36 bytes of ``[A-Za-z0-9-]``).
INSERT_ID_MAX_LENGTH = 36
EVENT_NAME_MAX_LENGTH = 255
DISTINCT_ID_MAX_LENGTH = 255
LEASE_TOKEN_LENGTH = 32
LAST_ERROR_MAX_LENGTH = 1000
#: Characters of ``last_error`` in the MariaDB/MySQL index on it (4 bytes each in utf8mb4).
DEAD_REASON_INDEX_PREFIX = 200
#: Length of ``profile_key``: a SHA-256 hex digest of the profile's identity.
PROFILE_KEY_LENGTH = 64
#: Longest destination name (``relay_outbox.destination``, migration 0006).
DESTINATION_NAME_MAX_LENGTH = 64
#: The destination of every row when only ``RELAY_MIXPANEL_*`` is configured: one Mixpanel project.
DEFAULT_DESTINATION = "default"
#: What a destination name may be: lower case, a letter first, at most 64 characters.
DESTINATION_NAME_PATTERN = r"[a-z][a-z0-9_-]{0,63}"
#: Percent of each PostgreSQL heap page that inserts fill; the rest is kept for the claim.
OUTBOX_FILLFACTOR = 50


class OutboxState(enum.StrEnum):
    """Life cycle of a row: pending until Mixpanel accepts it (delivered) or refuses it (dead)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class Lane(enum.IntEnum):
    """Which queue a pending row waits in: the claim serves ``LIVE`` rows first.

    ``track()`` writes live rows; a replay or requeue moves rows to ``BULK``, so that a large
    replay drains behind live traffic instead of in front of it (see
    :func:`relay._store.lanes.claim_candidates`).
    """

    LIVE = 0
    BULK = 1


class RowKind(enum.StrEnum):
    """What an outbox row carries: an event (``/import``), a user or a group profile update.

    Profile updates (``relay.update_profile``, ``relay.update_group``; migration 0004) share
    the outbox with events, so dead letters, requeue, replay, stats, retention and the audit
    treat them alike (``relay export`` writes ``/import`` events only and leaves them out).
    Their ``event`` column holds the operation (``$set`` ...), ``distinct_id`` the user's
    distinct_id or the group's id, and ``properties`` the update as Mixpanel takes it, without
    ``$token`` and ``$ip`` (added at send time).
    """

    EVENT = "event"
    USER = "user"
    GROUP = "group"


#: The ``relay_pause.scope`` of a pause of all delivery (event names never contain ``*``).
PAUSE_ALL = "*"
#: The ``relay_pause.scope`` of Mixpanel's rate-limit throttle shared by every relay of the
#: database (see :mod:`relay._store.throttle`); never an operator's pause.
PAUSE_THROTTLE = "*throttle"
#: Prefix of the ``relay_pause.scope`` of a pause of one destination (``"@eu"``): event names
#: never contain ``@``, so such a scope is never an event's.
PAUSE_DESTINATION_PREFIX = "@"


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every dialect.

    PostgreSQL stores ``timestamptz``; SQLite and MySQL have no zone, so values are stored as
    naive UTC (microsecond precision on MySQL) and come back aware. Naive input is refused:
    a naive local time silently stored as UTC would shift every schedule by hours.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=dialect.name == "postgresql"))

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("relay stores only timezone-aware datetimes")
        value = value.astimezone(dt.UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


#: The binary, no-pad collations relay's id columns take on MariaDB and MySQL (migration 0005).
MARIADB_ID_COLLATION = "utf8mb4_nopad_bin"
MYSQL_ID_COLLATION = "utf8mb4_0900_bin"


def id_collation(dialect: Dialect) -> str:
    """The collation that compares ids byte for byte on this MariaDB or MySQL server."""
    return MARIADB_ID_COLLATION if getattr(dialect, "is_mariadb", False) else MYSQL_ID_COLLATION


class IdString(TypeDecorator[str]):
    """A string compared byte for byte on every database: ``alice``, ``Alice``, ``"alice "`` differ.

    PostgreSQL's deterministic collations and SQLite's ``BINARY`` already compare this way;
    MariaDB's and MySQL's default collations ignore case and trailing spaces, so there the
    column takes a binary collation without padding (``utf8mb4_nopad_bin`` on MariaDB,
    ``utf8mb4_0900_bin`` on MySQL 8). Mixpanel's ids are case-sensitive: compared without case,
    ``$insert_id`` ``ORD-7fQ2-AA`` after ``ord-7Fq2-aa`` was taken for a duplicate and lost,
    and erasing ``alice`` erased ``Alice`` too.
    """

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(
                mysql.VARCHAR(self.length, charset="utf8mb4", collation=id_collation(dialect))
            )
        return dialect.type_descriptor(String(self.length))


# BIGINT ids everywhere except SQLite, where only INTEGER PRIMARY KEY is the rowid alias.
_BigId = BigInteger().with_variant(Integer(), "sqlite")
_Json = JSON().with_variant(postgresql.JSONB(), "postgresql")

outbox = Table(
    "relay_outbox",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("insert_id", IdString(INSERT_ID_MAX_LENGTH), nullable=False, unique=True),
    Column("event", String(EVENT_NAME_MAX_LENGTH), nullable=False),
    Column("distinct_id", IdString(DISTINCT_ID_MAX_LENGTH), nullable=False),
    Column("time_ms", BigInteger(), nullable=False, comment="event time, ms since the epoch"),
    Column("properties", _Json, nullable=False),
    Column("state", String(16), nullable=False, server_default=OutboxState.PENDING.value),
    Column("attempts", Integer(), nullable=False, server_default=text("0")),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("lease_token", String(LEASE_TOKEN_LENGTH), nullable=True),
    # Written by the claim instead of next_attempt_at so that the claim changes no indexed
    # column: PostgreSQL can then update the row in place (a HOT update, no index entries).
    Column(
        "lease_expires_at",
        UTCDateTime(),
        nullable=True,
        comment="until when lease_token holds the row; NULL when no relay holds it",
    ),
    Column("last_error", String(LAST_ERROR_MAX_LENGTH), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True, comment="when delivered or dead"),
    Column(
        "lane",
        SmallInteger(),
        nullable=False,
        server_default=text("0"),
        comment="0 live (track), 1 bulk (replay, requeue): claims serve live rows first",
    ),
    Column(
        "kind",
        String(8),
        nullable=False,
        server_default=RowKind.EVENT.value,
        comment="event, user or group: what the row carries (migration 0004)",
    ),
    Column(
        "profile_key",
        IdString(PROFILE_KEY_LENGTH),
        nullable=True,
        comment="sha256 of the profile a user/group update is for; NULL for events",
    ),
    Column(
        "destination",
        String(DESTINATION_NAME_MAX_LENGTH),
        nullable=False,
        server_default=DEFAULT_DESTINATION,
        comment="the Mixpanel project (a configured destination) the row goes to (migration 0006)",
    ),
    CheckConstraint("state IN ('pending', 'delivered', 'dead')", name="state"),
    CheckConstraint("attempts >= 0", name="attempts"),
    # The claim reads only due pending rows, lane by lane. Partial on PostgreSQL and SQLite, so
    # millions of delivered rows never enter it; MySQL/MariaDB has no partial indexes and gets
    # the full composite, whose leading ``state`` still confines the scan to pending rows.
    # ``lane`` before ``next_attempt_at``: the live lane's due rows are one range of it, never
    # behind a million replayed ones (migration 0003). ``destination`` before ``lane``: each
    # destination is claimed on its own (a paused or throttled project never stands in front of
    # another's rows), and its due rows are one range too (migration 0006).
    Index(
        "ix_relay_outbox_pending_due",
        "state",
        "destination",
        "lane",
        "next_attempt_at",
        postgresql_where=text("state = 'pending'"),
        sqlite_where=text("state = 'pending'"),
    ),
    # Retention, dead-letter listings and "delivered in the last hour" read by (state, finished_at).
    # None of them reads pending rows, so PostgreSQL leaves them out: one index entry less for
    # every insert. (SQLite cannot tell that state = 'dead' implies the predicate, so it keeps
    # the full index.)
    Index(
        "ix_relay_outbox_state_finished_at",
        "state",
        "finished_at",
        postgresql_where=text("state <> 'pending'"),
    ),
    # The profile claim reads the head of each profile's pending queue (the lowest pending id
    # per profile_key): partial on PostgreSQL and SQLite, so events never enter it.
    Index(
        "ix_relay_outbox_profile_pending",
        "profile_key",
        "id",
        postgresql_where=text("state = 'pending' AND profile_key IS NOT NULL"),
        sqlite_where=text("state = 'pending' AND profile_key IS NOT NULL"),
    ),
    # The dead letters of one reason (the admin's reason filter, ``relay dead-letters requeue
    # --reason``): an equality lookup on ``last_error`` among dead rows (migration 0007).
    # PostgreSQL: a hash index, partial on dead rows: it stores a 4-byte hash per dead row, so
    # no reason is too long for it (a B-tree entry over 2,704 bytes would fail the write that
    # marks a row dead) and pending and delivered rows never enter it. SQLite: partial too.
    # MariaDB/MySQL: no partial or hash indexes on InnoDB; a B-tree over the first 200
    # characters (800 bytes; the key limit is 3,072), of every row (NULL for most).
    Index(
        "ix_relay_outbox_dead_reason",
        "last_error",
        postgresql_using="hash",
        postgresql_where=text("state = 'dead'"),
        sqlite_where=text("state = 'dead'"),
        mysql_length={"last_error": DEAD_REASON_INDEX_PREFIX},
    ),
    # Room on every page for a second version of each row, so that the claim's in-place (HOT)
    # update finds space on the row's own page; see migration 0002.
    postgresql_with={"fillfactor": OUTBOX_FILLFACTOR},
)

audit = Table(
    "relay_audit",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(32), nullable=False),
    Column("filter", JSON(), nullable=False),
    Column("count", Integer(), nullable=False),
    Column("detail", Text(), nullable=True),
    Index("ix_relay_audit_at", "at"),
)

#: Longest reason an operator may give for a pause.
PAUSE_REASON_MAX_LENGTH = 500

pause = Table(
    "relay_pause",
    metadata,
    Column(
        "scope",
        String(EVENT_NAME_MAX_LENGTH),
        primary_key=True,
        comment="an event name, or * for all delivery",
    ),
    Column("reason", String(PAUSE_REASON_MAX_LENGTH), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("paused_at", UTCDateTime(), nullable=False),
)


class OutboxEvent(NamedTuple):
    """One claimed outbox row, as the Mixpanel client needs it (immutable).

    ``properties_json`` is the stored JSON object text without ``time``, ``distinct_id`` and
    ``$insert_id``; the client splices those three in so the stored bytes are never re-encoded.
    A named tuple rather than a frozen dataclass: a claim builds 2000 of them, and a frozen
    dataclass's ``__init__`` (one ``object.__setattr__`` per field) cost a noticeable share of
    the relay's CPU time per event (bench/drain_throughput.py; figures in BENCHMARKS.md).
    """

    id: int
    insert_id: str
    event: str
    distinct_id: str
    time_ms: int
    properties_json: str
    attempts: int


class ProfileUpdate(NamedTuple):
    """One claimed profile update row: its kind and the stored update object's JSON text."""

    id: int
    kind: str
    update_json: str
    attempts: int
