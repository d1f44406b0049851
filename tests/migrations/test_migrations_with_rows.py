"""Every revision's upgrade and downgrade on tables holding every kind of row, on every database.

A migration must never lose a row or change what it means: events pending, leased, in the bulk
lane, delivered and dead, profile updates, audit entries and pauses come through each step
unchanged, and a downgrade whose older schema cannot hold a row refuses in one line naming how
many and what to do, leaving the tables at their revision.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from migration_rig import RELAY_EXECUTABLE, drop_relay_tables, revision, wait_until
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from relay import _migrations
from relay._database import create_engine
from relay._errors import RelayError
from relay._tables import audit, outbox, pause

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
#: The source tree, where alembic.ini is.
REPOSITORY = Path(__file__).resolve().parents[2]
#: ``(older, newer)``: each revision and the one before it.
STEPS = [
    ("0001", "0002"),
    ("0002", "0003"),
    ("0003", "0004"),
    ("0004", "0005"),
    ("0005", "0006"),
    ("0006", "0007"),
]
#: Columns each revision added: absent below it.
ADDED = {
    "0002": {"lease_expires_at"},
    "0003": {"lane"},
    "0004": {"kind", "profile_key"},
    "0006": {"destination"},
}


@pytest.fixture
def bare(db_url: str) -> Iterator[Engine]:
    """Each database with none of relay's tables or its version table."""
    engine = create_engine(db_url)
    drop_relay_tables(engine)
    yield engine
    drop_relay_tables(engine)
    engine.dispose()


def _columns(engine: Engine, table: str) -> list[str]:
    return [str(c["name"]) for c in sa.inspect(engine).get_columns(table)]


def _row(n: int, state: str, **extra: Any) -> dict[str, Any]:
    finished = T0 + dt.timedelta(minutes=n) if state != "pending" else None
    return {
        "insert_id": f"row-{n}-{uuid.uuid4().hex[:8]}",
        "event": "svc.surveys.survey_delivered",
        "distinct_id": f"person-{n}",
        "time_ms": 1_796_000_000_000 + n,
        "properties": {"organization_id": "org-1", "n": n},
        "state": state,
        "attempts": 0 if state == "pending" else 3,
        "next_attempt_at": T0,
        "lease_token": None,
        "last_error": "HTTP 400: refused" if state == "dead" else None,
        "created_at": T0,
        "updated_at": T0,
        "finished_at": finished,
    } | extra


def _seed(engine: Engine, *, profiles: bool = False, pauses: bool = False) -> None:
    """Rows of every kind the tables' revision can hold (profile updates, pauses on demand)."""
    present = set(_columns(engine, "relay_outbox"))
    rows = [_row(1, "pending"), _row(2, "delivered"), _row(3, "dead")]
    if "lease_expires_at" in present:
        rows.append(
            _row(4, "pending", lease_token="a" * 32, lease_expires_at=T0 + dt.timedelta(hours=1))
        )
    if "lane" in present:
        rows.append(_row(5, "pending", lane=1))
    if profiles:
        for n, (kind, state) in enumerate(
            [("user", "pending"), ("user", "delivered"), ("user", "dead"), ("group", "pending")],
            start=6,
        ):
            rows.append(_row(n, state, kind=kind, event="$set", profile_key=f"{n:064x}", time_ms=0))
    table = sa.table("relay_outbox", *(sa.column(c, outbox.c[c].type) for c in present - {"id"}))
    with engine.begin() as conn:
        for row in rows:
            conn.execute(table.insert().values({k: v for k, v in row.items() if k in present}))
        conn.execute(
            sa.insert(audit).values(
                at=T0,
                actor="ops",
                action="replay",
                filter={"distinct_ids": ["person-1"]},
                count=1,
                detail="replayed 1 row",
            )
        )
        if pauses:
            conn.execute(
                sa.insert(pause).values(scope="*", reason="incident", actor="ops", paused_at=T0)
            )


def _snapshot(engine: Engine, table: str, columns: set[str]) -> list[dict[str, Any]]:
    source = {"relay_outbox": outbox, "relay_audit": audit, "relay_pause": pause}[table]
    selected = [source.c[c] for c in sorted(columns)]
    with engine.connect() as conn:
        order = source.primary_key.columns.values()
        return [dict(r._mapping) for r in conn.execute(sa.select(*selected).order_by(*order))]


