"""`alembic` run by hand (migrations/env.py) refuses a bad ``RELAY_*`` setting in one line.

The operator who runs ``alembic upgrade head`` with a bad setting gets one ``FAILED:`` line
naming the setting and its rule (never its value), a non-zero exit, and untouched tables; not
a pydantic traceback quoting the value.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from migration_rig import RELAY_EXECUTABLE

from relay import _migrations

ALEMBIC = RELAY_EXECUTABLE.with_name("alembic")
REPOSITORY = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-pw-9f2c"


def _alembic(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    return subprocess.run(
        [str(ALEMBIC), *args],
        check=False,
        capture_output=True,
        text=True,
        env={**base, **env},
        cwd=REPOSITORY,
        timeout=120,
    )


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("RELAY_PURGE_BATCH_SIZE", "100000000000000000000", "RELAY_PURGE_BATCH_SIZE: "),
        ("RELAY_LEASE_SECONDS", "Infinity", "RELAY_LEASE_SECONDS: "),
        ("RELAY_MIGRATE_LOCK_TIMEOUT_MS", "soon-ish", "RELAY_MIGRATE_LOCK_TIMEOUT_MS: "),
    ],
)
@pytest.mark.parametrize("url_from", ["-x", "RELAY_DATABASE_URL"])
def test_a_bad_setting_is_one_failed_line_naming_it(
    tmp_path: Path, name: str, value: str, rule: str, url_from: str
) -> None:
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    args = ["-x", f"url={url}"] if url_from == "-x" else []
    env = {} if url_from == "-x" else {"RELAY_DATABASE_URL": url}

    result = _alembic(*args, "upgrade", "head", **env, **{name: value})

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output
    assert "pydantic" not in output
    assert value not in output
    failed = [line for line in output.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1, output
    assert failed[0].startswith("FAILED: invalid settings: ")
    assert rule in failed[0], output
    assert "relay_outbox" not in _tables(url)


def test_the_same_command_with_good_settings_migrates(tmp_path: Path) -> None:
    """The control: without the bad setting the command above reaches head."""
    url = f"sqlite:///{tmp_path / 'relay.db'}"

    result = _alembic("-x", f"url={url}", "upgrade", "head", RELAY_PURGE_BATCH_SIZE="500")

    assert result.returncode == 0, result.stdout + result.stderr
    assert {"relay_outbox", "relay_audit"} <= _tables(url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM relay_alembic_version"))
            assert version.scalar_one() == _migrations.heads()[0]
    finally:
        engine.dispose()


def test_a_bad_setting_never_prints_the_database_password(tmp_path: Path) -> None:
    """A bad setting beside a database URL with a password: the line names the setting, and
    neither the URL's password nor the bad value appears anywhere."""
    url = f"postgresql+psycopg://relay:{SECRET}@127.0.0.1:1/nowhere"

    result = _alembic("upgrade", "head", RELAY_DATABASE_URL=url, RELAY_POLL_MAX_SECONDS="-5")

    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert SECRET not in output
    assert "Traceback" not in output
    failed = [line for line in output.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1, output
    assert "RELAY_POLL_MAX_SECONDS" in failed[0]
