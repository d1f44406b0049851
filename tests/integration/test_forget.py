"""``relay forget``: one person's rows leave every relay table; the audit keeps a keyed hash."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
import uuid
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import relay
from relay import _store as store
from relay._store import audit as audit_store
from relay._tables import audit, metadata, outbox
from relay.cli import main
from relay.testing.mixpanel_standin import MixpanelStandin

PERSON = "person-7f3a9c"
OTHER = "person-other"
KEY = "erasure-test-key"


def _event(distinct_id: str, state: str = "pending") -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {
        "insert_id": str(uuid.uuid4()),
        "event": "svc.test.thing_done",
        "distinct_id": distinct_id,
        "time_ms": int((time.time() - 60) * 1000),
        "properties": {"organization_id": "org-1"},
        "state": state,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def _seed(engine: Engine) -> None:
    with store.transaction(engine) as conn:
        for state in ("pending", "delivered", "dead"):
            store.insert_event(conn, values=_event(PERSON, state))
        store.insert_event(conn, values=_event(OTHER))
        audit_store.add_entry(
            conn,
            at=dt.datetime.now(dt.UTC),
            actor="ops",
            action="replay",
            filter={"distinct_ids": [PERSON, OTHER]},
            count=1,
            detail="finished: 1 requeued",
        )
    with Session(engine) as session:
        for who in (PERSON, OTHER):
            relay.update_profile(
                session, distinct_id=who, operation="$set", properties={"plan": "pro"}, strict=True
            )
        relay.update_group(
            session,
            group_key="organization_id",
            group_id="org-1",
            operation="$set",
            properties={"organization_name": "Acme"},
            strict=True,
        )
        session.commit()


def _everything(engine: Engine) -> str:
    """Every row of every relay table, as text."""
    with engine.connect() as conn:
        return "\n".join(
            repr(row) for table in metadata.sorted_tables for row in conn.execute(sa.select(table))
        )


def _forget(engine: Engine, *args: str, **env: str) -> Result:
    url = engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(
        main, ["--database-url", url, "forget", *args], env=env, catch_exceptions=False
    )


def test_dry_run_counts_and_changes_nothing(engine: Engine) -> None:
    """Without --yes the command counts the person's rows by kind and state, never shows the
    id, and leaves every table as it was."""
    _seed(engine)
    before = _everything(engine)
    result = _forget(engine, "--distinct-id", PERSON, RELAY_ERASURE_HASH_KEY=KEY)
    assert result.exit_code == 0, result.output
    assert "would erase 4 row(s)" in result.output
    assert PERSON not in result.output
    assert _everything(engine) == before


def test_forget_leaves_nothing_of_the_person_in_any_table(engine: Engine) -> None:
    """--yes erases the person's events (every state) and profile updates, rewrites the
    audit entry that named them, and audits itself under HMAC-SHA256(key, id); the other
    person's rows and the group update stay."""
    _seed(engine)
    result = _forget(engine, "--distinct-id", PERSON, "--yes", RELAY_ERASURE_HASH_KEY=KEY)
    assert result.exit_code == 0, result.output
    everything = _everything(engine)
    assert PERSON not in everything
    assert OTHER in everything
    digest = hmac.new(KEY.encode(), PERSON.encode(), hashlib.sha256).hexdigest()
    with engine.connect() as conn:
        entry = conn.execute(sa.select(audit).where(audit.c.action == "forget")).one()
        kinds = sorted(conn.execute(sa.select(outbox.c.kind, outbox.c.distinct_id)).all())
    assert entry.filter["person"] == f"hmac-sha256:{digest}"
    assert entry.count == 4
    assert kinds == [("event", OTHER), ("group", "org-1"), ("user", OTHER)]
    again = _forget(engine, "--distinct-id", PERSON, "--yes", RELAY_ERASURE_HASH_KEY=KEY)
    assert "erased 0 row(s)" in again.output


