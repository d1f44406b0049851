"""A newcomer's first hour (issue 23): every mistake is one ``relay:`` line naming the real cause
and a documented exit code, never a traceback, and nothing half written. Real databases, real
processes."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

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
from helpers.outbox import add_rows
from helpers.standin import StartStandin
from helpers.waiting import wait_for

from relay._database import create_engine
from relay._tables import outbox
from relay.testing.mixpanel_standin import MixpanelStandin

pytestmark = pytest.mark.usefixtures("no_relay_env")


# --- the database URL ------------------------------------------------------------------------


def test_a_role_that_does_not_exist_is_a_failed_connection_not_missing_tables(
    postgresql_url: str,
) -> None:
    """PostgreSQL's 'role ... does not exist' is a connection that failed (exit 1, the hint
    names the user), never "relay's tables are missing ... run relay migrate", even in migrate."""
    url = sa.make_url(postgresql_url).set(username="relay_no_such_role", password=None)
    shown = url.render_as_string(hide_password=False)

    for command in ("migrate", "stats"):
        result = relay("--database-url", shown, command)

        assert result.exit_code == 1, result.output
        line = one_line(result.stderr)
        assert "cannot use the database" in line
        assert "relay_no_such_role" in line
        assert "user" in line
        assert "tables are missing" not in line
        assert "relay migrate" not in line


def test_an_empty_database_url_says_it_is_empty() -> None:
    """``RELAY_DATABASE_URL=''`` is one line saying the variable is empty (exit 3), not a
    sentence about it being unset."""
    result = relay("stats", env={"RELAY_DATABASE_URL": ""})

    assert result.exit_code == 3, result.output
    line = one_line(result.stderr)
    assert "RELAY_DATABASE_URL is empty" in line
    assert "is not set" not in line


def test_a_sqlite_url_with_two_slashes_names_the_spelling_with_three(tmp_path: Path) -> None:
    """``sqlite://nope.db`` (the file read as a host) is exit 3 naming ``sqlite:///nope.db``,
    not "database error: ArgumentError" with exit 1."""
    result = relay("--database-url", "sqlite://nope.db", "stats")

    assert result.exit_code == 3, result.output
    assert "sqlite:///nope.db" in one_line(result.stderr)


@pytest.mark.parametrize("where", ["missing", "file"])
def test_a_sqlite_path_in_no_directory_names_the_directory(tmp_path: Path, where: str) -> None:
    """`relay migrate` on a SQLite path whose directory does not exist, or is a file, is exit 3
    naming that directory, not "is it running and reachable?", and creates nothing."""
    parent = tmp_path / "nodir"
    if where == "file":
        parent.write_text("not a directory")
    url = f"sqlite:///{parent / 'relay.db'}"

    result = relay("--database-url", url, "migrate")

    assert result.exit_code == 3, result.output
    line = one_line(result.stderr)
    assert str(parent) in line
    assert "reachable" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == (["nodir"] if where == "file" else [])


def test_a_bare_postgresql_url_is_refused_naming_psycopg() -> None:
    """``postgresql://`` (psycopg2's spelling) is refused with exit 3 and the spelling to write,
    as the README says, even though psycopg2 is installed here."""
    result = relay("--database-url", "postgresql://u@127.0.0.1:9/db", "stats")

    assert result.exit_code == 3, result.output
    assert "write postgresql+psycopg://" in one_line(result.stderr)


def test_a_url_naming_psycopg2_on_purpose_is_used_not_refused() -> None:
    """``postgresql+psycopg2://`` (what a Django project on psycopg2 hands over) is used when
    psycopg2 is installed: a closed port is a failed connection (exit 1), not exit 3."""
    result = relay("--database-url", "postgresql+psycopg2://u@127.0.0.1:9/db", "stats")

    assert result.exit_code == 1, result.output
    assert "cannot use the database" in one_line(result.stderr)


def test_a_missing_driver_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without psycopg, a postgresql+psycopg URL is exit 3 naming
    ``pip install "relay-outbox[postgresql]"``."""
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` fails as if absent

    result = relay("--database-url", "postgresql+psycopg://u@127.0.0.1:9/db", "stats")

    assert result.exit_code == 3, result.output
    assert 'pip install "relay-outbox[postgresql]"' in one_line(result.stderr)


# --- files and modules the operator names ----------------------------------------------------


@pytest.mark.parametrize("target", ["missing/dir/x.jsonl", "afile/x.jsonl", "."])
def test_export_to_a_path_it_cannot_write_is_one_line(tmp_path: Path, target: str) -> None:
    """`relay export --output` into a missing directory, under a file, or onto a directory is
    exit 2 with one line naming the path, before anything is read or written."""
    url = migrated_sqlite(tmp_path / "r.db")
    (tmp_path / "afile").write_text("x")
    before = sorted(p.name for p in tmp_path.iterdir())
    output = tmp_path if target == "." else tmp_path / target

    result = relay("--database-url", url, "export", "--all", "--output", str(output))

    assert result.exit_code == 2, result.output
    assert "--output" in one_line(result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("command", ["docs", "push"])
def test_a_catalog_module_that_does_not_exist_is_one_line(command: str) -> None:
    """`relay events docs|push nosuchmodule` is exit 2 naming the module, not an import
    traceback (push checks the module before the credentials)."""
    env = {
        "RELAY_MIXPANEL_PROJECT_ID": "1",
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME": "u",
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET": "s",
        "RELAY_MIXPANEL_APP_API_URL": "http://127.0.0.1:9",
    }

    result = relay("events", command, "relay_no_such_catalog_module", env=env)

    assert result.exit_code == 2, result.output
    assert "'relay_no_such_catalog_module'" in one_line(result.stderr)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["docs", "hr_catalog", "--output", "{file}"], id="docs-onto-file"),
        pytest.param(["docs", "hr_catalog", "--output", "{file}/sub"], id="docs-under-file"),
        pytest.param(["new", "svc.shop.order_placed", "--package", "{file}"], id="new-onto-file"),
        pytest.param(
            ["new", "svc.shop.order_placed", "--package", "{file}/pkg"], id="new-under-file"
        ),
    ],
)
def test_a_file_where_a_directory_is_needed_is_one_line(tmp_path: Path, args: list[str]) -> None:
    """A file given where `--output` or `--package` needs a directory is exit 2 with one line
    naming it, and nothing is written."""
    afile = tmp_path / "afile"
    afile.write_text("x")

    result = relay("events", *(a.replace("{file}", str(afile)) for a in args))

    assert result.exit_code == 2, result.output
    assert str(afile) in one_line(result.stderr)
    assert [p.name for p in tmp_path.iterdir()] == ["afile"]
    assert afile.read_text() == "x"


# --- dead letters -----------------------------------------------------------------------------


def test_requeue_without_a_filter_suggests_only_options_it_takes(tmp_path: Path) -> None:
    """`dead-letters requeue` with no filter names options the command really takes (never
    --state, which it does not)."""
    url = migrated_sqlite(tmp_path / "r.db")

    result = relay("--database-url", url, "dead-letters", "requeue")

    assert result.exit_code == 2, result.output
    line = one_line(result.stderr)
    help_text = relay("dead-letters", "requeue", "--help").output
    suggested = [word.strip("(),.") for word in line.split() if word.startswith("--")]
    assert suggested
    assert "--state" not in suggested
    for option in suggested:
        assert option in help_text, option


def test_reason_always_says_why_and_never_selects(tmp_path: Path) -> None:
    """``--reason`` is the why of `discard` and `pause`; `requeue` selects a group with
    ``--error`` (as `dead-letters list` says) and refuses ``--reason`` as an unknown option."""
    url = migrated_sqlite(tmp_path / "r.db")

    refused = relay("--database-url", url, "dead-letters", "requeue", "--reason", "x")
    selected = relay("--database-url", url, "dead-letters", "requeue", "--error", "x")

    assert refused.exit_code == 2
    assert "--reason" in refused.stderr
    assert selected.exit_code == 0, selected.output
    for command in (["dead-letters", "discard"], ["pause"]):
        assert "--reason" in relay(*command, "--help").output


# --- relay run ----------------------------------------------------------------------------------


def test_run_without_credentials_is_one_relay_line_not_a_json_log(tmp_path: Path) -> None:
    """`relay run` with no Mixpanel credentials prints one ``relay:`` line, exit 3, and no JSON
    log line."""
    url = migrated_sqlite(tmp_path / "r.db")
    done = subprocess.run(
        [RELAY, "run"],
        env=env_without_relay(RELAY_DATABASE_URL=url, RELAY_METRICS_PORT="0"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 3, done.stderr
    line = one_line(done.stderr)
    assert "RELAY_MIXPANEL_PROJECT_TOKEN" in line
    assert "{" not in done.stderr


def test_run_with_profile_updates_and_no_token_is_one_relay_line(tmp_path: Path) -> None:
    """Profile updates waiting without RELAY_MIXPANEL_PROJECT_TOKEN stop `relay run` at start
    with one ``relay:`` line and exit 3, not a JSON log line printed twice."""
    import relay  # noqa: PLC0415

    url = migrated_sqlite(tmp_path / "r.db")
    engine = relay.create_engine(url)
    try:
        with engine.begin() as conn:
            relay.update_profile(
                conn, distinct_id="person-1", operation="$set", properties={"plan": "pro"}
            )
    finally:
        engine.dispose()
    env = env_without_relay(RELAY_DATABASE_URL=url, RELAY_METRICS_PORT="0", **UNREACHABLE_MIXPANEL)

    done = subprocess.run(
        [RELAY, "run"], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 3, done.stderr
    assert "RELAY_MIXPANEL_PROJECT_TOKEN" in one_line(done.stderr)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _interpreter_start_cpu() -> float:
    """CPU seconds a bare interpreter takes to start on this machine now (site included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _relay_cpu_base(proc: subprocess.Popen[str], startup: float) -> float:
    """The process's CPU seconds once it became ``relay`` (the wrapper's exec) and a bare
    interpreter's start-up later: where relay's own code begins. Python's start-up is not
    relay's (a SIGINT during ``site`` is the interpreter's own failure), and on a slow machine
    it and the wrapper's took a tenth of a second of CPU already."""
    while proc.poll() is None:
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
            if len(argv) > 1 and argv[1] == RELAY.encode():
                return _cpu_seconds(proc.pid) + startup
        time.sleep(0.001)
    return 0.0


#: Run argv[1:] with SIGINT at its default, as from a terminal: a test runner started in the
#: background by a shell without job control ignores SIGINT, and its children inherit that (a
#: Ctrl-C sent before relay installs its own handler would then simply be ignored).
_WITH_DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def _relay_as_from_a_terminal(command: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """``relay <command>`` with SIGINT at its default (:data:`_WITH_DEFAULT_SIGINT`), its output
    piped as text."""
    return subprocess.Popen(
        [sys.executable, "-c", _WITH_DEFAULT_SIGINT, RELAY, command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run_env(tmp_path: Path) -> dict[str, str]:
    """Settings for a `relay run` on a migrated SQLite file and a Mixpanel that is not there."""
    return env_without_relay(
        RELAY_DATABASE_URL=migrated_sqlite(tmp_path / "r.db"),
        RELAY_METRICS_PORT="0",
        RELAY_MIXPANEL_API_URL="http://127.0.0.1:9",
        RELAY_MIXPANEL_PROJECT_TOKEN="token",
    )


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize(
    ("sig", "cpu"),
    [
        *(
            pytest.param(signal.SIGINT, cpu, id=f"SIGINT-{cpu}")
            for cpu in (0.02, 0.05, 0.07, 0.1, 0.2, 0.4, 0.8)
        ),
        pytest.param(signal.SIGTERM, 0.05, id="SIGTERM-0.05"),
    ],
)
def test_ctrl_c_while_run_starts_is_a_clean_stop(
    tmp_path: Path, sig: signal.Signals, cpu: float
) -> None:
    """SIGINT (or SIGTERM) while `relay run` is still importing, parsing and checking (after
    `cpu` seconds of its own CPU time past the interpreter's start-up, however busy or slow the
    machine) exits 0 as documented: no traceback, no "Aborted!". (At about 0.06 s, after the
    guarded import and before `run` took the signals over, click's "Aborted!" and exit 1 once
    got through.)"""
    returncode, err = _signal_while_starting("run", _run_env(tmp_path), sig, cpu)

    assert returncode == 0, err
    assert "Traceback" not in err
    assert "Aborted" not in err
    assert "KeyboardInterrupt" not in err


#: The longest :func:`_signal_while_starting` waits for the CPU time it was given.
_SIGNAL_AFTER_SECONDS = 3.0


def _signal_while_starting(
    command: str, env: dict[str, str], sig: signal.Signals, cpu: float
) -> tuple[int, str]:
    """Start ``relay <command>`` as from a terminal, send ``sig`` once it has used ``cpu``
    seconds of its own CPU time (or after :data:`_SIGNAL_AFTER_SECONDS` of waiting, when it
    blocks before using that much), and return its exit code and stderr."""
    startup = _interpreter_start_cpu()
    proc = _relay_as_from_a_terminal(command, env)
    try:
        base = _relay_cpu_base(proc, startup)
        waited_enough = time.monotonic() + _SIGNAL_AFTER_SECONDS
        while (
            proc.poll() is None
            and _cpu_seconds(proc.pid) < base + cpu
            and time.monotonic() < waited_enough
        ):
            time.sleep(0.005)
        proc.send_signal(sig)
        try:
            _out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _out, err = proc.communicate()
            pytest.fail(f"relay {command} did not stop within 60 s of {sig.name}:\n{err}")
    finally:
        proc.kill()
        proc.communicate()  # reaped and its pipes closed, whatever happened above
    return proc.returncode, err


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize(
    ("sig", "cpu"),
    [
        *(
            pytest.param(signal.SIGINT, cpu, id=f"SIGINT-{cpu}")
            for cpu in (0.02, 0.06, 0.1, 0.2, 0.4)
        ),
        pytest.param(signal.SIGTERM, 0.06, id="SIGTERM-0.06"),
        # More CPU than the drain uses before its request: the signal comes during the send.
        pytest.param(signal.SIGINT, 60.0, id="SIGINT-in-the-send"),
    ],
)
def test_ctrl_c_while_drain_starts_is_its_documented_stop(
    tmp_path: Path, sig: signal.Signals, cpu: float
) -> None:
    """SIGINT (or SIGTERM) at any moment of `relay drain`, from its import to its request,
    exits 1 with one `relay: stopped by a signal ...` line, as documented: never click's
    "Aborted!" (a Ctrl-C after the import and before drain took the signals over printed it,
    exit 1 but no reason) and never a kill by SIGTERM's default action (exit -15). The due row
    is still there, pending, its attempt not used up (a request cut short returns it)."""
    url = migrated_sqlite(tmp_path / "d.db")
    engine = create_engine(url)
    try:
        add_rows(engine, 1, at=dt.datetime.now(dt.UTC), time_ms=1_767_225_600_000)
        # Mixpanel answers after a minute: the drain is still in its request when signalled.
        with MixpanelStandin(latency_ms=60_000) as standin:
            env = env_without_relay(
                RELAY_DATABASE_URL=url, RELAY_LOG_LEVEL="WARNING", **standin.settings_env()
            )
            returncode, err = _signal_while_starting("drain", env, sig, cpu)

        assert returncode == 1, err
        assert "Traceback" not in err
        assert "Aborted" not in err
        assert "KeyboardInterrupt" not in err
        assert "stopped by a signal" in one_line(err)
        with engine.connect() as conn:
            assert conn.execute(sa.select(outbox.c.state, outbox.c.attempts)).all() == [
                ("pending", 0)
            ]
    finally:
        engine.dispose()


_SIGINT_TO_ANOTHER_THREAD = """
import signal, sys, threading, time
from relay._config import load_settings
from relay._daemon.daemon import run_daemon

def poke():
    # Once the daemon's handler is in place and its main thread waits, SIGINT goes to this
    # thread, not the main one: what the kernel may do with a signal sent to the process.
    while signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        time.sleep(0.01)
    time.sleep(1.0)
    signal.pthread_kill(threading.get_ident(), signal.SIGINT)

threading.Thread(target=poke, daemon=True).start()
sys.exit(run_daemon(load_settings()))
"""


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill")
def test_a_sigint_the_kernel_hands_to_another_thread_still_stops_the_daemon(
    tmp_path: Path,
) -> None:
    """SIGINT delivered to one of the daemon's other threads (the kernel's choice for a signal
    sent to the process) still stops it within seconds: CPython runs the handler only in the
    main thread, which an unbounded wait would never wake to do (python/cpython#85300)."""
    env = _run_env(tmp_path)
    try:
        done = subprocess.run(
            [sys.executable, "-c", _SIGINT_TO_ANOTHER_THREAD],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the daemon slept through SIGINT for 60 s; it printed:\n{exc.stderr!r}")
    assert done.returncode == 0, done.stderr
    assert "daemon_stopping" in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["run"], "run"),
        (["--database-url", "run", "stats"], "stats"),
        (["--version"], None),
        (["-h", "drain", "--json"], "drain"),
    ],
)
def test_the_entry_point_finds_the_command_word_before_click_is_imported(
    args: list[str], word: str | None
) -> None:
    """The entry point names the subcommand without click (to choose Ctrl-C's exit code while
    importing): the first word that is not an option or the value of --database-url."""
    from relay.__main__ import _command_word  # noqa: PLC0415

    assert _command_word(args) == word


# --- relay drain and signals -----------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_relay_drain_mid_request_and_hands_its_rows_back(
    tmp_path: Path, start_standin: StartStandin, signum: int
) -> None:
    """SIGINT or SIGTERM during a long `relay drain` (each request held 3 s) stops it within
    seconds, not after the backlog: exit 1 with one line saying so, no traceback, and every
    row either delivered or back pending, unleased, its attempt returned."""
    standin = start_standin(latency_ms=3000)
    url = migrated_sqlite(tmp_path / "r.db")
    engine = create_engine(url)
    try:
        add_rows(engine, 40, at=dt.datetime.now(dt.UTC), time_ms=1_767_225_600_000)
        env = env_without_relay(
            RELAY_DATABASE_URL=url, RELAY_BATCH_MAX_EVENTS="5", **standin.settings_env()
        )
        proc = _relay_as_from_a_terminal("drain", env)
        try:
            wait_for(lambda: standin.stats().requests > 0, "a first /import request")
            proc.send_signal(signum)
            _out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
            proc.communicate()
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(outbox.c.state, outbox.c.lease_token, outbox.c.attempts)
            ).all()
    finally:
        engine.dispose()

    assert proc.returncode == 1, err
    last = err.strip().splitlines()[-1]  # after the relay's own log lines
    assert last.startswith("relay: stopped by a signal before everything due"), err
    assert "Traceback" not in err
    states = {state for state, _token, _attempts in rows}
    assert states <= {"pending", "delivered"}
    # The backlog is 8 requests of 3 s each: a drain that ran on to its end (as one waiting
    # for its threads after a KeyboardInterrupt would) leaves nothing pending.
    assert "pending" in states
    pending = [(token, attempts) for state, token, attempts in rows if state == "pending"]
    assert all(token is None and attempts == 0 for token, attempts in pending), pending
