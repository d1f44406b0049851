"""Create the outbox and the audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

``relay_outbox`` holds one row per tracked event until Mixpanel accepts it (and for the
retention window after); ``relay_audit`` records operator actions. The claim index is partial
(pending rows only) where the database supports it, so millions of delivered rows stay out of
the claim's way.

Locking: none that a host's work could wait for. Both tables are new, created with their
indexes in one transaction; until it commits no other session can see them, so nothing queues
behind it (the host's ``track()`` cannot write before the tables exist anyway). Same on
PostgreSQL, MariaDB (whose DDL commits each statement) and SQLite.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types of relay._tables at this revision.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_DATETIME = (
    sa.DateTime(timezone=True)
    .with_variant(sa.DateTime(), "sqlite")
    .with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
)


def upgrade() -> None:
    op.create_table(
        "relay_outbox",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("insert_id", sa.String(36), nullable=False),
        sa.Column("event", sa.String(255), nullable=False),
        sa.Column("distinct_id", sa.String(255), nullable=False),
        sa.Column(
            "time_ms", sa.BigInteger(), nullable=False, comment="event time, ms since the epoch"
        ),
        sa.Column("properties", JSON_DOC, nullable=False),
        sa.Column("state", sa.String(16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", UTC_DATETIME, nullable=False),
        sa.Column("lease_token", sa.String(32), nullable=True),
        sa.Column("last_error", sa.String(1000), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True, comment="when delivered or dead"),
        sa.CheckConstraint(
            "state IN ('pending', 'delivered', 'dead')", name=op.f("ck_relay_outbox_state")
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_relay_outbox_attempts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relay_outbox")),
        sa.UniqueConstraint("insert_id", name=op.f("uq_relay_outbox_insert_id")),
    )
    op.create_index(
        "ix_relay_outbox_pending_due",
        "relay_outbox",
        ["state", "next_attempt_at"],
        postgresql_where=sa.text("state = 'pending'"),
        sqlite_where=sa.text("state = 'pending'"),
    )
    op.create_index("ix_relay_outbox_state_finished_at", "relay_outbox", ["state", "finished_at"])
    op.create_table(
        "relay_audit",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("filter", sa.JSON(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relay_audit")),
    )
    op.create_index("ix_relay_audit_at", "relay_audit", ["at"])


def downgrade() -> None:
    op.drop_index("ix_relay_audit_at", table_name="relay_audit")
    op.drop_table("relay_audit")
    op.drop_index("ix_relay_outbox_state_finished_at", table_name="relay_outbox")
    op.drop_index("ix_relay_outbox_pending_due", table_name="relay_outbox")
    op.drop_table("relay_outbox")
