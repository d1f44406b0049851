"""A relay starts only against the schema revision its code was written for.

During a rolling upgrade a relay may meet a database migrated by a newer relay, or not yet
migrated for it; either way it must refuse in one line, exit 3 (a configuration error), and
touch nothing, rather than run beside relays that read leases from another column.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from migration_rig import RELAY_EXECUTABLE, drop_relay_tables, track_one
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from relay import _migrations
from relay._database import create_engine
from relay._tables import metadata

EXIT_CONFIGURATION = 3
RUN_TIMEOUT = 30.0


@pytest.fixture
def bare(db_url: str) -> Iterator[Engine]:
    """Each database with none of relay's tables or its version table."""
    engine = create_engine(db_url)
    drop_relay_tables(engine)
    yield engine
    drop_relay_tables(engine)
    engine.dispose()


def _relay(engine: Engine, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``relay <args>`` against ``engine``'s database with credentials nothing will check."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env |= {
        "RELAY_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "RELAY_MIXPANEL_API_URL": "http://127.0.0.1:9",  # nothing listens: must not be reached
        "RELAY_MIXPANEL_PROJECT_ID": "1",
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME": "user",
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET": "secret",
        "RELAY_METRICS_PORT": "0",
        "RELAY_LOG_LEVEL": "WARNING",
    }
    try:
        return subprocess.run(
            [str(RELAY_EXECUTABLE), *args],
            check=False,
            capture_output=True,
            text=True,
            env=env,
            timeout=RUN_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"relay {' '.join(args)} started instead of refusing") from None


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def _set_revision(engine: Engine, value: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE relay_alembic_version SET version_num = :v"), {"v": value})


def _rows(engine: Engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        return [
            (str(state), int(attempts))
            for state, attempts in conn.execute(
                sa.text("SELECT state, attempts FROM relay_outbox ORDER BY id")
            )
        ]


def test_check_passes_at_head_with_one_query_and_returns_the_revision(bare: Engine) -> None:
    """At head the check returns the revision after exactly one statement, on every dialect."""
    _migrations.upgrade(bare)
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    sa.event.listen(bare, "before_cursor_execute", record)
    try:
        assert _migrations.require_current_schema(bare) == _migrations.heads()[0]
    finally:
        sa.event.remove(bare, "before_cursor_execute", record)
    queries = [s for s in statements if not s.startswith("BEGIN")]  # relay's SQLite BEGIN
    assert queries == ["SELECT version_num FROM relay_alembic_version"]


def test_drain_against_an_older_schema_exits_3_and_touches_nothing(bare: Engine) -> None:
    """`relay drain` on a database at 0001 refuses in one line with exit 3; rows stay untouched."""
    _migrations.upgrade(bare, "0001")
    with Session(bare) as session:
        track_one(session, 1)
        session.commit()

    result = _relay(bare, "drain")

    assert result.returncode == EXIT_CONFIGURATION, result.stderr
    line = _one_line(result.stderr)
    assert "older than this relay needs" in line
    assert "relay migrate" in line
    assert _rows(bare) == [("pending", 0)]


def test_run_against_a_revision_it_does_not_know_exits_3(bare: Engine) -> None:
    """`relay run` on a database a newer relay migrated refuses in one line with exit 3."""
    _migrations.upgrade(bare)
    _set_revision(bare, "9999")  # a revision from a release this relay predates

    result = _relay(bare, "run")

    assert result.returncode == EXIT_CONFIGURATION, result.stderr
    line = _one_line(result.stderr)
    assert "newer than this relay knows" in line
    assert "9999" not in line  # a value read from the database is not echoed


def test_run_against_an_older_schema_exits_3(bare: Engine) -> None:
    """`relay run` on a database at 0001 refuses in one line with exit 3."""
    _migrations.upgrade(bare, "0001")

    result = _relay(bare, "run")

    assert result.returncode == EXIT_CONFIGURATION, result.stderr
    assert "relay migrate" in _one_line(result.stderr)


def test_run_against_tables_never_migrated_exits_3(bare: Engine) -> None:
    """Tables without relay's version table (made by hand) are refused: run `relay migrate`."""
    metadata.create_all(bare)

    result = _relay(bare, "drain")

    assert result.returncode == EXIT_CONFIGURATION, result.stderr
    assert "not migrated" in _one_line(result.stderr)


def test_check_lets_a_database_outage_through_as_it_is() -> None:
    """An unreachable database is a runtime failure, not reported as a schema mismatch."""
    engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:9/none")
    try:
        with pytest.raises(sa.exc.OperationalError):
            _migrations.require_current_schema(engine)
    finally:
        engine.dispose()


def test_daemon_refuses_a_foreign_revision_at_its_first_database_contact(bare: Engine) -> None:
    """A daemon started while the check could not run stops with 3 once it sees the revision."""
    from relay._config import RelaySettings  # noqa: PLC0415
    from relay._daemon.daemon import run_daemon  # noqa: PLC0415

    _migrations.upgrade(bare)
    with Session(bare) as session, session.begin():
        track_one(session, 0)
    _set_revision(bare, "9999")
    settings = RelaySettings(
        database_url=bare.url.render_as_string(hide_password=False),
        mixpanel_api_url="http://127.0.0.1:9",
        mixpanel_project_id="1",
        mixpanel_service_account_username="user",
        mixpanel_service_account_secret="secret",
        metrics_port=0,
    )

    # run_daemon skips the CLI's up-front check: this is the path of a relay that started
    # during a database outage and meets the database only later.
    code = run_daemon(settings)

    assert code == EXIT_CONFIGURATION
    assert _rows(bare) == [("pending", 0)]  # nothing claimed, nothing deleted