def test_forget_without_the_hash_key_is_a_configuration_error(engine: Engine) -> None:
    """No RELAY_ERASURE_HASH_KEY: exit 3 naming the setting, nothing touched; an empty id is
    bad usage (exit 2)."""
    _seed(engine)
    before = _everything(engine)
    result = _forget(engine, "--distinct-id", PERSON, "--yes")
    assert result.exit_code == 3
    assert "RELAY_ERASURE_HASH_KEY" in result.output
    assert _forget(engine, "--distinct-id", " ", RELAY_ERASURE_HASH_KEY=KEY).exit_code == 2
    assert _everything(engine) == before


def test_forget_with_mixpanel_files_a_gdpr_deletion(
    sqlite_engine: Engine, standin: MixpanelStandin
) -> None:
    """--mixpanel files a GDPR deletion of the id with the bearer token and the project token;
    its task id lands in the audit entry. A refused token (401) erases nothing and exits 3, the
    configuration exit code."""
    _seed(sqlite_engine)
    env = {
        "RELAY_ERASURE_HASH_KEY": KEY,
        "RELAY_MIXPANEL_APP_API_URL": standin.app_api_url,
        "RELAY_MIXPANEL_PROJECT_TOKEN": standin.project_token,
    }
    before = _everything(sqlite_engine)
    refused = _forget(
        sqlite_engine,
        "--distinct-id",
        PERSON,
        "--yes",
        "--mixpanel",
        **env,
        RELAY_MIXPANEL_GDPR_TOKEN="wrong",
    )
    assert refused.exit_code == 3  # a refused token is a configuration error
    assert "HTTP 401" in refused.output
    assert PERSON not in refused.output
    assert _everything(sqlite_engine) == before
    result = _forget(
        sqlite_engine,
        "--distinct-id",
        PERSON,
        "--yes",
        "--mixpanel",
        **env,
        RELAY_MIXPANEL_GDPR_TOKEN=standin.oauth_token,
    )
    assert result.exit_code == 0, result.output
    (job,) = standin.gdpr_jobs()
    assert (job.kind, job.distinct_ids, job.compliance_type) == ("deletion", (PERSON,), "GDPR")
    assert job.task_id in _everything(sqlite_engine)
    assert PERSON not in _everything(sqlite_engine)


def _entry(engine: Engine, **values: Any) -> None:
    with store.transaction(engine) as conn:
        audit_store.add_entry(conn, at=dt.datetime.now(dt.UTC), actor="ops", count=1, **values)


def _entries(engine: Engine) -> list[tuple[str, dict[str, Any], str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit.c.action, audit.c.filter, audit.c.detail)
            .where(audit.c.action != "forget")
            .order_by(audit.c.id)
        )
        return [(str(a), dict(f), d) for a, f, d in rows]


def test_forget_rewrites_the_id_where_a_filter_holds_it_and_nowhere_else(engine: Engine) -> None:
    """Erasing `42` replaces it in the replay filter that listed it, and leaves another
    person's `1420`, a filter time `00:42:00`, a reason `INC-4242` and an insert id `42` as
    they were (the old rewrite replaced the substring in all of them)."""
    _entry(engine, action="replay", filter={"distinct_ids": ["42", "1420"]}, detail="finished")
    _entry(engine, action="replay", filter={"distinct_ids": ["1420"]}, detail="finished")
    _entry(
        engine,
        action="replay",
        filter={"created_before": "2026-12-01T00:42:00+00:00"},
        detail="finished: 42 requeued",
    )
    _entry(engine, action="discard", filter={"states": ["dead"]}, detail="INC-4242")
    _entry(engine, action="replay", filter={"insert_ids": ["42"]}, detail="finished")
    untouched = _entries(engine)[1:]

    result = _forget(engine, "--distinct-id", "42", "--yes", RELAY_ERASURE_HASH_KEY=KEY)

    assert result.exit_code == 0, result.output
    digest = hmac.new(KEY.encode(), b"42", hashlib.sha256).hexdigest()
    entries = _entries(engine)
    assert entries[0][1] == {"distinct_ids": [f"hmac-sha256:{digest}", "1420"]}
    assert entries[1:] == untouched
    with engine.connect() as conn:
        detail = conn.execute(sa.select(audit.c.detail).where(audit.c.action == "forget"))
        assert "1 audit entr" in detail.scalar_one()
