"""The dead letters of one reason found through an index: ``ix_relay_outbox_dead_reason``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

* ``ix_relay_outbox_dead_reason`` (new) on ``relay_outbox.last_error``: the Django admin's
  reason filter and ``relay dead-letters requeue|discard --reason`` look dead rows up by their
  exact reason. Without it, the one-reason page scanned the whole table (about 1 s with
  1,000,000 rows).

  - PostgreSQL: a hash index, partial on ``state = 'dead'``. It holds a 4-byte hash per dead
    row, so pending and delivered rows never enter it (``track()`` pays nothing), and no
    reason is too long for it: a B-tree entry over 2,704 bytes (a 1,000-character reason in a
    non-Latin script) would make the write that marks the row dead fail.
  - SQLite: a B-tree, partial on ``state = 'dead'``.
  - MariaDB/MySQL: InnoDB has neither partial nor hash indexes: a B-tree over the first 200
    characters of ``last_error`` (800 bytes in utf8mb4, under the 3,072-byte key limit), of
    every row. Inserts add one entry (NULL); a row's entry changes only when its reason does.

No row changes, so the downgrade (dropping the index) never refuses on its own account; it
checks the steps below it first, as every downgrade does.

Locking (online, following ``migrations/_online.py``):

* PostgreSQL: ``CREATE INDEX CONCURRENTLY`` (an INVALID index left by an interrupted build is
  dropped and built again); the downgrade ``DROP INDEX CONCURRENTLY``.
* MariaDB: ``ADD INDEX`` / ``DROP INDEX`` with ``ALGORITHM=INPLACE, LOCK=NONE`` (or INSTANT),
  under ``lock_wait_timeout``, retried.
* SQLite: plain DDL (the build holds the write lock while it runs).

Each step checks the catalog first, so a run interrupted anywhere is completed by the next.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import op

if TYPE_CHECKING:  # mypy checks the source folder; installed, it is relay.migrations
    from migrations import _online
else:
    from relay.migrations import _online

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_relay_outbox_dead_reason"
DEAD = "state = 'dead'"
#: Characters of ``last_error`` in the MariaDB/MySQL index (relay._tables.DEAD_REASON_INDEX_PREFIX).
MARIADB_PREFIX = 200


def _has_index() -> bool:
    if _online.offline():
        return False
    return any(i["name"] == INDEX for i in sa.inspect(op.get_bind()).get_indexes("relay_outbox"))


def upgrade() -> None:
    name = _online.dialect()
    if name == "sqlite":
        if not _has_index():
            op.create_index(INDEX, "relay_outbox", ["last_error"], sqlite_where=sa.text(DEAD))
        return
    with op.get_context().autocommit_block():
        if name == "postgresql":
            _online.create_index_concurrently(
                INDEX, "relay_outbox", ["last_error"], where=DEAD, using="hash"
            )
        elif not _has_index():
            _online.mariadb_alter(
                "relay_outbox",
                f"ADD INDEX {INDEX} (last_error({MARIADB_PREFIX}))",
                what=f"adding {INDEX}",
            )


def downgrade() -> None:
    # Nothing here to refuse, but a downgrade past this revision checks every step below it
    # before its first one changes anything (the refusals of 0006, 0004, ...).
    _online.refuse_downgrade(revision)
    name = _online.dialect()
    if name == "sqlite":
        op.drop_index(INDEX, table_name="relay_outbox", if_exists=True)
        return
    with op.get_context().autocommit_block():
        if name == "postgresql":
            _online.drop_index_concurrently(INDEX)
        elif _online.offline() or _has_index():
            _online.mariadb_alter("relay_outbox", f"DROP INDEX {INDEX}", what=f"dropping {INDEX}")
