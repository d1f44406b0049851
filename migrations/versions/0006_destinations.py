"""Data residency: each outbox row names its destination, ``relay_outbox.destination``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

* ``relay_outbox.destination`` (new, ``VARCHAR(64) NOT NULL DEFAULT 'default'``): the
  configured Mixpanel project (a *destination*: its region, project id and credentials) the row
  goes to. ``track()`` writes the destination its router chose; without destinations
  configured every row goes to ``default``, today's single project.
* ``ix_relay_outbox_pending_due`` becomes ``(state, destination, lane, next_attempt_at)``
  (still partial on ``state = 'pending'`` on PostgreSQL and SQLite): each destination's due
  rows, lane by lane, are one range of it, so a claim for the US project never walks the EU
  project's paused or throttled backlog.

Every existing row goes to ``default``, so the upgrade needs no data change; a relay of
revision 0005 must not run beside one of 0006 (relays refuse a revision other than their own).

Locking (online, following ``migrations/_online.py`` and revision 0003):

* PostgreSQL: ``ADD COLUMN IF NOT EXISTS ... NOT NULL DEFAULT 'default'`` is a catalog change
  since PostgreSQL 11 (no table rewrite), under ``lock_timeout`` and retried; the index is
  rebuilt beside the old one ``CONCURRENTLY`` and swapped (``replace_index_concurrently``).
* MariaDB: ``ADD COLUMN ..., ALGORITHM=INSTANT``; the index swap is one ``ALTER TABLE ... DROP
  INDEX, ADD INDEX`` with ``ALGORITHM=INPLACE, LOCK=NONE``, under ``lock_wait_timeout``, retried.
* SQLite: plain DDL (the index build holds the write lock while it runs).

Each step checks the catalog first, so a run interrupted anywhere is completed by the next.

The downgrade refuses while any row names a destination other than ``default``, naming how
many, and changes nothing: revision 0005 has one project, and would send those rows (or replay
them) to it, which is another region's project. Purge them, or stay at 0006.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

if TYPE_CHECKING:  # mypy checks the source folder; installed, it is relay.migrations
    from migrations import _online
else:
    from relay.migrations import _online

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DESTINATION_COMMENT = (
    "the Mixpanel project (a configured destination) the row goes to (migration 0006)"
)
INDEX = "ix_relay_outbox_pending_due"
OLD_COLUMNS = ["state", "lane", "next_attempt_at"]
NEW_COLUMNS = ["state", "destination", "lane", "next_attempt_at"]
PENDING = "state = 'pending'"


def _destination_column() -> sa.Column[object]:
    return sa.Column(
        "destination",
        sa.String(64),
        nullable=False,
        server_default="default",
        comment=DESTINATION_COMMENT,
    )


def upgrade() -> None:
    name = _online.dialect()
    if name == "sqlite":
        if not _online.column_exists("relay_outbox", "destination"):
            op.add_column("relay_outbox", _destination_column())
        _online.sqlite_replace_index("relay_outbox", INDEX, NEW_COLUMNS, where=PENDING)
        return
    with op.get_context().autocommit_block():
        if name == "postgresql":
            _online.locked(
                "ALTER TABLE relay_outbox ADD COLUMN IF NOT EXISTS destination VARCHAR(64) "
                "NOT NULL DEFAULT 'default'",
                what="adding relay_outbox.destination",
            )
            _online.locked(
                f"COMMENT ON COLUMN relay_outbox.destination IS '{DESTINATION_COMMENT}'",
                what="commenting relay_outbox.destination",
            )
            _online.replace_index_concurrently(
                INDEX, "relay_outbox", NEW_COLUMNS, where=PENDING, marker="destination"
            )
        else:
            if not _online.column_exists("relay_outbox", "destination"):
                _online.mariadb_alter(
                    "relay_outbox",
                    f"ADD COLUMN {_mariadb_column_ddl()}",
                    what="adding relay_outbox.destination",
                )
            _online.mariadb_replace_index("relay_outbox", INDEX, NEW_COLUMNS)


@_online.refuses_downgrade(revision)
def _rows_elsewhere(conn: Connection) -> str | None:
    """The refusal while a row names a destination other than ``default`` (see the module)."""
    columns = {c["name"] for c in sa.inspect(conn).get_columns("relay_outbox")}
    if "destination" not in columns:
        return None
    elsewhere = int(
        conn.execute(
            sa.text("SELECT COUNT(*) FROM relay_outbox WHERE destination <> 'default'")
        ).scalar_one()
    )
    if not elsewhere:
        return None
    return (
        f"cannot downgrade below 0006: {elsewhere} rows are bound for a destination other than "
        "'default', and revision 0005 would send them to the default project (another "
        "region's); purge them (relay purge) or stay at 0006; nothing was changed"
    )


def downgrade() -> None:
    _online.refuse_downgrade(revision)
    name = _online.dialect()
    if name == "sqlite":
        _online.sqlite_replace_index("relay_outbox", INDEX, OLD_COLUMNS, where=PENDING)
        if _online.offline() or _online.column_exists("relay_outbox", "destination"):
            op.drop_column("relay_outbox", "destination")
        return
    with op.get_context().autocommit_block():
        if name == "postgresql":
            _online.replace_index_concurrently(
                INDEX, "relay_outbox", OLD_COLUMNS, where=PENDING, marker="(state, lane"
            )
            _online.locked(
                "ALTER TABLE relay_outbox DROP COLUMN IF EXISTS destination",
                what="dropping relay_outbox.destination",
            )
        else:
            _online.mariadb_replace_index("relay_outbox", INDEX, OLD_COLUMNS)
            if _online.offline() or _online.column_exists("relay_outbox", "destination"):
                _online.mariadb_alter(
                    "relay_outbox",
                    "DROP COLUMN destination",
                    what="dropping relay_outbox.destination",
                )


def _mariadb_column_ddl() -> str:
    column = sa.Table("relay_outbox", sa.MetaData(), _destination_column()).c.destination
    return str(sa.schema.CreateColumn(column).compile(dialect=op.get_context().dialect))
