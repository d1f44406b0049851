"""The operator subcommands through the ``relay`` entry point (click's runner, real databases)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine

from relay import _store as store
from relay._mixpanel.encoding import encode_event
from relay._store.throttle import record_throttle
from relay._tables import OutboxState, audit, outbox
from relay.cli import main

#: The commands run with the real clock, so rows are placed relative to it.
NOW = dt.datetime.now(dt.UTC)
EVENT = "svc.test.thing_done"
OTHER = "svc.test.other_done"


def _values(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "insert_id": str(uuid.uuid4()),
        "event": EVENT,
        "distinct_id": "user-1",
        "time_ms": 1_767_225_600_000,
        "properties": {"organization_id": "org-1", "plan": "pro"},
        "next_attempt_at": NOW,
        "created_at": NOW - dt.timedelta(days=2),
        "updated_at": NOW - dt.timedelta(days=2),
    }
    values.update(overrides)
    return values


def _add(engine: Engine, count: int = 1, **overrides: Any) -> list[int]:
    rows = [_values(**overrides) for _ in range(count)]
    with store.transaction(engine) as conn:
        for values in rows:
            store.insert_event(conn, values=values)
        return list(
            conn.execute(
                sa.select(outbox.c.id)
                .where(outbox.c.insert_id.in_([r["insert_id"] for r in rows]))
                .order_by(outbox.c.id)
            ).scalars()
        )


def _dead(reason: str = "properties.plan: bad plan", age_days: float = 1) -> dict[str, Any]:
    return {
        "state": OutboxState.DEAD.value,
        "attempts": 2,
        "last_error": reason,
        "finished_at": NOW - dt.timedelta(days=age_days),
    }


def _delivered(age_days: float = 1) -> dict[str, Any]:
    return {
        "state": OutboxState.DELIVERED.value,
        "attempts": 1,
        "finished_at": NOW - dt.timedelta(days=age_days),
    }


def _table(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(outbox).order_by(outbox.c.id))]


def _audit_rows(engine: Engine) -> list[sa.Row[Any]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(audit).order_by(audit.c.id)))


def _relay(engine: Engine, *args: str) -> Result:
    url = engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(main, ["--database-url", url, *args], catch_exceptions=False)


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


@pytest.fixture
def mixed(engine: Engine) -> Engine:
    """Two dead letters, one delivered row and one pending row of EVENT, one dead of OTHER."""
    _add(engine, 2, **_dead())
    _add(engine, 1, **_delivered(age_days=10))
    _add(engine, 1)
    _add(engine, 1, event=OTHER, **_dead("other cause", age_days=40))
    return engine


# --- bad input ---------------------------------------------------------------------------------

BAD_FILTERS = [
    pytest.param(["replay", "--event", "svc.nope.thing_done"], "svc.nope.thing_done", id="event"),
    pytest.param(["replay", "--state", "sent"], "unknown state 'sent'", id="state"),
    pytest.param(["replay", "--created-after", "2026-13-01T00:00Z"], "2026-13-01", id="date"),
    pytest.param(["replay", "--event-time-before", "2026-03-01T00:00"], "UTC offset", id="naive"),
    pytest.param(
        ["replay", "--created-after", "1d", "--created-before", "2d"], "empty", id="range"
    ),
    pytest.param(["replay"], "empty filter", id="empty"),
    pytest.param(["dead-letters", "requeue", "--event", "svc.nope.x_done"], "svc.nope", id="rq"),
    pytest.param(
        ["dead-letters", "discard", "--reason", "x", "--created-before", "tomorrow"],
        "tomorrow",
        id="discard-date",
    ),
    pytest.param(["export", "--state", "sent"], "'sent'", id="export-state"),
    pytest.param(["purge", "--delivered-older-than", "7 days"], "7 days", id="duration"),
    pytest.param(["purge"], "--delivered-older-than", id="no-window"),
]


@pytest.mark.parametrize(("args", "named"), BAD_FILTERS)
def test_bad_filter_exits_2_naming_the_problem_and_changes_nothing(
    mixed: Engine, args: list[str], named: str
) -> None:
    """Each bad filter exits 2 with a message naming it; no row changes, no audit entry appears."""
    before = _table(mixed)
    executes = [] if args[0] in ("export", "purge") else ["--yes"]

    result = _relay(mixed, *args, *executes)

    assert result.exit_code == 2
    assert named in result.stderr
    assert _table(mixed) == before
    assert _audit_rows(mixed) == []


def test_inspect_of_an_unknown_id_exits_2_naming_it(engine: Engine) -> None:
    """Inspecting an id that names no event exits 2 and says which key was not found."""
    result = _relay(engine, "inspect", "987654")

    assert result.exit_code == 2
    assert "'987654'" in result.stderr


# --- dry runs and the audit trail -------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["replay", "--state", "dead"], id="replay"),
        pytest.param(["dead-letters", "requeue", "--all"], id="requeue"),
        pytest.param(["dead-letters", "discard", "--all", "--reason", "why"], id="discard"),
        pytest.param(["purge", "--delivered-older-than", "0s", "--dry-run"], id="purge"),
    ],
)
def test_dry_runs_change_nothing_and_write_no_audit_entry(mixed: Engine, args: list[str]) -> None:
    """Without --yes (or with purge --dry-run) the commands only report."""
    before = _table(mixed)

    result = _relay(mixed, *args)

    assert result.exit_code == 0, result.output
    assert _table(mixed) == before
    assert _audit_rows(mixed) == []


def test_replay_dry_run_json_reports_count_breakdown_and_sample(mixed: Engine) -> None:
    """The dry run's JSON carries the count, the per-(event, state) breakdown and a sample."""
    report = _json(_relay(mixed, "replay", "--state", "dead", "--json", "--sample", "1"))

    assert report["dry_run"] is True
    assert report["count"] == 3
    assert [(b["event"], b["state"], b["count"]) for b in report["breakdown"]] == [
        (OTHER, "dead", 1),
        (EVENT, "dead", 2),
    ]
    assert len(report["sample"]) == 1


