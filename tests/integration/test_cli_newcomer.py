"""What a new user or an operator sees when something is off (issue 13): one line, a documented
exit code, a hint that names the fix. Real databases, real processes, the real stand-in."""

from __future__ import annotations

import datetime as dt
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from helpers.cli import (
    RELAY,
    UNREACHABLE_MIXPANEL,
    env_without_relay,
    migrated_sqlite,
    one_line,
    relay,
)
from sqlalchemy.engine import Engine

from relay import _store as store
from relay._database import create_engine
from relay._tables import outbox
from relay.demos.demo import run_demo

ANSI = re.compile("\x1b\\[")


pytestmark = pytest.mark.usefixtures("no_relay_env")


# --- database URLs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "named"),
    [
        pytest.param("postgres://u:hunter2@127.0.0.1/db", "postgresql+psycopg://", id="postgres"),
        pytest.param("mysql://root:hunter2@127.0.0.1/test", "mysql+pymysql://", id="mysql"),
        pytest.param("not-a-url", "postgresql+psycopg://user@host/db", id="not-a-url"),
        pytest.param("bogus+driver://x/y", "sqlite:///relay.db", id="unknown-scheme"),
    ],
)
def test_an_unusable_database_url_exits_3_naming_the_scheme_to_write(url: str, named: str) -> None:
    """A URL no installed driver can use is one line, exit 3, with the spelling that works and
    no password; never a traceback ending in NoSuchModuleError or 'No module named MySQLdb'."""
    result = relay("stats", env={"RELAY_DATABASE_URL": url})

    assert result.exit_code == 3, result.output
    line = one_line(result.stderr)
    assert "RELAY_DATABASE_URL" in line
    assert named in line
    assert "hunter2" not in result.output
    assert "Traceback" not in result.output


