"""Profile updates in the outbox: ``relay_outbox.kind``, ``relay_outbox.profile_key``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

* ``relay_outbox.kind`` (new, ``VARCHAR(8) NOT NULL DEFAULT 'event'``): ``event`` for rows
  ``track()`` wrote, ``user`` / ``group`` for ``relay.update_profile`` / ``relay.update_group``.
* ``relay_outbox.profile_key`` (new, ``VARCHAR(64)`` NULL): SHA-256 hex of the profile a
  profile update is for; NULL for events.
* ``ix_relay_outbox_profile_pending`` (new): ``(profile_key, id)``, partial on
  ``state = 'pending' AND profile_key IS NOT NULL`` on PostgreSQL and SQLite (events never
  enter it; full on MariaDB). The profile claim reads the head of each profile's queue from it.

Every existing row is an event, so the upgrade needs no data change. A relay of revision 0003
must not run beside one of 0004 (it would send profile updates to ``/import``); relays refuse a
revision other than their own.

Locking (online, following ``migrations/_online.py``):

* PostgreSQL: ``ADD COLUMN IF NOT EXISTS`` with a constant default is a catalog change (no
  rewrite), under ``lock_timeout`` and retried; the index is built ``CONCURRENTLY``. The
  downgrade drops both columns (and so the index) in one statement that checks for profile
  updates again under its ACCESS EXCLUSIVE lock, taken under ``lock_timeout`` and retried.
  MariaDB: the same second look and one ``ALTER`` under ``LOCK TABLES relay_outbox WRITE``
  (taken under ``lock_wait_timeout``, retried).
* MariaDB: ``ADD COLUMN ..., ALGORITHM=INSTANT``; ``ADD INDEX`` with ``ALGORITHM=INPLACE,
  LOCK=NONE``, each under ``lock_wait_timeout``, retried.
* SQLite: plain DDL. The downgrade takes the database's write lock, looks again for profile
  updates, and drops, in one transaction.

Each step checks the catalog first, so a run interrupted anywhere is completed by the next.

The downgrade refuses while ``relay_outbox`` holds a profile update in any state, naming how
many by state, and changes nothing: revision 0003 has no ``kind``, so its relays would take
every such row for an event and send ``$set`` or ``$delete`` to ``/import`` (the profile never
changes, the deletion is lost, and events that never happened are counted). Deliver, discard
and purge them first (the message says how), or stay at 0004.
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

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KIND_COMMENT = "event, user or group: what the row carries (migration 0004)"
KEY_COMMENT = "sha256 of the profile a user/group update is for; NULL for events"
INDEX = "ix_relay_outbox_profile_pending"
COLUMNS = ["profile_key", "id"]
PREDICATE = "state = 'pending' AND profile_key IS NOT NULL"
#: The SQLSTATE of the PostgreSQL downgrade's own refusal (a class no PostgreSQL error uses).
PROFILE_ROWS_SQLSTATE = "RL004"
#: The PostgreSQL downgrade, checked and done under one lock: the check before it runs in
#: another transaction, so a host transaction could write a profile update between the two;
#: here no write can come between the second look and the drop (the index goes with its
#: columns). PL/pgSQL plans the PERFORM only when it runs, after the column is known to exist.
PG_GUARDED_DROP = """DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
             AND table_name = 'relay_outbox' AND column_name = 'kind') THEN
    LOCK TABLE relay_outbox IN ACCESS EXCLUSIVE MODE;
    PERFORM 1 FROM relay_outbox WHERE kind <> 'event' LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'profile updates are stored' USING ERRCODE = 'RL004';
    END IF;
  END IF;
  ALTER TABLE relay_outbox DROP COLUMN IF EXISTS profile_key, DROP COLUMN IF EXISTS kind;
