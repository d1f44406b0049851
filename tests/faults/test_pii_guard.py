"""The PII guard end to end: refused data never reaches the outbox, the logs or the errors.

An email used as a dict key, disguised emails and phone numbers, and personal data pasted into
the event name go through ``track()`` on PostgreSQL, in default and strict mode, inside a
business transaction that also tracks a clean event and commits. Only the clean event may be
stored. A separate host process logs the same refusals with the relay's real logging
configuration, and none of the refused strings may appear in what it wrote.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from pii_log_probe import BASE, EVENT, REFUSED_CALLS, SECRETS
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from relay._errors import EventContractError, EventValidationError
from relay._event.limits import check_properties
from relay._event.pii import normalise
from relay._tables import outbox
from relay._tracking import track

PROBE = Path(__file__).with_name("pii_log_probe.py")
#: The start of a console log line: its timestamp, whose digits could match by chance.
_CONSOLE_TIMESTAMP = re.compile(r"^\S+Z ", re.MULTILINE)


def _stored_properties(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(sa.cast(outbox.c.properties, sa.Text))).scalars())


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_an_email_as_a_dict_key_never_reaches_the_outbox_on_postgresql(
    pg_engine: Engine, strict: bool
) -> None:
    """Refused keys and values leave no row; the clean event of the same transaction is stored."""
    with Session(pg_engine) as session:
        clean = track(
            session,
            event=EVENT,
            distinct_id="u-1",
            properties={**BASE, "payload": {"answers": 3}},
            strict=True,
        )
        for change in REFUSED_CALLS:
            arguments = {"event": EVENT, "distinct_id": "u-1", "properties": BASE, **change}
            if strict:
                with pytest.raises(EventContractError):
                    track(session, **arguments, strict=True)
            else:
                assert track(session, **arguments, strict=False) is None
        session.commit()  # the business transaction is never poisoned by a refusal
    stored = _stored_properties(pg_engine)
    assert clean is not None
    assert len(stored) == 1, stored
    assert json.loads(stored[0])["payload"] == {"answers": 3}
    with pg_engine.connect() as conn:
        columns = conn.execute(sa.select(outbox.c.event, outbox.c.distinct_id)).one()
    assert tuple(columns) == (EVENT, "u-1")


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_refusals_leave_no_trace_in_real_log_output_or_strict_errors(
    tmp_path: Path, log_format: str
) -> None:
    """A host process's stderr and its strict errors show positions and lengths, never the data."""
    database_url = f"sqlite:///{tmp_path / 'host.db'}"
    probe = subprocess.run(
        [sys.executable, str(PROBE), database_url, log_format],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=PROBE.parent,
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert probe.stdout.strip().endswith(f"done {len(REFUSED_CALLS)}"), probe.stdout
    logged = [
        line for line in probe.stderr.splitlines() if "mixpanel_event_tracking_failed" in line
    ]
    if log_format == "json":
        records = [json.loads(line) for line in logged]
        assert all(record["level"] == "error" for record in records)
        for record in records:
            del record["timestamp"]
        text = "\n".join(json.dumps(record, ensure_ascii=False) for record in records)
    else:
        text = _CONSOLE_TIMESTAMP.sub("", "\n".join(logged))
    text += "\n" + probe.stdout
    for secret in SECRETS:
        for form in {secret, normalise(secret), secret.encode("unicode_escape").decode()}:
            assert form not in text, f"{form!r} leaked into:\n{text}"
    for fragment in ("zqxjane", "zqxexample", "zqxexa", "7946", "0958"):
        assert fragment not in text, f"{fragment!r} leaked into:\n{text}"
    assert "accepted" not in probe.stdout
    assert len(logged) == 2 * len(REFUSED_CALLS), probe.stderr[-2000:]  # default + strict
    assert "[key " in text  # the refused keys are named by position...
    assert "<unregistered: " in text  # ...and the unregistered names by length


@pytest.mark.parametrize("secret", SECRETS)
def test_each_probe_secret_is_refused_as_a_value_and_as_a_key(secret: str) -> None:
    """Guards the probe: every secret is refused on its own, so the log test is not vacuous."""
    with pytest.raises(EventValidationError, match="personal data"):
        check_properties(EVENT, {"note": secret})
    with pytest.raises(EventValidationError, match="personal data"):
        check_properties(EVENT, {"payload": {secret: 1}})
