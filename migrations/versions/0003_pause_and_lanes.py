"""Pauses of delivery and a bulk lane for replays: ``relay_pause``, ``relay_outbox.lane``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

* ``relay_pause`` (new): one row per pause an operator set with ``relay pause``, for all
  delivery (scope ``*``) or one event name. Claims pass over the rows a pause covers; nothing
  else changes for them.
* ``relay_outbox.lane`` (new, ``SMALLINT NOT NULL DEFAULT 0``): 0 for rows ``track()`` wrote,
  1 for rows a replay or requeue made pending again. Claims serve the live lane first, so a
  replay of a million rows drains behind live traffic instead of in front of it.
* ``ix_relay_outbox_pending_due`` becomes ``(state, lane, next_attempt_at)`` (still partial on
  ``state = 'pending'`` on PostgreSQL and SQLite): each lane's due rows are one range of it.

Every existing row lands in the live lane, so the upgrade needs no data change; a relay of
revision 0002 must not run beside one of 0003 (relays refuse a revision other than their own).

Locking (online, following ``migrations/_online.py`` and revision 0002):

* PostgreSQL: ``CREATE TABLE relay_pause`` touches no existing table. ``ADD COLUMN IF NOT
  EXISTS lane SMALLINT NOT NULL DEFAULT 0`` is a catalog change since PostgreSQL 11 (the
  default is stored once, no table rewrite) and needs ACCESS EXCLUSIVE for an instant: taken
  under ``lock_timeout`` (200 ms) and retried. The index is rebuilt beside the old one with
  ``CREATE INDEX CONCURRENTLY``, the old one dropped ``CONCURRENTLY`` and the new one renamed
  (``replace_index_concurrently``): writes go on throughout.
* MariaDB: ``ADD COLUMN ..., ALGORITHM=INSTANT``; the index swap is one ``ALTER TABLE ... DROP
  INDEX, ADD INDEX`` with ``ALGORITHM=INPLACE, LOCK=NONE`` (writes go on; never a copy), each
  under ``lock_wait_timeout`` = 1 s, retried.
* SQLite: plain DDL (instant, but the index build holds the write lock for the length of the
  build: seconds per million pending rows).

Each step checks the catalog first, so a run interrupted anywhere is completed by the next.

The downgrade refuses while a pause is set (``relay_pause`` holds a row), naming how many, and
changes nothing: dropping the table would lift the pauses silently, and delivery an operator
stopped would resume. Lift them first (``relay resume``), or stay at 0003. Rows of the bulk
lane simply join the live one.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection

if TYPE_CHECKING:  # mypy checks the source folder; installed, it is relay.migrations
    from migrations import _online
else:
    from relay.migrations import _online

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of relay._tables.UTCDateTime's column types at this revision.
UTC_DATETIME = (
    sa.DateTime(timezone=True)
    .with_variant(sa.DateTime(), "sqlite")
    .with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
)
LANE_COMMENT = "0 live (track), 1 bulk (replay, requeue): claims serve live rows first"
SCOPE_COMMENT = "an event name, or * for all delivery"
INDEX = "ix_relay_outbox_pending_due"
OLD_COLUMNS = ["state", "next_attempt_at"]
NEW_COLUMNS = ["state", "lane", "next_attempt_at"]
PENDING = "state = 'pending'"


def _lane_column() -> sa.Column[object]:
    return sa.Column(
        "lane", sa.SmallInteger(), nullable=False, server_default=sa.text("0"), comment=LANE_COMMENT
    )


def _create_pause_table() -> None:
    if not _online.offline() and sa.inspect(op.get_bind()).has_table("relay_pause"):
        return
    op.create_table(
        "relay_pause",
        sa.Column("scope", sa.String(255), nullable=False, comment=SCOPE_COMMENT),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("paused_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_relay_pause")),
    )


def upgrade() -> None:
    name = _online.dialect()
    _create_pause_table()
    if name == "sqlite":
        if not _online.column_exists("relay_outbox", "lane"):
            op.add_column("relay_outbox", _lane_column())
        _online.sqlite_replace_index("relay_outbox", INDEX, NEW_COLUMNS, where=PENDING)
        return
    with op.get_context().autocommit_block():
        if name == "postgresql":
            _online.locked(
                "ALTER TABLE relay_outbox ADD COLUMN IF NOT EXISTS lane SMALLINT NOT NULL "
                "DEFAULT 0",
                what="adding relay_outbox.lane",
            )
            _online.locked(
                f"COMMENT ON COLUMN relay_outbox.lane IS '{LANE_COMMENT}'",
                what="commenting relay_outbox.lane",
            )
            _online.replace_index_concurrently(
                INDEX, "relay_outbox", NEW_COLUMNS, where=PENDING, marker="lane"
            )
        else:
            if not _online.column_exists("relay_outbox", "lane"):
                ddl = _mariadb_column_ddl()
                _online.mariadb_alter(
                    "relay_outbox", f"ADD COLUMN {ddl}", what="adding relay_outbox.lane"
                )
            _online.mariadb_replace_index("relay_outbox", INDEX, NEW_COLUMNS)


@_online.refuses_downgrade(revision)
def _pauses_set(conn: Connection) -> str | None:
    """The refusal while a pause is set (see the module), else ``None``."""
    if not sa.inspect(conn).has_table("relay_pause"):
        return None
    pauses = int(conn.execute(sa.text("SELECT COUNT(*) FROM relay_pause")).scalar_one())
    if not pauses:
        return None
    return (
        f"cannot downgrade below 0003: {pauses} pause(s) of delivery are set, and revision "
        "0002 has no pauses (delivery would resume unseen); lift them with relay resume; "
        "nothing was changed"
    )


def downgrade() -> None:
    _online.refuse_downgrade(revision)
    name = _online.dialect()
    if name == "sqlite":
        _online.sqlite_replace_index("relay_outbox", INDEX, OLD_COLUMNS, where=PENDING)
        if _online.offline() or _online.column_exists("relay_outbox", "lane"):
            op.drop_column("relay_outbox", "lane")
    else:
        with op.get_context().autocommit_block():
            if name == "postgresql":
                _online.replace_index_concurrently(
                    INDEX, "relay_outbox", OLD_COLUMNS, where=PENDING, marker="(state, next_"
                )
                _online.locked(
                    "ALTER TABLE relay_outbox DROP COLUMN IF EXISTS lane",
                    what="dropping relay_outbox.lane",
                )
            else:
                _online.mariadb_replace_index("relay_outbox", INDEX, OLD_COLUMNS)
                if _online.offline() or _online.column_exists("relay_outbox", "lane"):
                    _online.mariadb_alter(
                        "relay_outbox", "DROP COLUMN lane", what="dropping relay_outbox.lane"
                    )
    op.drop_table("relay_pause")


def _mariadb_column_ddl() -> str:
    column = sa.Table("relay_outbox", sa.MetaData(), _lane_column()).c.lane
    return str(sa.schema.CreateColumn(column).compile(dialect=op.get_context().dialect))