END $$"""


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "kind",
            sa.String(8),
            nullable=False,
            server_default="event",
            comment=KIND_COMMENT,
        ),
        sa.Column("profile_key", sa.String(64), nullable=True, comment=KEY_COMMENT),
    ]


def _has_index() -> bool:
    if _online.offline():
        return False
    return any(i["name"] == INDEX for i in sa.inspect(op.get_bind()).get_indexes("relay_outbox"))


def upgrade() -> None:
    name = _online.dialect()
    if name == "sqlite":
        for column in _columns():
            if not _online.column_exists("relay_outbox", column.name):
                op.add_column("relay_outbox", column)
        if not _has_index():
            op.create_index(INDEX, "relay_outbox", COLUMNS, sqlite_where=sa.text(PREDICATE))
        return
    with op.get_context().autocommit_block():
        if name == "postgresql":
            _online.locked(
                "ALTER TABLE relay_outbox ADD COLUMN IF NOT EXISTS kind VARCHAR(8) NOT NULL "
                "DEFAULT 'event'",
                what="adding relay_outbox.kind",
            )
            _online.locked(
                "ALTER TABLE relay_outbox ADD COLUMN IF NOT EXISTS profile_key VARCHAR(64)",
                what="adding relay_outbox.profile_key",
            )
            _online.locked(
                f"COMMENT ON COLUMN relay_outbox.kind IS '{KIND_COMMENT}'",
                what="commenting relay_outbox.kind",
            )
            _online.locked(
                f"COMMENT ON COLUMN relay_outbox.profile_key IS '{KEY_COMMENT}'",
                what="commenting relay_outbox.profile_key",
            )
            _online.create_index_concurrently(INDEX, "relay_outbox", COLUMNS, where=PREDICATE)
        else:
            for column in _columns():
                if not _online.column_exists("relay_outbox", column.name):
                    _online.mariadb_alter(
                        "relay_outbox",
                        f"ADD COLUMN {_mariadb_column_ddl(column)}",
                        what=f"adding relay_outbox.{column.name}",
                    )
            if not _has_index():
                _online.mariadb_alter(
                    "relay_outbox",
                    f"ADD INDEX {INDEX} ({', '.join(COLUMNS)})",
                    what=f"adding {INDEX}",
                )


@_online.refuses_downgrade(revision)
def _profile_updates_stored(conn: Connection) -> str | None:
    """The refusal while any profile update is stored (see the module), else ``None``."""
    if "kind" not in {c["name"] for c in sa.inspect(conn).get_columns("relay_outbox")}:
        return None  # an interrupted downgrade already dropped it
    rows = conn.execute(
        sa.text("SELECT state, COUNT(*) FROM relay_outbox WHERE kind <> 'event' GROUP BY state")
    )
    counts = {str(state): int(count) for state, count in rows}
    total = sum(counts.values())
    if not total:
        return None
    by_state = ", ".join(
        f"{counts[state]} {state}" for state in ("pending", "dead", "delivered") if state in counts
    )
    return (
        f"cannot downgrade below 0004: relay_outbox holds {total} profile update(s) "
        f"({by_state}) that revision 0003 would take for events and send to /import; "
        "let the relay deliver the pending ones, discard the dead ones (relay dead-letters "
        "discard) and purge the delivered ones (relay purge); nothing was changed"
    )


def downgrade() -> None:
    _online.refuse_downgrade(revision)
    name = _online.dialect()
    if name == "sqlite":
        if _online.offline():
            _drop_sqlite_columns()
            return
        # The second look and the drop in one write transaction: a profile update committed
        # between the first look and the drop would otherwise become an event under 0003.
        with _online.sqlite_write_locked("relay_outbox"):
            _refuse_again(op.get_bind())
            _drop_sqlite_columns()
        return
    with op.get_context().autocommit_block():
        if name == "postgresql":
            _drop_postgresql_columns()
        else:
            _drop_mariadb_columns()


def _drop_postgresql_columns() -> None:
    try:
        _online.locked(PG_GUARDED_DROP, what="dropping relay_outbox.kind and profile_key")
    except sa.exc.DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != PROFILE_ROWS_SQLSTATE:
            raise
        refusal = _profile_updates_stored(op.get_bind())
        raise _online.DowngradeRefusedError(
            refusal or "cannot downgrade below 0004: profile updates are stored"
        ) from None


def _drop_sqlite_columns() -> None:
    op.drop_index(INDEX, table_name="relay_outbox", if_exists=True)
    for column in ("profile_key", "kind"):
        if _online.offline() or _online.column_exists("relay_outbox", column):
            op.drop_column("relay_outbox", column)


def _refuse_again(conn: Connection) -> None:
    """Raise the refusal if profile updates are stored now (the second look, under a lock)."""
    refusal = _profile_updates_stored(conn)
    if refusal:
        raise _online.DowngradeRefusedError(refusal)


def _drop_mariadb_columns() -> None:
    """The index and both columns dropped in one ``ALTER TABLE``, under ``LOCK TABLES ...
    WRITE`` with the second look: once the lock is held no host transaction has an
    uncommitted write to the table and none can start one, so no profile update can come
    between the look and the drop. The ``ALTER`` is metadata only (INSTANT) where MariaDB can;
    writers wait for the lock no longer than that."""
    if _online.offline():
        _online.mariadb_alter(
            "relay_outbox",
            f"DROP INDEX {INDEX}, DROP COLUMN profile_key, DROP COLUMN kind",
            what="dropping relay_outbox.kind and profile_key",
        )
        return
    with _online.mariadb_table_locked("relay_outbox", what="dropping relay_outbox.kind"):
        _refuse_again(op.get_bind())
        clauses = [f"DROP INDEX {INDEX}"] if _has_index() else []
        clauses += [
            f"DROP COLUMN {column}"
            for column in ("profile_key", "kind")
            if _online.column_exists("relay_outbox", column)
        ]
        if clauses:
            _online.mariadb_alter_locked("relay_outbox", ", ".join(clauses))


def _mariadb_column_ddl(column: sa.Column[object]) -> str:
    bound = sa.Table("relay_outbox", sa.MetaData(), column).c[column.name]
    return str(sa.schema.CreateColumn(bound).compile(dialect=op.get_context().dialect))