def _everything(engine: Engine, columns: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Every row of the outbox (``columns`` of it) and the audit; pauses where any are set."""
    tables = set(sa.inspect(engine).get_table_names())
    found = {
        "relay_outbox": _snapshot(engine, "relay_outbox", columns),
        "relay_audit": _snapshot(engine, "relay_audit", set(audit.c.keys())),
    }
    if "relay_pause" in tables:
        pauses = _snapshot(engine, "relay_pause", set(pause.c.keys()))
        if pauses:
            found["relay_pause"] = pauses
    return found


@pytest.mark.parametrize(("older", "newer"), STEPS, ids=[f"{a}-{b}" for a, b in STEPS])
def test_upgrade_keeps_every_row_as_it_was(bare: Engine, older: str, newer: str) -> None:
    """Upgrading one revision leaves every row of every kind as it was; new columns hold
    their defaults (live lane, kind event)."""
    _migrations.upgrade(bare, older)
    _seed(bare, profiles=older >= "0004", pauses=older >= "0003")
    old_columns = set(_columns(bare, "relay_outbox"))
    before = _everything(bare, old_columns)

    _migrations.upgrade(bare, newer)

    assert revision(bare) == newer
    assert _everything(bare, old_columns) == before
    added = ADDED.get(newer, set())
    if added:
        values = _snapshot(bare, "relay_outbox", added)
        defaults = {
            "lease_expires_at": None,
            "lane": 0,
            "kind": "event",
            "profile_key": None,
            "destination": "default",
        }
        assert values == [{c: defaults[c] for c in added}] * len(values)


@pytest.mark.parametrize(("older", "newer"), STEPS, ids=[f"{a}-{b}" for a, b in STEPS])
def test_downgrade_keeps_every_row_the_older_schema_holds(
    bare: Engine, older: str, newer: str
) -> None:
    """Downgrading one revision keeps every row the older schema can hold, unchanged but for
    the columns it drops (a live lease moves back to next_attempt_at below 0002)."""
    _migrations.upgrade(bare, newer)
    _seed(bare, profiles=older >= "0004", pauses=older >= "0003")
    kept = set(_columns(bare, "relay_outbox")) - ADDED.get(newer, set())
    before = _everything(bare, kept)
    leases = _snapshot(bare, "relay_outbox", {"id", "lease_token", "lease_expires_at"})

    _migrations.downgrade(bare, older)

    assert revision(bare) == older
    after = _everything(bare, kept)
    if newer == "0002":  # revision 0001 reads a lease's expiry from next_attempt_at
        expiry = {r["id"]: r["lease_expires_at"] for r in leases if r["lease_token"]}
        assert expiry
        for row in before["relay_outbox"]:
            row["next_attempt_at"] = expiry.get(row["id"], row["next_attempt_at"])
    assert after == before


def test_downgrade_below_0006_refuses_while_rows_go_to_another_destination(bare: Engine) -> None:
    """Revision 0005 has one Mixpanel project: a row bound for another destination would be
    sent (or replayed) to it, another region's project. The downgrade refuses, naming how many,
    and changes nothing; once those rows are gone it goes ahead."""
    _migrations.upgrade(bare, "0006")
    _seed(bare, profiles=True, pauses=False)
    with bare.begin() as conn:
        conn.execute(
            sa.update(outbox).where(outbox.c.state != "delivered").values(destination="eu")
        )
    columns = set(_columns(bare, "relay_outbox"))
    before = _everything(bare, columns)
    elsewhere = sum(1 for r in before["relay_outbox"] if r["destination"] == "eu")
    assert elsewhere >= 3

    with pytest.raises(RelayError, match=r"cannot downgrade below 0006") as refused:
        _migrations.downgrade(bare, "0005")

    message = str(refused.value)
    assert f"{elsewhere} rows are bound for a destination other than 'default'" in message
    assert message.endswith("nothing was changed")
    assert revision(bare) == "0006"
    assert _everything(bare, columns) == before

    with bare.begin() as conn:
        conn.execute(sa.update(outbox).values(destination="default"))
    _migrations.downgrade(bare, "0005")
    assert revision(bare) == "0005"
    assert "destination" not in _columns(bare, "relay_outbox")


def _write_profile_update(conn: Connection) -> None:
    """A pending ``$set`` as revision 0004's relay writes it (the columns of 0004 only: today's
    ``relay.update_profile`` also writes ``destination``, which 0004 does not have)."""
    row = _row(99, "pending", kind="user", event="$set", profile_key="9" * 64, time_ms=0)
    columns = [c for c in row if c in _COLUMNS_AT_0004]
    table = sa.table("relay_outbox", *(sa.column(c, outbox.c[c].type) for c in columns))
    conn.execute(table.insert().values({c: row[c] for c in columns}))


_COLUMNS_AT_0004 = set(outbox.c.keys()) - ADDED["0006"]


def _pending_states(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [
            (str(k), str(s))
            for k, s in conn.execute(sa.select(outbox.c.kind, outbox.c.state).order_by(outbox.c.id))
        ]


def test_downgrade_below_0004_refuses_while_profile_updates_are_stored(bare: Engine) -> None:
    """With profile updates stored the downgrade to 0003 refuses in one line naming how many
    by state and what to do; the tables stay at 0004 with every row and column."""
    _migrations.upgrade(bare, "0004")
    _seed(bare, profiles=True, pauses=True)
    columns = set(_columns(bare, "relay_outbox"))
    before = _everything(bare, columns)

    with pytest.raises(RelayError) as refused:
        _migrations.downgrade(bare, "0003")

    message = str(refused.value)
    assert "\n" not in message
    assert "4 profile update(s) (2 pending, 1 dead, 1 delivered)" in message
    assert "relay dead-letters discard" in message
    assert revision(bare) == "0004"
    assert set(_columns(bare, "relay_outbox")) == columns
    assert _everything(bare, columns) == before


def test_downgrade_over_several_revisions_refuses_before_its_first_step(bare: Engine) -> None:
    """From head to 0003 with profile updates stored, the downgrade refuses before taking 0005
    down: the tables stay at head, their id columns as they were (no half-way revision that
    no relay runs on)."""
    _migrations.upgrade(bare)
    _seed(bare, profiles=True)
    columns = sa.inspect(bare).get_columns("relay_outbox")
    before = _everything(bare, {str(c["name"]) for c in columns})

    with pytest.raises(RelayError, match=r"cannot downgrade below 0004.*nothing was changed"):
        _migrations.downgrade(bare, "0003")

    assert revision(bare) == _migrations.heads()[0]
    assert [str(c["type"]) for c in sa.inspect(bare).get_columns("relay_outbox")] == [
        str(c["type"]) for c in columns
    ]
    assert _everything(bare, {str(c["name"]) for c in columns}) == before


def test_profile_update_committed_during_the_postgresql_downgrade_makes_it_refuse(
    postgresql_url: str,
) -> None:
    """A profile update a host transaction holds uncommitted while the downgrade to 0003 runs
    (its first check sees none) is seen under the drop's own lock once committed: the
    downgrade refuses, and the column, the index and the update stay."""
    engine = create_engine(postgresql_url)
    drop_relay_tables(engine)
    try:
        _migrations.upgrade(engine, "0004")
        host = Session(engine)
        _write_profile_update(host.connection())  # its lock held; not committed
        outcome: list[BaseException | None] = []

        def downgrade() -> None:
            try:
                _migrations.downgrade(engine, "0003")
                outcome.append(None)
            except BaseException as exc:  # noqa: BLE001 - asserted below
                outcome.append(exc)

        worker = threading.Thread(target=downgrade)
        worker.start()
        wait_until(
            lambda: _waits_for_a_lock(engine),
            timeout=60,
            what="the downgrade to queue for its lock",
        )
        host.commit()
        host.close()
        worker.join(timeout=120)

        assert not worker.is_alive()
        (raised,) = outcome
        assert isinstance(raised, RelayError), raised
        assert "1 profile update(s) (1 pending)" in str(raised)
        assert revision(engine) == "0004"
        assert {"kind", "profile_key"} <= set(_columns(engine, "relay_outbox"))
        indexes = {i["name"] for i in sa.inspect(engine).get_indexes("relay_outbox")}
        assert "ix_relay_outbox_profile_pending" in indexes
        assert _pending_states(engine) == [("user", "pending")]
    finally:
        drop_relay_tables(engine)
        engine.dispose()


@pytest.mark.parametrize("migrating_with", ["relay-engine", "plain-engine"])
def test_profile_update_committed_between_the_check_and_the_drop_is_never_reinterpreted(
    db_url: str, migrating_with: str
) -> None:
    """A host commits a profile update right after the downgrade's first look (found none)
    and before its drop. The downgrade either refuses (the update stays a profile update at
    0004) or, on SQLite, the host's write waits for the downgrade and then fails: never is
    the update stored under 0003, where it would be an event. "plain-engine" migrates through
    a host's own SQLAlchemy engine (``relay.upgrade_schema(engine)`` accepts any): pysqlite
    then runs the DDL outside any transaction."""
    make_engine = create_engine if migrating_with == "relay-engine" else sa.create_engine
    migrating = make_engine(db_url)
    host_engine = create_engine(db_url)
    drop_relay_tables(host_engine)
    host_raised: list[BaseException] = []
    committed = threading.Event()

    def host_commits_a_profile_update() -> None:
        try:
            with host_engine.begin() as conn:
                _write_profile_update(conn)
            committed.set()
        except BaseException as exc:  # noqa: BLE001 - asserted below
            host_raised.append(exc)

    host = threading.Thread(target=host_commits_a_profile_update)

    def after_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "kind <> 'event'" in statement and not host.is_alive() and not host.ident:
            host.start()  # the first look is done: the host commits now
            host.join(timeout=3)  # done at once unless it waits for a lock the downgrade holds

    try:
        _migrations.upgrade(host_engine, "0004")
        sa.event.listen(migrating, "after_cursor_execute", after_execute)
        try:
            _migrations.downgrade(migrating, "0003")
            downgraded: BaseException | None = None
        except BaseException as exc:  # noqa: BLE001 - asserted below
            downgraded = exc
        sa.event.remove(migrating, "after_cursor_execute", after_execute)
        host.join(timeout=60)

        assert host.ident is not None, "the downgrade never looked for profile updates"
        assert not host.is_alive()
        if downgraded is None:  # went ahead: the host's update must not have got in
            assert revision(host_engine) == "0003"
            assert not committed.is_set(), "a profile update became an event"
            # Only SQLite makes the host wait (its one write lock), and the host's write then
            # meets the dropped column; anything else would make this branch vacuous.
            assert host_engine.dialect.name == "sqlite"
            assert "no column named kind" in str(host_raised[0])
            with host_engine.connect() as conn:
                stored = conn.execute(sa.text("SELECT event FROM relay_outbox")).scalars().all()
            assert stored == []
        else:
            assert isinstance(downgraded, RelayError), downgraded
            assert "1 profile update(s) (1 pending)" in str(downgraded)
            assert committed.is_set(), host_raised
            assert revision(host_engine) == "0004"
            assert _pending_states(host_engine) == [("user", "pending")]
            indexes = {i["name"] for i in sa.inspect(host_engine).get_indexes("relay_outbox")}
            assert "ix_relay_outbox_profile_pending" in indexes
    finally:
        drop_relay_tables(host_engine)
        migrating.dispose()
        host_engine.dispose()


def _waits_for_a_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'DO $$%' AND datname = current_database()"
                )
            ).scalar_one()
        )


def test_downgrade_below_0004_goes_ahead_once_the_profile_updates_are_gone(bare: Engine) -> None:
    """Once the profile updates are purged the same downgrade runs, and the events stay."""
    _migrations.upgrade(bare, "0004")
    _seed(bare, profiles=True)
    with bare.begin() as conn:
        conn.execute(sa.delete(outbox).where(outbox.c.kind != "event"))

    _migrations.downgrade(bare, "0003")

    assert revision(bare) == "0003"
    assert "kind" not in _columns(bare, "relay_outbox")
    with bare.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one() == 5


def test_downgrade_below_0003_refuses_while_a_pause_is_set(bare: Engine) -> None:
    """A pause set means the downgrade to 0002 refuses (dropping relay_pause would resume
    delivery unseen); the pause and the lane column stay."""
    _migrations.upgrade(bare, "0003")
    _seed(bare, pauses=True)

    with pytest.raises(RelayError, match=r"1 pause\(s\) of delivery are set.*relay resume"):
        _migrations.downgrade(bare, "0002")

    assert revision(bare) == "0003"
    assert "lane" in _columns(bare, "relay_outbox")
    assert len(_snapshot(bare, "relay_pause", {"scope"})) == 1


def test_alembic_downgrade_refusal_is_one_line_not_a_traceback(bare: Engine) -> None:
    """`alembic downgrade 0003` (the issue's operator) with a profile update stored prints the
    refusal as one FAILED line, fails, and leaves the tables at head."""
    _migrations.upgrade(bare)
    _seed(bare, profiles=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    url = bare.url.render_as_string(hide_password=False)

    result = subprocess.run(
        [str(RELAY_EXECUTABLE.with_name("alembic")), "-x", f"url={url}", "downgrade", "0003"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPOSITORY,
        timeout=120,
    )

    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    failed = [line for line in output.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1, output
    assert "cannot downgrade below 0004" in failed[0]
    assert revision(bare) == _migrations.heads()[0]


def _relay_migrate(engine: Engine, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env["RELAY_DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
    return subprocess.run(
        [str(RELAY_EXECUTABLE), "migrate", *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_relay_migrate_to_an_older_revision_says_the_database_stays_where_it_is(
    bare: Engine,
) -> None:
    """`relay migrate --revision 0003` at 0004 exits 2 saying the database stays at 0004 (it
    used to print "at revision 0003"), and changes nothing."""
    _migrations.upgrade(bare, "0004")

    result = _relay_migrate(bare, "--revision", "0003")

    assert result.returncode == 2, result.stderr
    assert "at revision 0003" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "stays at revision 0004, newer than 0003" in lines[0]
    assert revision(bare) == "0004"


def test_relay_migrate_prints_the_revision_it_reached(bare: Engine) -> None:
    """`relay migrate` to head prints the revision the database is at, not the word head."""
    result = _relay_migrate(bare)

    assert result.returncode == 0, result.stderr
    assert f"at revision {_migrations.heads()[0]} in" in result.stdout