def test_every_mutating_command_writes_an_audit_entry(mixed: Engine) -> None:
    """replay, requeue, discard and purge each leave one entry: actor, action, filter, count."""
    runs = [
        ["replay", "--event", EVENT, "--state", "delivered", "--yes"],
        ["dead-letters", "requeue", "--error", "properties.plan: bad plan", "--yes"],
        ["dead-letters", "discard", "--event", OTHER, "--reason", "test data", "--yes"],
        ["purge", "--delivered-older-than", "7d", "--dead-older-than", "30d"],
    ]
    for args in runs:
        result = _relay(mixed, *args, "--actor", "ops-bot")
        assert result.exit_code == 0, result.output

    entries = _json(_relay(mixed, "audit", "--json"))

    assert [(e["action"], e["count"], e["actor"]) for e in reversed(entries)] == [
        ("replay", 1, "ops-bot"),
        ("requeue", 2, "ops-bot"),
        ("discard", 1, "ops-bot"),
        ("purge", 0, "ops-bot"),
    ]
    replay_entry = entries[-1]
    assert replay_entry["filter"] == {"events": [EVENT], "states": ["delivered"]}
    assert "test data" in entries[1]["detail"]
    assert set(entries[0]["filter"]) == {"delivered_finished_before", "dead_finished_before"}


def test_audit_lists_newest_first_up_to_the_limit(engine: Engine) -> None:
    """`relay audit --limit N` shows the N newest entries, newest first, as a table."""
    _add(engine, 1, **_dead())
    for _ in range(3):
        assert _relay(engine, "replay", "--all", "--yes").exit_code == 0

    result = _relay(engine, "audit", "--limit", "2")

    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["ID", "AT", "ACTOR", "ACTION"]
    assert [int(line.split()[0]) for line in lines[1:]] == [3, 2]


def test_executed_replay_reports_counts_and_its_audit_entry(mixed: Engine) -> None:
    """`replay --yes --json` reports what was replayed and skipped, and the audit entry's id."""
    report = _json(_relay(mixed, "replay", "--state", "dead", "--yes", "--json"))

    assert report == {
        "dry_run": False,
        "replayed": 3,
        "skipped": 0,
        "superseded": 0,
        "batches": 1,
        "audit_id": 1,
    }


def test_replay_skipping_leased_rows_says_so(engine: Engine) -> None:
    """A replay that meets rows leased by a relay says it skipped them."""
    _add(engine, 1, lease_token="c" * 32, next_attempt_at=NOW + dt.timedelta(hours=1))

    result = _relay(engine, "replay", "--state", "pending", "--yes")

    assert result.exit_code == 0
    assert "skipped 1 events leased by a running relay" in result.stdout


def test_purge_deletes_old_finished_rows_in_batches_and_keeps_pending(mixed: Engine) -> None:
    """purge deletes delivered and dead rows past their windows, batch by batch; pending stay."""
    report = _json(
        _relay(
            mixed,
            "purge",
            "--delivered-older-than",
            "7d",
            "--dead-older-than",
            "30d",
            "--batch-size",
            "1",
            "--json",
        )
    )

    assert (report["delivered"], report["dead"]) == (1, 1)
    with mixed.connect() as conn:
        states = sorted(conn.execute(sa.select(outbox.c.state)).scalars())
    assert states == ["dead", "dead", "pending"]


# --- reading -----------------------------------------------------------------------------------


