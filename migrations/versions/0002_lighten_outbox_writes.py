"""Lighten the writes behind every event: lease expiry column, partial index, fill factor.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Measured on PostgreSQL, more than half of the database's time in a drain went into index
entries: each claim wrote a new version of every claimed row into all four indexes, because
it changed ``next_attempt_at``, an indexed column. Three changes remove most of that:

* ``lease_expires_at`` (new, nullable, not indexed): the claim writes the lease's expiry here
  and leaves ``next_attempt_at`` alone, so it changes no indexed column;
* the table's fill factor drops to 50 on PostgreSQL, so that each page keeps room for a
  second version of its rows: the claim's update then stays on the row's page as a HOT
  update, which writes no index entries at all. The price is space: heap pages of rows
  written from now on are half full (existing pages are not rewritten). Correctness does not
  depend on it; ``ALTER TABLE relay_outbox SET (fillfactor = 100)`` trades the speed back
  for space;
* ``ix_relay_outbox_state_finished_at`` leaves pending rows out on PostgreSQL (no query of
  it reads them), one index entry less per ``track()``.

Rows leased by a relay older than this revision keep their expiry in ``next_attempt_at``,
which the claim and the gauges still honour, so the upgrade needs no data change. Old and new
relays must not run side by side (an old relay does not see a new relay's lease): a relay
refuses to start against a schema revision other than its own (``relay._migrations``), so
stop the old relays, run ``relay migrate``, then start the new ones.

Locking (online: the host's ``track()`` keeps committing while this runs; see
``migrations/_online.py``). Each statement runs in a transaction of its own:

* PostgreSQL: ``ADD COLUMN IF NOT EXISTS`` (nullable, no default: a catalog change, no table
  rewrite) needs ACCESS EXCLUSIVE for an instant; it is taken under ``lock_timeout``
  (200 ms) and retried, so while a transaction that tracked an event stays open the
  migration waits and writers wait at most 200 ms per attempt. ``COMMENT ON COLUMN``, the
  fill factor and ``ALTER INDEX ... RENAME`` take SHARE UPDATE EXCLUSIVE (no conflict with
  writers), also under ``lock_timeout``. The index is rebuilt beside the old one with
  ``CREATE INDEX CONCURRENTLY``, then the old one dropped with ``DROP INDEX CONCURRENTLY``
  (no lock writers wait for; the build reads the whole table, seconds per million rows, while
  writes go on). A failed build's INVALID index is dropped and rebuilt by the next run.
* MariaDB: ``ADD COLUMN ..., ALGORITHM=INSTANT`` (falling back to ``INPLACE, LOCK=NONE``,
  never a copy) under ``lock_wait_timeout`` = 1 s, retried.
* SQLite: a plain ``ADD COLUMN`` (instant, under the database's write lock).

Before this was made online, the index was dropped and rebuilt inside the migration's
transaction, blocking every write to the table while it was built (seconds per million
finished rows), and ``ADD COLUMN`` queued behind any open transaction that had tracked an
event, making every later one wait. Databases already at 0002 are unaffected by the change.
Downgrading follows the same rules (the lease move is one ``UPDATE`` of the leased rows).
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

if TYPE_CHECKING:  # mypy checks the source folder; installed, it is relay.migrations
    from migrations import _online
else:
    from relay.migrations import _online

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of relay._tables.UTCDateTime's column types at this revision.
UTC_DATETIME = (
    sa.DateTime(timezone=True)
    .with_variant(sa.DateTime(), "sqlite")
    .with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
)
FILLFACTOR = 50
COMMENT = "until when lease_token holds the row; NULL when no relay holds it"
INDEX = "ix_relay_outbox_state_finished_at"


def _lease_column() -> sa.Column[object]:
    return sa.Column("lease_expires_at", UTC_DATETIME, nullable=True, comment=COMMENT)


def upgrade() -> None:
    name = _online.dialect()
    if name == "sqlite":
        # Plain ALTER TABLE (SQLite has ADD and DROP COLUMN since 3.35): a batch operation
        # would copy the table.
        op.add_column("relay_outbox", _lease_column())
        return
    with op.get_context().autocommit_block():
        if name == "postgresql":
            _upgrade_postgresql()
        else:
            _upgrade_mariadb()


def _upgrade_postgresql() -> None:
    _online.locked(
        "ALTER TABLE relay_outbox ADD COLUMN IF NOT EXISTS lease_expires_at "
        "TIMESTAMP WITH TIME ZONE",
        what="adding relay_outbox.lease_expires_at",
    )
    _online.locked(
        f"COMMENT ON COLUMN relay_outbox.lease_expires_at IS '{COMMENT}'",
        what="commenting relay_outbox.lease_expires_at",
    )
    _online.replace_index_concurrently(
        INDEX,
        "relay_outbox",
        ["state", "finished_at"],
        where="state <> 'pending'",
        marker="<>",
    )
    _online.locked(
        f"ALTER TABLE relay_outbox SET (fillfactor = {FILLFACTOR})",
        what="setting relay_outbox's fill factor",
    )


def _upgrade_mariadb() -> None:
    if _online.column_exists("relay_outbox", "lease_expires_at"):
        return
    column = sa.Table("relay_outbox", sa.MetaData(), _lease_column()).c.lease_expires_at
    ddl = sa.schema.CreateColumn(column).compile(dialect=op.get_context().dialect)
    _online.mariadb_alter(
        "relay_outbox", f"ADD COLUMN {ddl}", what="adding relay_outbox.lease_expires_at"
    )


def downgrade() -> None:
    name = _online.dialect()
    if name == "sqlite":
        _move_leases_back()
        op.drop_column("relay_outbox", "lease_expires_at")
        return
    with op.get_context().autocommit_block():
        if name == "postgresql":
            _online.locked(
                "ALTER TABLE relay_outbox RESET (fillfactor)",
                what="resetting relay_outbox's fill factor",
            )
            _online.replace_index_concurrently(
                INDEX, "relay_outbox", ["state", "finished_at"], where=None, marker=""
            )
        if _online.offline() or _online.column_exists("relay_outbox", "lease_expires_at"):
            _move_leases_back()
            if name == "postgresql":
                _online.locked(
                    "ALTER TABLE relay_outbox DROP COLUMN IF EXISTS lease_expires_at",
                    what="dropping relay_outbox.lease_expires_at",
                )
            else:
                _online.mariadb_alter(
                    "relay_outbox",
                    "DROP COLUMN lease_expires_at",
                    what="dropping relay_outbox.lease_expires_at",
                )


def _move_leases_back() -> None:
    # Revision 0001's relays read a lease's expiry from next_attempt_at: move live leases
    # there, so that a downgraded relay does not claim rows another relay is sending.
    outbox = sa.table(
        "relay_outbox",
        sa.column("state", sa.String()),
        sa.column("lease_token", sa.String()),
        sa.column("next_attempt_at", UTC_DATETIME),
        sa.column("lease_expires_at", UTC_DATETIME),
    )
    op.execute(
        outbox.update()
        .where(
            outbox.c.state == "pending",
            outbox.c.lease_token.is_not(None),
            outbox.c.lease_expires_at > outbox.c.next_attempt_at,
        )
        .values(next_attempt_at=outbox.c.lease_expires_at)
    )