def test_stats_without_a_database_url_refuses_and_creates_no_file(tmp_path: Path) -> None:
    """With no RELAY_DATABASE_URL, `relay stats` says the default file is missing (exit 3) and
    leaves the current directory as it was: no stray relay.db."""
    done = subprocess.run(
        [RELAY, "stats"],
        cwd=tmp_path,
        env=env_without_relay(),
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 3, done.stderr
    line = one_line(done.stderr)
    assert "RELAY_DATABASE_URL is not set" in line
    assert "relay migrate" in line
    assert list(tmp_path.iterdir()) == []


def test_migrate_creates_the_sqlite_file_the_other_commands_refuse_to(tmp_path: Path) -> None:
    """`relay migrate` is the one command that creates the SQLite file; `stats` then works."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    assert relay("--database-url", url, "stats").exit_code == 3
    assert not (tmp_path / "new.db").exists()

    assert relay("--database-url", url, "migrate").exit_code == 0
    assert relay("--database-url", url, "stats").exit_code == 0


def test_a_closed_port_is_one_line_naming_the_database_and_why() -> None:
    """`relay stats` against a server that is not there: exit 1, one line naming the redacted
    URL and the driver's reason (connection refused), the password scrubbed."""
    url = "postgresql+psycopg://postgres:hunter2@127.0.0.1:9/none"

    result = relay("--database-url", url, "stats")

    assert result.exit_code == 1, result.output
    line = one_line(result.stderr)
    assert "cannot use the database postgresql+psycopg://postgres:***@127.0.0.1:9/none" in line
    assert "refused" in line.lower()
    assert "hunter2" not in result.output


def test_migrate_with_the_database_down_is_one_line() -> None:
    """`relay migrate` against a closed port prints one line and exits 1, not 135 lines."""
    result = relay("--database-url", "postgresql+psycopg://postgres@127.0.0.1:9/x", "migrate")

    assert result.exit_code == 1, result.output
    assert "cannot use the database" in one_line(result.stderr)


def test_read_commands_before_migrate_say_to_run_migrate(tmp_path: Path) -> None:
    """On a database that exists but has no relay tables, `stats` and `dead-letters list` exit
    3 with one line saying `relay migrate`, not `pending_gauges failed: UndefinedTable`."""
    path = tmp_path / "empty.db"
    sa.create_engine(f"sqlite:///{path}").connect().close()  # an empty SQLite file
    for command in (["stats"], ["dead-letters", "list"], ["audit"]):
        result = relay("--database-url", f"sqlite:///{path}", *command)

        assert result.exit_code == 3, result.output
        line = one_line(result.stderr)
        assert "run `relay migrate` first" in line
        assert "failed" not in line


def test_run_on_a_database_never_migrated_exits_3_at_once(tmp_path: Path) -> None:
    """The daemon on an un-migrated database stops at start with one line (no stack frames)."""
    path = tmp_path / "empty.db"
    sa.create_engine(f"sqlite:///{path}").connect().close()
    env = env_without_relay(
        RELAY_DATABASE_URL=f"sqlite:///{path}", RELAY_METRICS_PORT="0", **UNREACHABLE_MIXPANEL
    )
    done = subprocess.run(
        [RELAY, "run"], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 3, done.stderr
    assert "relay migrate" in one_line(done.stderr)


# --- settings, version --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [("RELAY_BATCH_MAX_EVENTS", "abc"), ("RELAY_MIXPANEL_REGION", "asia")],
)
def test_an_invalid_setting_exits_3_naming_it(tmp_path: Path, name: str, value: str) -> None:
    """An invalid RELAY_* value is exit 3 (as the README says) with one line naming it."""
    url = migrated_sqlite(tmp_path / "r.db")

    result = relay("stats", env={"RELAY_DATABASE_URL": url, name: value})

    assert result.exit_code == 3, result.output
    line = one_line(result.stderr)
    assert name in line
    assert value not in line  # the rule, never the rejected value (it may be a secret)


def test_version_prints_the_installed_version() -> None:
    """`relay --version` prints `relay <version>` and exits 0, with no settings read."""
    from importlib.metadata import version  # noqa: PLC0415

    result = relay("--version", env={"RELAY_BATCH_MAX_EVENTS": "abc"})

    assert result.exit_code == 0
    assert result.stdout == f"relay {version('relay-outbox')}\n"


def test_help_and_version_import_nothing_heavy() -> None:
    """`relay --help` loads neither SQLAlchemy, pydantic nor Alembic (start-up stays light)."""
    code = (
        "import sys\nfrom relay.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('sqlalchemy', 'pydantic', 'alembic', 'httpx', 'rich') "
        "if m in sys.modules]\nprint(heavy, file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env_without_relay(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stderr.strip() == "[]"


# --- drain and cron ------------------------------------------------------------------------


def _pending(engine: Engine, count: int) -> None:
    now = dt.datetime.now(dt.UTC)
    with store.transaction(engine, write=True) as conn:
        for n in range(count):
            store.insert_event(
                conn,
                values={
                    "insert_id": f"ins-{n}",
                    "event": "svc.test.thing_done",
                    "distinct_id": "user-1",
                    "time_ms": 1_767_225_600_000 + n,
                    "properties": {"organization_id": "org-1"},
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                },
            )


def _standin_env(url: str, standin_url: str) -> dict[str, str]:
    return {
        "RELAY_DATABASE_URL": url,
        "RELAY_MIXPANEL_API_URL": standin_url,
        "RELAY_MIXPANEL_PROJECT_ID": "standin-project",
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME": "standin-user",
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET": "standin-secret",
        "RELAY_LOG_LEVEL": "ERROR",
        "RELAY_REQUEST_DEADLINE_SECONDS": "5",
    }


def test_drain_exits_1_when_mixpanel_is_unreachable_so_cron_notices(tmp_path: Path) -> None:
    """Rows due and Mixpanel unreachable: `relay drain` reports the totals, then one line and
    exit 1; the rows stay pending for the next run."""
    url = migrated_sqlite(tmp_path / "r.db")
    engine = create_engine(url)
    try:
        _pending(engine, 3)
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
        result = relay("drain", env=_standin_env(url, f"http://127.0.0.1:{port}"))

        assert result.exit_code == 1, result.output
        assert "retry scheduled 3" in result.stdout
        assert "nothing delivered" in one_line(result.stderr)
        with engine.connect() as conn:
            assert conn.execute(sa.select(outbox.c.state)).scalars().all() == ["pending"] * 3
    finally:
        engine.dispose()


def test_drain_with_nothing_due_exits_0(tmp_path: Path) -> None:
    """An empty outbox is a successful drain, even with Mixpanel unreachable."""
    url = migrated_sqlite(tmp_path / "r.db")

    result = relay("drain", env=_standin_env(url, "http://127.0.0.1:9"))

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("delivered 0")


# --- a second relay on one host --------------------------------------------------------------


def test_a_second_relay_on_a_taken_metrics_port_names_relay_metrics_port(tmp_path: Path) -> None:
    """`relay run` whose metrics port is taken (a relay already runs on this host) exits 3
    with one line naming RELAY_METRICS_PORT, instead of an 'Address already in use' traceback."""
    url = migrated_sqlite(tmp_path / "r.db")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = env_without_relay(
            **_standin_env(url, "http://127.0.0.1:9"),
            RELAY_METRICS_HOST="127.0.0.1",
            RELAY_METRICS_PORT=str(port),
        )
        done = subprocess.run(
            [RELAY, "run"], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    assert done.returncode == 3, done.stderr
    line = one_line(done.stderr)
    assert "RELAY_METRICS_PORT" in line
    assert str(port) in line


# --- export, inspect ------------------------------------------------------------------------


def test_export_with_no_filter_suggests_all_not_a_python_name(tmp_path: Path) -> None:
    """The empty-filter refusal names the command-line flag --all, never allow_all=True."""
    url = migrated_sqlite(tmp_path / "r.db")

    result = relay("--database-url", url, "export")

    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert "--all" in line
    assert "allow_all" not in line


def test_inspect_json_carries_the_exact_import_text(tmp_path: Path) -> None:
    """`inspect --json` has import_json, the /import event byte for byte as text, next to the
    parsed import_event; the text output's last line is that same text."""
    url = migrated_sqlite(tmp_path / "r.db")
    engine = create_engine(url)
    try:
        _pending(engine, 1)
    finally:
        engine.dispose()

    shown = relay("--database-url", url, "inspect", "1")
    as_json = orjson.loads(relay("--database-url", url, "inspect", "1", "--json").stdout)

    assert as_json["import_json"] == shown.stdout.splitlines()[-1]
    assert orjson.loads(as_json["import_json"]) == as_json["import_event"]
    assert ", " not in as_json["import_json"]
    assert ": " not in as_json["import_json"]


# --- the demo --------------------------------------------------------------------------------


def test_demo_keep_runs_twice_on_the_same_database(tmp_path: Path) -> None:
    """`relay demo --keep URL` works a second time on the database it made the first time."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    run_demo(database_url=url)

    second = run_demo(database_url=url)

    assert set(second.mixpanel_counts.values()) == {1}


def test_demo_never_touches_tables_it_did_not_create(tmp_path: Path) -> None:
    """A --keep database with the host's own employees table: the demo refuses (exit 3, one
    line) and the host's rows are all still there."""
    url = f"sqlite:///{tmp_path / 'host.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE employees (id TEXT PRIMARY KEY, name TEXT)"))
        conn.execute(sa.text("INSERT INTO employees VALUES ('e1', 'Ada'), ('e2', 'Grace')"))

    result = relay("demo", "--keep", url)

    assert result.exit_code == 3, result.output
    assert "employees" in one_line(result.stderr.split("\n", 1)[1])
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM employees")).scalar_one() == 2
    engine.dispose()