def test_stats_json_reports_the_backlog(mixed: Engine) -> None:
    """stats --json has pending, due, dead by reason, delivered windows and pending per event."""
    _add(mixed, 1, **_delivered(age_days=0.01))

    s = _json(_relay(mixed, "stats", "--json"))

    assert (s["pending"], s["due"], s["inflight"], s["dead"]) == (1, 1, 0, 3)
    assert s["dead_by_reason"] == {"properties.plan: bad plan": 2, "other cause": 1}
    assert (s["delivered_last_hour"], s["delivered_last_day"]) == (1, 1)
    assert s["pending_by_event"] == {EVENT: 1}
    assert s["oldest_pending_age_seconds"] >= 2 * 86_400


def test_stats_names_mixpanels_throttle_when_the_relays_share_one(engine: Engine) -> None:
    """stats says Mixpanel is rate-limiting, at which level and until when, and that no
    attempt is used; without a throttle it says nothing of it."""
    quiet = _relay(engine, "stats")
    with store.transaction(engine) as conn:
        record_throttle(
            conn,
            now=dt.datetime.now(dt.UTC),
            delay=lambda _level: 600.0,
            actor="relay@host:7",
        )

    shown = _relay(engine, "stats")

    assert "rate-limiting" not in quiet.output
    assert "delivery rate, last minute" in shown.output
    assert "Mixpanel is rate-limiting the project (HTTP 429): backoff level 1" in shown.output
    assert "booked by relay@host:7; no attempt is used" in shown.output


def test_inspect_shows_the_exact_json_the_relay_sends(engine: Engine) -> None:
    """inspect prints byte for byte the /import event the relay's own claim would encode."""
    (row_id,) = _add(engine, properties={"organization_id": "org-1", "nested": {"b": 2, "a": 1}})

    shown = _relay(engine, "inspect", str(row_id))
    as_json = _json(_relay(engine, "inspect", str(row_id), "--json"))
    with store.transaction(engine, write=True) as conn:
        (claimed,) = store.claim(conn, now=NOW, limit=1, lease_seconds=60).events
    sent = encode_event(claimed)

    assert shown.exit_code == 0
    assert shown.stdout.splitlines()[-1] == sent.decode()
    assert as_json["import_event"] == orjson.loads(sent)
    assert (as_json["id"], as_json["state"], as_json["attempts"]) == (row_id, "pending", 0)


def test_inspect_finds_an_event_by_its_insert_id(engine: Engine) -> None:
    """inspect accepts a $insert_id as well as an outbox id."""
    (row_id,) = _add(engine, insert_id="ins-inspect-1")

    assert _json(_relay(engine, "inspect", "ins-inspect-1", "--json"))["id"] == row_id


def test_export_writes_selected_events_as_import_json_lines(mixed: Engine, tmp_path: Path) -> None:
    """export writes one /import event per line, in id order, for exactly the selection."""
    target = tmp_path / "dead.jsonl"

    result = _relay(mixed, "export", "--state", "dead", "--event", EVENT, "--output", str(target))

    assert result.exit_code == 0, result.output
    lines = target.read_bytes().splitlines()
    with mixed.connect() as conn:
        expected = conn.execute(
            sa.select(outbox.c.insert_id, outbox.c.time_ms)
            .where(outbox.c.state == "dead", outbox.c.event == EVENT)
            .order_by(outbox.c.id)
        ).all()
    events = [orjson.loads(line) for line in lines]
    assert [(e["properties"]["$insert_id"], e["properties"]["time"]) for e in events] == [
        tuple(r) for r in expected
    ]
    assert {e["event"] for e in events} == {EVENT}
    assert "exported 2 events" in result.stderr


def test_export_to_stdout_streams_json_lines(mixed: Engine) -> None:
    """Without --output, export writes the JSON Lines to stdout and nothing else."""
    result = _relay(mixed, "export", "--all")

    assert result.exit_code == 0
    assert len([orjson.loads(line) for line in result.stdout_bytes.splitlines()]) == 5


def test_dead_letters_list_groups_by_reason(mixed: Engine) -> None:
    """dead-letters list --json has one group per reason with its count and events."""
    groups = _json(_relay(mixed, "dead-letters", "list", "--json"))

    assert [(g["reason"], g["count"], g["events"]) for g in groups] == [
        ("properties.plan: bad plan", 2, {EVENT: 2}),
        ("other cause", 1, {OTHER: 1}),
    ]


def test_dead_letters_show_prints_the_row_and_its_reason(mixed: Engine) -> None:
    """dead-letters show prints one dead letter with its last error."""
    with mixed.connect() as conn:
        row_id = conn.execute(
            sa.select(sa.func.min(outbox.c.id)).where(outbox.c.state == "dead")
        ).scalar_one()

    result = _relay(mixed, "dead-letters", "show", str(row_id))

    assert result.exit_code == 0
    assert "properties.plan: bad plan" in result.stdout


@pytest.mark.parametrize("command", ["replay", "stats", "inspect", "purge", "export", "audit"])
def test_help_documents_the_exit_codes(command: str) -> None:
    """Every operator command's help states the exit codes."""
    result = CliRunner().invoke(main, [command, "--help"])

    assert "Exit codes: 0" in result.stdout
