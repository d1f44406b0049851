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
which the claim and the gauges still honour, so the upgrade needs no data change. Stop the
old relays before starting new ones, though: an old relay does not see a new relay's lease.

The index is rebuilt inside the migration's transaction, which blocks writes to the table
while it is built (seconds per million finished rows).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of relay.models.UTCDateTime's column types at this revision.
UTC_DATETIME = (
    sa.DateTime(timezone=True)
    .with_variant(sa.DateTime(), "sqlite")
    .with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
)
FILLFACTOR = 50


def upgrade() -> None:
    # Plain ALTER TABLE everywhere (SQLite has ADD and DROP COLUMN since 3.35): a batch
    # operation would copy the table on SQLite.
    op.add_column(
        "relay_outbox",
        sa.Column(
            "lease_expires_at",
            UTC_DATETIME,
            nullable=True,
            comment="until when lease_token holds the row; NULL when no relay holds it",
        ),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_relay_outbox_state_finished_at", table_name="relay_outbox")
    op.create_index(
        "ix_relay_outbox_state_finished_at",
        "relay_outbox",
        ["state", "finished_at"],
        postgresql_where=sa.text("state <> 'pending'"),
    )
    op.execute(f"ALTER TABLE relay_outbox SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE relay_outbox RESET (fillfactor)")
        op.drop_index("ix_relay_outbox_state_finished_at", table_name="relay_outbox")
        op.create_index(
            "ix_relay_outbox_state_finished_at", "relay_outbox", ["state", "finished_at"]
        )
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
    op.drop_column("relay_outbox", "lease_expires_at")
