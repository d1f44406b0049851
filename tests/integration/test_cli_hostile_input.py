"""The CLI under hostile input: forged text in stored rows and remote answers, values past every
bound, batches past PostgreSQL's bind-parameter limit (click's runner, real databases)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine

from relay import _store as store
from relay._tables import OutboxState, audit, outbox
from relay.cli import main
from relay.testing.mixpanel_standin import MixpanelStandin

NOW = dt.datetime.now(dt.UTC)
EVENT = "svc.test.thing_done"
#: A 401 body that, printed raw, would end the line, forge a log line and paint the terminal.
FORGED = "bad key\n2026-01-01T00:00:00Z relay: all good, 0 errors\x1b[2J\x1b[31m\x9b0m\u202e"
FORGED_LINE = "2026-01-01T00:00:00Z relay: all good"


def _relay(engine: Engine, *args: str, env: dict[str, str] | None = None) -> Result:
    url = engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(main, ["--database-url", url, *args], catch_exceptions=False, env=env)


def _values(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "insert_id": str(uuid.uuid4()),
        "event": EVENT,
        "distinct_id": "user-1",
        "time_ms": 1_767_225_600_000,
        "properties": {"organization_id": "org-1"},
        "next_attempt_at": NOW,
        "created_at": NOW - dt.timedelta(days=2),
        "updated_at": NOW - dt.timedelta(days=2),
    }
    values.update(overrides)
    return values


def _dead(engine: Engine, reason: str) -> int:
    values = _values(state=OutboxState.DEAD.value, attempts=1, last_error=reason, finished_at=NOW)
    with store.transaction(engine) as conn:
        store.insert_event(conn, values=values)
        return int(
            conn.execute(
                sa.select(outbox.c.id).where(outbox.c.insert_id == values["insert_id"])
            ).scalar_one()
        )


def _assert_escaped(output: str) -> None:
    assert "\x1b" not in output
    assert "\x9b" not in output
    assert "\u202e" not in output
    assert not any(line.startswith(FORGED_LINE) for line in output.splitlines())


# --- stored and remote text ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["dead-letters", "list"],
        ["stats"],
        ["replay", "--state", "dead"],
        ["dead-letters", "requeue", "--error-contains", "bad key"],
        ["dead-letters", "show", "{id}"],
        ["inspect", "{id}"],
    ],
)
def test_stored_error_text_is_printed_escaped(engine: Engine, command: list[str]) -> None:
    """A last_error with a newline and escape codes can neither forge a line nor colour the tty."""
    row_id = _dead(engine, FORGED)
    result = _relay(engine, *[part.format(id=row_id) for part in command])
    assert result.exit_code == 0, result.output
    assert "bad key\\n2026" in result.output  # shown, escaped
    _assert_escaped(result.output)


@pytest.mark.parametrize("as_json", [False, True])
def test_audit_detail_and_actor_are_printed_escaped(engine: Engine, as_json: bool) -> None:
    """An audit entry whose actor and reason carry control characters is listed escaped."""
    _dead(engine, "gone")
    done = _relay(
        engine,
        "dead-letters",
        "discard",
        "--error",
        "gone",
        "--reason",
        FORGED,
        "--actor",
        FORGED,
        "--yes",
    )
    assert done.exit_code == 0, done.output
    result = _relay(engine, "audit", *(["--json"] if as_json else []))
    assert result.exit_code == 0, result.output
    _assert_escaped(result.output)


def test_an_auth_error_from_mixpanel_is_printed_escaped(engine: Engine) -> None:
    """The 401 text relay drain prints is escaped: the remote body forges no line."""
    with store.transaction(engine) as conn:
        store.insert_event(conn, values=_values())
    with MixpanelStandin() as standin:
        standin.fail_next(401, error=FORGED)
        result = _relay(engine, "drain", env=standin.settings_env())
    assert result.exit_code == 3, result.output
    assert "bad key\\n2026" in result.output
    _assert_escaped(result.output)


# --- bounds ------------------------------------------------------------------------------------

OUT_OF_BOUNDS = [
    pytest.param(["replay", "--created-after", "999999999d"], id="duration-days"),
    pytest.param(["replay", "--created-after", "99999999999999999999999w"], id="duration-huge"),
    pytest.param(["replay", "--created-before", "9999-12-31T23:59:59-23:59"], id="past-9999"),
    pytest.param(["replay", "--event-time-after", "0001-01-01T00:00:00+00:01"], id="before-1"),
    pytest.param(["replay", "--event-time-before", "0999-12-31T00:00:00Z"], id="before-1000"),
    pytest.param(["replay", "--id", "99999999999999999999999"], id="id-huge"),
    pytest.param(["replay", "--id", "9223372036854775808"], id="id-64-bit"),
    pytest.param(["export", "--created-after", "999999999d"], id="export-duration"),
    pytest.param(["dead-letters", "requeue", "--id", "99999999999999999999"], id="requeue-id"),
    pytest.param(
        ["dead-letters", "discard", "--reason", "x", "--created-after", "999999999d"],
        id="discard-duration",
    ),
    pytest.param(["purge", "--delivered-older-than", "999999999d"], id="purge-duration"),
    pytest.param(["purge", "--dead-older-than", "99999999999999999999999s"], id="purge-seconds"),
    pytest.param(["purge", "--dead-older-than", "7d", "--batch-size", "1" + "0" * 20], id="pb"),
    pytest.param(["inspect", "id:99999999999999999999"], id="inspect-id"),
    pytest.param(["dead-letters", "show", "id:99999999999999999999"], id="show-id"),
    pytest.param(["audit", "--limit", "1" + "0" * 20], id="audit-limit"),
    pytest.param(["replay", "--state", "dead", "--sample", "1" + "0" * 20], id="sample"),
    pytest.param(["replay", "--state", "dead", "--batch-size", "1" + "0" * 20], id="batch"),
]


@pytest.mark.parametrize("args", OUT_OF_BOUNDS)
def test_values_past_their_bounds_exit_2_with_one_line(engine: Engine, args: list[str]) -> None:
    """Durations, instants, ids and sizes the database cannot hold are refused with exit 2 and
    one line, never a traceback, and nothing is changed or audited."""
    _dead(engine, "gone")
    result = _relay(engine, *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    # One error line (relay's own, or click's after its usage hint), nothing else.
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("relay: ", "Error: "))]
    assert len(errors) == 1, result.output
    assert set(lines) - set(errors) <= {
        line for line in lines if line.startswith(("Usage: ", "Try "))
    }
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit)).scalar_one() == 0
        assert conn.execute(sa.select(outbox.c.state)).scalars().all() == ["dead"]


def test_a_numeric_key_past_63_bits_is_looked_up_as_an_insert_id(engine: Engine) -> None:
    """inspect of a bare number too large for an id looks up that $insert_id: exit 2, not found."""
    result = _relay(engine, "inspect", "99999999999999999999")
    assert result.exit_code == 2, result.output
    assert "no outbox event" in result.output


# --- batches past the bind-parameter limit ------------------------------------------------------

BIG = 70_000


def _dead_rows_on_postgresql(engine: Engine, count: int, *, reason: str) -> None:
    """``count`` dead rows alike but for their ids, copied by the server from one inserted row
    (an ``executemany`` of 70,000 rows took 8 s of the test)."""
    values = _values(state=OutboxState.DEAD.value, attempts=1, last_error=reason, finished_at=NOW)
    copied = [c.name for c in outbox.columns if c.name not in ("id", "insert_id")]
    names = ", ".join(copied)
    with engine.begin() as conn:
        conn.execute(sa.insert(outbox), [values])
        conn.exec_driver_sql(
            f"INSERT INTO {outbox.name} (insert_id, {names}) "  # noqa: S608 - relay's own names
            f"SELECT gen_random_uuid()::text, {names} FROM {outbox.name} "
            f"CROSS JOIN generate_series(2, {count:d})"
        )


@pytest.mark.heavy
def test_replay_with_a_batch_larger_than_postgresql_bind_limit_works(pg_engine: Engine) -> None:
    """replay --batch-size 100000 requeues 70,000 dead rows in one batch on PostgreSQL, whose
    statements take at most 65,535 bind parameters."""
    _dead_rows_on_postgresql(pg_engine, BIG, reason="gone")
    result = _relay(pg_engine, "replay", "--state", "dead", "--batch-size", "100000", "--yes")
    assert result.exit_code == 0, result.output
    assert f"replayed {BIG} events in 1 batch" in result.output
    with pg_engine.connect() as conn:
        states = dict(
            conn.execute(sa.select(outbox.c.state, sa.func.count()).group_by(outbox.c.state)).all()
        )
    assert states == {"pending": BIG}


@pytest.mark.heavy
def test_discard_with_a_batch_larger_than_postgresql_bind_limit_works(pg_engine: Engine) -> None:
    """dead-letters discard --batch-size 100000 deletes 70,000 dead rows in one batch."""
    _dead_rows_on_postgresql(pg_engine, BIG, reason="gone")
    result = _relay(
        pg_engine,
        "dead-letters",
        "discard",
        "--error",
        "gone",
        "--reason",
        "test",
        "--batch-size",
        "100000",
        "--yes",
    )
    assert result.exit_code == 0, result.output
    with pg_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one() == 0


# --- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize("hours", ["0", "0.5"])
def test_dead_retention_below_one_hour_is_a_configuration_error(engine: Engine, hours: str) -> None:
    """RELAY_DEAD_RETENTION_HOURS under 1 stops every command with exit 3 naming the setting."""
    result = _relay(engine, "stats", env={"RELAY_DEAD_RETENTION_HOURS": hours})
    assert result.exit_code == 3, result.output
    assert "RELAY_DEAD_RETENTION_HOURS" in result.output
    assert "configuration error" in result.output


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RELAY_MIGRATE_LOCK_TIMEOUT_MS", "abc"),
        ("RELAY_MIGRATE_LOCK_TIMEOUT_MS", "0"),
        ("RELAY_MIGRATE_LOCK_RETRY_SECONDS", "-1"),
    ],
)
def test_a_bad_migrate_lock_setting_stops_migrate_before_any_ddl(
    engine: Engine, name: str, value: str
) -> None:
    """The migration's lock settings are RelaySettings: a bad one exits 3 naming it, no value."""
    result = _relay(engine, "migrate", env={name: value})
    assert result.exit_code == 3, result.output
    assert name in result.output
    assert f"'{value}'" not in result.output
    assert len(result.output.strip().splitlines()) == 1
