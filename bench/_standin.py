"""The Mixpanel stand-in in a process of its own, as the benchmarks run it.

The credentials are the stand-in's own defaults, read from :class:`MixpanelStandin` (an
instance that is never started), so they cannot drift from what the stand-in accepts.
"""

from __future__ import annotations

import subprocess
from typing import Any

import psutil
from _procs import BENCH_DIR, PYTHON, REPO

from relay.testing.mixpanel_standin import MixpanelStandin

_DEFAULTS = MixpanelStandin(retain_events=False)  # never started: only its defaults are read
STANDIN_PROJECT_ID = _DEFAULTS.project_id
STANDIN_USERNAME = _DEFAULTS.username
STANDIN_SECRET = _DEFAULTS.secret
STANDIN_TOKEN = _DEFAULTS.project_token


class Standin:
    """The Mixpanel stand-in in a process of its own, with counters only (``--no-retain``).

    It is ``_baseline_standin.py``'s: the stand-in plus the ``mixpanel`` package's form bodies,
    so the baseline and the relay are measured against one server.
    """

    def __init__(self, *, retain: bool = False) -> None:
        command = [PYTHON, str(BENCH_DIR / "_baseline_standin.py"), "--port", "0"]
        if not retain:
            command.append("--no-retain")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.close()
            raise SystemExit("the stand-in did not start")
        self.psutil = psutil.Process(self.process.pid)

    def env(self) -> dict[str, str]:
        """``RELAY_*`` variables pointing a relay at this stand-in."""
        return {
            "RELAY_MIXPANEL_API_URL": self.url,
            "RELAY_MIXPANEL_PROJECT_ID": STANDIN_PROJECT_ID,
            "RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME": STANDIN_USERNAME,
            "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET": STANDIN_SECRET,
        }

    def reset(self) -> None:
        """Forget everything accepted so far."""
        import httpx  # noqa: PLC0415

        httpx.post(f"{self.url}/_standin/reset", timeout=10).raise_for_status()

    def stats(self) -> dict[str, Any]:
        """The stand-in's counters (``accepted``, ``unique``, ``duplicates``, ``requests``...)."""
        import httpx  # noqa: PLC0415

        response = httpx.get(f"{self.url}/_standin/stats", timeout=10)
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats

    def cpu_seconds(self) -> float:
        """User plus system CPU time the stand-in process used so far."""
        times = self.psutil.cpu_times()
        return float(times.user + times.system)

    def close(self) -> None:
        """Stop the stand-in process."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> Standin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def relay_env(database_url: str, standin: Standin, **settings: Any) -> dict[str, str]:
    """Environment for a relay process: database, stand-in, plus ``RELAY_<NAME>`` settings."""
    env = {"RELAY_DATABASE_URL": database_url, **standin.env()}
    env["RELAY_LOG_LEVEL"] = "INFO"
    for name, value in settings.items():
        env[f"RELAY_{name.upper()}"] = str(value)
    return env