def test_demo_explains_its_error_line_before_it_prints() -> None:
    """The demo says up front that its one [error] log line is expected."""
    result = relay("demo")

    assert result.exit_code == 0, result.output
    first = result.stderr.splitlines()[0]
    assert "[error] line below is expected" in first


# --- relay standin ---------------------------------------------------------------------------


@pytest.fixture
def standin_process() -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """`relay standin --port 0` running, with the variables it printed."""
    proc = subprocess.Popen(
        [RELAY, "standin", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_without_relay(),
    )
    assert proc.stdout is not None
    exports: dict[str, str] = {}
    for line in proc.stdout:  # the export lines come first, at once
        match = re.fullmatch(r"export (RELAY_\w+)=(\S+)\n", line)
        if match is None:
            break
        exports[match.group(1)] = match.group(2)
    try:
        yield proc, exports
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_standin_prints_exports_and_lists_what_a_drain_delivered(
    tmp_path: Path, standin_process: tuple[subprocess.Popen[str], dict[str, str]]
) -> None:
    """`relay standin` prints its export lines; a `relay drain` using them delivers; and
    `relay standin events --url` lists exactly the delivered events."""
    proc, exports = standin_process
    assert sorted(exports) == [
        "RELAY_ERASURE_HASH_KEY",
        "RELAY_MIXPANEL_API_URL",
        "RELAY_MIXPANEL_APP_API_URL",
        "RELAY_MIXPANEL_GDPR_TOKEN",
        "RELAY_MIXPANEL_PROJECT_ID",
        "RELAY_MIXPANEL_PROJECT_TOKEN",
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET",
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME",
    ]
    url = migrated_sqlite(tmp_path / "r.db")
    engine = create_engine(url)
    try:
        _pending(engine, 2)
    finally:
        engine.dispose()

    drained = relay("drain", env={"RELAY_DATABASE_URL": url, **exports})
    listed = relay("standin", "events", "--url", exports["RELAY_MIXPANEL_API_URL"], "--json")
    table = relay("standin", "events", "--url", exports["RELAY_MIXPANEL_API_URL"])

    assert drained.exit_code == 0, drained.output
    assert sorted(e["key"]["$insert_id"] for e in orjson.loads(listed.stdout)["events"]) == [
        "ins-0",
        "ins-1",
    ]
    assert "2 accepted, 2 unique" in table.stdout
    proc.terminate()
    assert proc.wait(timeout=30) == 0


def test_standin_settings_serve_push_profiles_and_forget(
    tmp_path: Path, standin_process: tuple[subprocess.Popen[str], dict[str, str]]
) -> None:
    """With only the variables `relay standin` printed: `relay events push --yes` accepts the
    integer project id and uploads, a profile update drains (the project token), and `relay
    forget --mixpanel --yes` files its GDPR request on the app-API URL."""
    import relay  # noqa: PLC0415

    _proc, exports = standin_process
    assert exports["RELAY_MIXPANEL_PROJECT_ID"].isdigit()
    url = migrated_sqlite(tmp_path / "r.db")
    # The host's catalog (relay ships none): the tests' HR events.
    tests = str(Path(__file__).resolve().parents[1])
    env = {"RELAY_DATABASE_URL": url, "PYTHONPATH": tests, **exports}
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            relay.update_profile(
                conn, distinct_id="person-1", operation="$set", properties={"plan": "pro"}
            )
    finally:
        engine.dispose()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [RELAY, *args],
            env=env_without_relay(**env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    pushed = run("events", "push", "hr_catalog", "--yes")
    drained = run("drain")
    forgot = run("forget", "--distinct-id", "person-1", "--mixpanel", "--yes")

    assert pushed.returncode == 0, pushed.stderr
    assert drained.returncode == 0, drained.stderr
    assert drained.stdout.startswith("delivered 1,"), drained.stdout
    assert forgot.returncode == 0, forgot.stderr


def test_standin_events_without_a_standin_is_one_line() -> None:
    """`relay standin events` with nothing listening: exit 1, one line asking if it runs."""
    result = relay("standin", "events", "--url", "http://127.0.0.1:9")

    assert result.exit_code == 1
    assert "is `relay standin` running?" in one_line(result.stderr)


# --- rich output stays out of pipes ------------------------------------------------------------


def test_batched_work_in_a_pipe_prints_no_bar_and_json_stays_clean(tmp_path: Path) -> None:
    """Off a terminal a replay draws no progress bar or colour, and with --json stdout is the
    JSON alone and stderr is empty."""
    url = migrated_sqlite(tmp_path / "r.db")
    engine = create_engine(url)
    try:
        _pending(engine, 5)
    finally:
        engine.dispose()

    text = relay("--database-url", url, "replay", "--all", "--yes", "--batch-size", "2")
    as_json = relay("--database-url", url, "replay", "--all", "--yes", "--json")

    assert text.exit_code == 0
    assert not ANSI.search(text.output)
    assert text.stderr == ""
    assert orjson.loads(as_json.stdout)["replayed"] == 5
    assert as_json.stderr == ""


def test_rich_tables_on_a_terminal_print_stored_text_literally(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a terminal the rich table shows stored text as text: '[red]' is not markup and an
    escape sequence is escaped, not sent to the terminal."""
    from relay.cli import _render  # noqa: PLC0415

    monkeypatch.setattr(_render, "_stdout_is_terminal", lambda: True)

    _render.table(("COUNT", "REASON"), [(3, "[red]bad[/red] \x1b[2J")])

    out = capsys.readouterr().out
    assert "[red]bad[/red]" in out
    assert "\x1b[2J" not in out
    assert "\\x1b[2J" in out


def test_admin_defaults_spelled_in_the_cli_match_the_library() -> None:
    """The CLI spells relay.admin's defaults to stay light at start-up; they must agree."""
    from relay import admin  # noqa: PLC0415
    from relay._config import PURGE_BATCH_SIZE  # noqa: PLC0415
    from relay.admin._filters import MAX_ID  # noqa: PLC0415
    from relay.cli import _params  # noqa: PLC0415
    from relay.cli import admin as cli_admin  # noqa: PLC0415

    assert _params.DEFAULT_BATCH_SIZE == admin.DEFAULT_BATCH_SIZE
    assert _params.DEFAULT_SAMPLE_SIZE == admin.DEFAULT_SAMPLE_SIZE
    assert _params.MAX_ID == MAX_ID
    assert cli_admin.DEFAULT_AUDIT_LIMIT == admin.DEFAULT_AUDIT_LIMIT
    assert cli_admin.PURGE_BATCH_SIZE == PURGE_BATCH_SIZE
    assert sorted(admin.__all__) == sorted(admin._EXPORTS)
    assert all(callable(getattr(admin, name)) for name in admin.__all__ if name[0].islower())


def test_stats_text_lists_the_pauses_in_force(tmp_path: Path) -> None:
    """After `relay pause`, `relay stats` (text, not only --json) says what is paused, why and
    by whom; after `relay resume` it no longer does."""
    url = migrated_sqlite(tmp_path / "r.db")

    paused = relay("--database-url", url, "pause", "--reason", "incident 42", "--actor", "ana")
    during = relay("--database-url", url, "stats")
    resumed = relay("--database-url", url, "resume")
    after = relay("--database-url", url, "stats")

    assert (paused.exit_code, resumed.exit_code) == (0, 0)
    assert "paused (relay resume lifts a pause):" in during.stdout
    assert "all delivery" in during.stdout
    assert "incident 42" in during.stdout
    assert "ana" in during.stdout
    assert "paused" not in after.stdout
