"""Running ``relay`` as a user does and reading what it says."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from relay.cli import main

#: The ``relay`` console script of this interpreter's environment.
RELAY = str(Path(sys.executable).with_name("relay"))

#: Settings of a Mixpanel project that passes the settings' checks and answers nothing (the
#: discard port): for commands that must stop before they send.
UNREACHABLE_MIXPANEL = {
    "RELAY_MIXPANEL_API_URL": "http://127.0.0.1:9",
    "RELAY_MIXPANEL_PROJECT_ID": "1",
    "RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME": "u",
    "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET": "s",
}


def relay(*args: str, env: dict[str, str] | None = None) -> Result:
    """``relay ARGS`` in process (click's runner), exceptions not caught: a traceback fails."""
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def one_line(text: str) -> str:
    """The only non-blank line of ``text``, which must be a ``relay: `` line."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert lines[0].startswith("relay: "), text
    return lines[0]


def env_without_relay(**values: str) -> dict[str, str]:
    """This process's environment without any ``RELAY_*`` variable, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env.update(values)
    return env


def migrated_sqlite(path: Path) -> str:
    """The URL of a SQLite file at ``path`` that ``relay migrate`` has just created."""
    url = f"sqlite:///{path}"
    assert relay("--database-url", url, "migrate").exit_code == 0
    return url
