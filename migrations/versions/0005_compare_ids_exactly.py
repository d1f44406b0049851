"""Ids compared byte for byte on MariaDB and MySQL: a binary collation for the id columns.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

MariaDB's and MySQL's default collations (``utf8mb4_general_ci`` ...) compare without case
and ignore trailing spaces; Mixpanel's ids are case-sensitive. Under them a caller's
``$insert_id`` ``ORD-7fQ2-AA`` after ``ord-7Fq2-aa`` was taken for a duplicate (the event was
lost), and ``relay forget --distinct-id alice`` erased the rows of ``Alice``, ``ALICE`` and
``"alice "`` as well. This revision gives ``relay_outbox.insert_id``, ``distinct_id`` and
``profile_key`` the binary collation without padding: ``utf8mb4_nopad_bin`` on MariaDB,
``utf8mb4_0900_bin`` on MySQL 8. PostgreSQL (deterministic collations) and SQLite
(``BINARY``) already compare bytes: nothing changes there.

The upgrade needs no data change: a stricter comparison cannot make two stored ids equal. The
downgrade can: ids that differ only in case or trailing spaces would collide in the unique
index of ``insert_id``. It refuses while such rows exist, naming how many, and changes nothing.

Locking (online, following ``migrations/_online.py``): each column is changed with ``ALTER
TABLE ... MODIFY COLUMN``, ``ALGORITHM=INSTANT`` where MariaDB can (``distinct_id``, not
indexed), else ``INPLACE, LOCK=NONE`` (``insert_id`` and ``profile_key``: their indexes are
rebuilt while writes go on; never a table copy), each under ``lock_wait_timeout``, retried.
Each column is checked first (``information_schema``), so an interrupted run is completed by
the next.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection

if TYPE_CHECKING:  # mypy checks the source folder; installed, it is relay.migrations
    from migrations import _online
else:
    from relay.migrations import _online

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MARIADB_COLLATION = "utf8mb4_nopad_bin"
MYSQL_COLLATION = "utf8mb4_0900_bin"
KEY_COMMENT = "sha256 of the profile a user/group update is for; NULL for events"


class _IdColumn(NamedTuple):
    name: str
    length: int
    nullable: bool
    comment: str | None


ID_COLUMNS = (
    _IdColumn("insert_id", 36, nullable=False, comment=None),
    _IdColumn("distinct_id", 255, nullable=False, comment=None),
    _IdColumn("profile_key", 64, nullable=True, comment=KEY_COMMENT),
)


def _collation() -> str:
    # A dialect learns whether the server is MariaDB on connecting; offline (--sql) only the
    # URL says it: write mariadb+pymysql:// to render MariaDB's collation.
    mariadb = getattr(op.get_context().dialect, "is_mariadb", False)
    return MARIADB_COLLATION if mariadb else MYSQL_COLLATION


def _column_collations() -> dict[str, str]:
    if _online.offline():
        return {}
    rows = op.get_bind().execute(
        sa.text(
            "SELECT column_name, collation_name FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name = 'relay_outbox'"
        )
    )
    return {str(name).lower(): str(collation) for name, collation in rows}


def _column_ddl(column: _IdColumn, collation: str | None) -> str:
    type_ = (
        mysql.VARCHAR(column.length)
        if collation is None
        else mysql.VARCHAR(column.length, charset="utf8mb4", collation=collation)
    )
    bound = sa.Table(
        "relay_outbox",
        sa.MetaData(),
        sa.Column(column.name, type_, nullable=column.nullable, comment=column.comment),
    ).c[column.name]
    return str(sa.schema.CreateColumn(bound).compile(dialect=op.get_context().dialect))


def upgrade() -> None:
    if _online.dialect() not in {"mysql", "mariadb"}:
        return
    collation = _collation()
    current = _column_collations()
    with op.get_context().autocommit_block():
        for column in ID_COLUMNS:
            if current.get(column.name) == collation:
                continue
            _online.mariadb_alter(
                "relay_outbox",
                f"MODIFY COLUMN {_column_ddl(column, collation)}",
                what=f"giving relay_outbox.{column.name} a binary collation",
            )


def downgrade() -> None:
    _online.refuse_downgrade(revision)
    if _online.dialect() not in {"mysql", "mariadb"}:
        return
    collation = _collation()
    current = _column_collations()
    with op.get_context().autocommit_block():
        for column in ID_COLUMNS:
            if current and current.get(column.name) != collation:
                continue  # already back at the table's default collation
            _online.mariadb_alter(
                "relay_outbox",
                f"MODIFY COLUMN {_column_ddl(column, None)}",
                what=f"giving relay_outbox.{column.name} the table's collation back",
            )


@_online.refuses_downgrade(revision)
def _insert_ids_colliding(conn: Connection) -> str | None:
    """The refusal while two ``insert_id`` differ only in case or trailing spaces, else
    ``None`` (see the module)."""
    if conn.dialect.name not in {"mysql", "mariadb"}:
        return None
    table_collation = str(
        conn.execute(
            sa.text(
                "SELECT table_collation FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name = 'relay_outbox'"
            )
        ).scalar_one()
    )
    if not table_collation.replace("_", "").isalnum():  # a name from the catalog, spliced below
        return f"cannot downgrade below 0005: unexpected table collation {table_collation!r}"
    colliding = conn.execute(
        sa.text(
            "SELECT COALESCE(SUM(n), 0) FROM (SELECT COUNT(*) AS n FROM relay_outbox "  # noqa: S608 - a collation name from the catalog, checked above
            f"GROUP BY insert_id COLLATE {table_collation} HAVING COUNT(*) > 1) AS d"
        )
    ).scalar_one()
    if not colliding:
        return None
    return (
        f"cannot downgrade below 0005: {colliding} rows have an $insert_id that differs from "
        "another's only in case or trailing spaces, and revision 0004 would take them for "
        "duplicates; purge them (relay purge); nothing was changed"
    )
