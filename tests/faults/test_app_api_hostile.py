"""`relay forget --mixpanel` and `relay events push` against hostile answers on loopback.

A server that drips bytes, one that streams a 600 MB answer, one that writes escape sequences
and forged lines, and answers the documents give that relay used to misread. Each command runs
as a real process (its peak memory measured by the process itself) or through the CLI runner.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result
from helpers.standin import StartStandin
from hostile import (
    Behaviour,
    HostileEndpoint,
    RawRequest,
    drip_body,
    drip_headers,
    huge_body,
    respond,
)
from sqlalchemy.engine import Engine

from relay.cli import main
from relay.testing.mixpanel_standin import MixpanelStandin

ROOT = Path(__file__).resolve().parents[2]
PROJECT_ID = "2195193"
KEY = "erasure-test-key"
PERSON = "person-7f3a9c"
#: Runs the CLI, then prints the process's own peak resident memory (KiB on Linux).
#: The CLI's own peak: VmHWM of /proc/self/status, the high-water mark of this process's memory
#: since its exec. (getrusage's ru_maxrss keeps the parent's high-water mark across fork and exec:
#: from a pytest worker grown to 400 MB after hundreds of tests it read 400 MB for a CLI using 80.)
MEASURED = (
    "import re, sys\n"
    "from relay.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:], prog_name='relay')\n"
    "finally:\n"
    "    with open('/proc/self/status', encoding='ascii') as status:\n"
    "        peak = re.search(r'VmHWM:\\s+(\\d+) kB', status.read()).group(1)\n"
    "    print(f'peak_kib={peak}', file=sys.stderr)\n"
)
MEMORY_LIMIT_KIB = 200 * 1024
HUGE = 600 * 1024 * 1024


@pytest.fixture
def standin(start_standin: StartStandin) -> MixpanelStandin:
    """The stand-in, as upstream of the hostile endpoint."""
    return start_standin(project_id=PROJECT_ID)


@pytest.fixture
def hostile(standin: MixpanelStandin) -> Iterator[HostileEndpoint]:
    """A hostile endpoint in front of the stand-in."""
    with HostileEndpoint(upstream=standin.url) as endpoint:
        yield endpoint


def _proxied(hostile: HostileEndpoint) -> Behaviour:
    def behave(sock: socket.socket, request: RawRequest, _stop: threading.Event) -> None:
        hostile._proxy(sock, request)

    return behave


def _forget_env(
    hostile: HostileEndpoint, standin: MixpanelStandin, engine: Engine
) -> dict[str, str]:
    return {
        "RELAY_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "RELAY_ERASURE_HASH_KEY": KEY,
        "RELAY_MIXPANEL_APP_API_URL": f"{hostile.url}/api/app",
        "RELAY_MIXPANEL_PROJECT_TOKEN": standin.project_token,
        "RELAY_MIXPANEL_GDPR_TOKEN": standin.oauth_token,
        "RELAY_REQUEST_DEADLINE_SECONDS": "2",
    }


def _push_env(hostile: HostileEndpoint, standin: MixpanelStandin) -> dict[str, str]:
    return {
        "RELAY_MIXPANEL_APP_API_URL": f"{hostile.url}/api/app",
        "RELAY_MIXPANEL_PROJECT_ID": standin.project_id,
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME": standin.username,
        "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET": standin.secret,
        "RELAY_REQUEST_DEADLINE_SECONDS": "2",
    }


def _process(args: list[str], env: dict[str, str]) -> tuple[int, str, int]:
    """Exit code, stderr without the memory line, and peak memory (KiB) of one CLI process."""
    proc = subprocess.run(
        [sys.executable, "-c", MEASURED, *args],
        cwd=ROOT,
        env={"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(ROOT / "tests"), **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    lines = proc.stderr.strip().splitlines()
    peak = int(lines[-1].removeprefix("peak_kib="))
    return proc.returncode, "\n".join(lines[:-1]) + proc.stdout, peak


def _forget(env: dict[str, str]) -> Result:
    return CliRunner().invoke(
        main, ["forget", "--distinct-id", PERSON, "--yes", "--mixpanel"], env=env
    )


def _push(env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, ["events", "push", "hr_catalog", "--yes"], env=env)


def test_forget_against_a_drip_feeding_server_ends_at_the_request_deadline(
    hostile: HostileEndpoint, standin: MixpanelStandin, sqlite_engine: Engine
) -> None:
    """Headers dripped a byte at a time end the request at RELAY_REQUEST_DEADLINE_SECONDS:
    exit 1, one line naming the deadline, nothing filed."""
    hostile.script(drip_headers(interval=0.5))
    code, output, _peak = _process(
        ["forget", "--distinct-id", PERSON, "--yes", "--mixpanel"],
        _forget_env(hostile, standin, sqlite_engine),
    )
    assert code == 1, output
    assert "no complete answer within 2 s" in output
    assert "nothing was erased" in output
    assert standin.gdpr_jobs() == []


def test_forget_never_reads_a_600_mb_answer_whole(
    hostile: HostileEndpoint, standin: MixpanelStandin, sqlite_engine: Engine
) -> None:
    """A 600 MB answer is given up after the cap: exit 1, the process stays under 200 MB and
    hung up long before the server finished."""
    huge = huge_body(total_bytes=HUGE)
    hostile.script(huge)
    code, output, peak = _process(
        ["forget", "--distinct-id", PERSON, "--yes", "--mixpanel"],
        _forget_env(hostile, standin, sqlite_engine),
    )
    assert code == 1, output
    assert "with a body over" in output
    assert peak < MEMORY_LIMIT_KIB
    assert huge.sent < HUGE


def test_forget_reads_the_docs_pages_answer_as_filed(
    hostile: HostileEndpoint, standin: MixpanelStandin, sqlite_engine: Engine
) -> None:
    """The docs page's example answer (results: [{tracking_id}]) is a filed deletion: exit 0,
    its tracking id reported and audited."""
    docs_answer = (
        b'{"status":"ok","results":[{"status":"PENDING","tracking_id":"1583792934719392965",'
        b'"project_id":1978118,"compliance_type":"gdpr","distinct_id_count":1}]}'
    )
    hostile.script(respond(200, docs_answer))
    result = _forget(_forget_env(hostile, standin, sqlite_engine))
    assert result.exit_code == 0, result.output
    assert "Mixpanel GDPR deletion task: 1583792934719392965" in result.output


def test_forget_retries_a_429_then_files_once(
    hostile: HostileEndpoint, standin: MixpanelStandin, sqlite_engine: Engine
) -> None:
    """A 429 (the page: 1 request a second, back off) is retried; the deletion is filed once."""
    hostile.script(respond(429, b'{"error": "rate limited", "status": "error"}'))
    result = _forget(_forget_env(hostile, standin, sqlite_engine))
    assert result.exit_code == 0, result.output
    assert len(standin.gdpr_jobs()) == 1


@pytest.mark.parametrize(
    "task_id",
    ["\x1b[2J\nerased 0 row(s)", "x" * 4096],
    ids=["escape-and-newline", "huge"],
)
def test_forget_refuses_a_task_id_that_is_not_an_id_and_prints_nothing_of_it(
    hostile: HostileEndpoint, standin: MixpanelStandin, sqlite_engine: Engine, task_id: str
) -> None:
    """A "task id" holding escape sequences, a newline or 4 KB is not Mixpanel's answer: exit 1,
    nothing of it printed, nothing erased."""
    body = orjson.dumps({"status": "ok", "results": {"task_id": task_id}})
    hostile.script(respond(201, body))
    result = _forget(_forget_env(hostile, standin, sqlite_engine))
    assert result.exit_code == 1
    assert "\x1b" not in result.output
    assert "xxxxxxxx" not in result.output
    assert "nothing was erased" in result.output


def test_forget_never_prints_the_id_a_refusal_quotes(
    hostile: HostileEndpoint, standin: MixpanelStandin, sqlite_engine: Engine
) -> None:
    """A 400 whose error text quotes the request's distinct_id is reported (exit 1, nothing
    erased) with the id masked: the output names nobody."""
    body = orjson.dumps({"status": "error", "error": f"distinct_ids[0] {PERSON} is invalid"})
    hostile.script(respond(400, body))
    result = _forget(_forget_env(hostile, standin, sqlite_engine))
    assert result.exit_code == 1, result.output
    assert "HTTP 400" in result.output
    assert "<the person's id> is invalid" in result.output
    assert PERSON not in result.output


def test_push_against_a_drip_feeding_server_ends_at_the_request_deadline(
    hostile: HostileEndpoint, standin: MixpanelStandin
) -> None:
    """A body dripped a byte at a time ends the listing at the deadline: exit 1, one line."""
    hostile.script(drip_body(interval=0.5))
    code, output, _peak = _process(
        ["events", "push", "hr_catalog", "--yes"], _push_env(hostile, standin)
    )
    assert code == 1, output
    assert "no complete answer within 2 s" in output


def test_push_never_reads_a_600_mb_answer_whole(
    hostile: HostileEndpoint, standin: MixpanelStandin
) -> None:
    """A 600 MB listing is given up after the cap; the process stays under 200 MB."""
    huge = huge_body(total_bytes=HUGE)
    hostile.script(huge)
    code, output, peak = _process(
        ["events", "push", "hr_catalog", "--yes"], _push_env(hostile, standin)
    )
    assert code == 1, output
    assert peak < MEMORY_LIMIT_KIB
    assert huge.sent < HUGE


def test_push_prints_lexicon_names_escaped(
    hostile: HostileEndpoint, standin: MixpanelStandin
) -> None:
    """An event name holding an escape sequence and a forged line is printed escaped."""
    forged = "svc.evil.name\x1b[2J\nLexicon is in sync with the registry: nothing to do"
    listing = {
        "results": [{"entityType": "event", "name": forged, "schemaJson": {}}],
        "status": "ok",
    }
    hostile.script(respond(200, orjson.dumps(listing)))
    result = CliRunner().invoke(
        main, ["events", "push", "hr_catalog"], env=_push_env(hostile, standin)
    )
    assert "\x1b" not in result.output
    assert "svc.evil.name\\x1b[2J\\nLexicon is in sync" in result.output
    assert "\nLexicon is in sync" not in result.output


@pytest.mark.parametrize(
    "answer",
    [b"{}", b'{"status": "error", "error": "quota exceeded"}', b'{"status": "ok", "results": 3}'],
    ids=["empty-object", "status-error", "results-not-counts"],
)
def test_push_upload_succeeds_only_on_the_documented_answer(
    hostile: HostileEndpoint, standin: MixpanelStandin, answer: bytes
) -> None:
    """An upload answered 200 with anything but BatchUploadSchemasResponse is not "uploaded"."""
    hostile.script(_proxied(hostile), respond(200, answer))
    result = _push(_push_env(hostile, standin))
    assert result.exit_code == 1, result.output
    assert "did not confirm the upload" in result.output
    assert "uploaded" not in result.output.replace("were uploaded", "")
