"""`relay demo`, the README's first command, runs the whole path on the embedded default."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from relay.demos.demo import run_demo


def test_demo_delivers_each_committed_event_once_and_nothing_else(tmp_path: Path) -> None:
    """Committed events reach the stand-in once; the rolled-back and the invalid one never do."""
    report = run_demo(database_url=f"sqlite:///{tmp_path / 'demo.db'}")
    assert sorted(report.mixpanel_counts) == [
        "demo.auth.user_logged_in",
        "demo.hris_csv.upload_analyzed",
        "demo.risk.score_calculated",
        "demo.surveys.survey_delivered",
    ]
    assert set(report.mixpanel_counts.values()) == {1}
    assert [state for _, _, state in report.tracked] == ["delivered"] * 4
    assert report.rolled_back == 1
    assert report.refused == 1
    assert report.first_drain.retried == 4
    assert report.crashed_sends == 4
    assert report.duplicates_dropped == 4
    assert report.cron_event["cron_execution_timestamp"] > report.cron_event["time_ms"]


def test_relay_demo_command_runs_with_no_configuration(tmp_path: Path) -> None:
    """The console script works from an empty folder with no RELAY_* variables set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    relay = shutil.which("relay", path=str(Path(sys.executable).parent))
    assert relay is not None
    done = subprocess.run(
        [relay, "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "what Mixpanel would show (unique events):" in done.stdout
    assert "4 dropped as duplicates" in done.stdout
    assert list(tmp_path.iterdir()) == []  # the temporary database is gone
