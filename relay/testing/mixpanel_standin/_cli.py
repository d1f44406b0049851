"""``python -m relay.testing.mixpanel_standin``: serve in the foreground, print the base URL."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from types import FrameType

from relay.testing.mixpanel_standin._ratecap import DEFAULT_RATE_WINDOW_SECONDS
from relay.testing.mixpanel_standin._standin import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_EVENTS,
    MixpanelStandin,
)


def main(
    argv: list[str] | None = None,
    *,
    factory: Callable[..., MixpanelStandin] = MixpanelStandin,
) -> int:
    """Serve in the foreground until SIGINT or SIGTERM; print the base URL first.

    ``factory`` builds the stand-in from the options (a subclass serving more, for example).
    """
    parser = argparse.ArgumentParser(description="Mixpanel /import stand-in on loopback")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--max-events", type=int, default=DEFAULT_MAX_EVENTS)
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES)
    parser.add_argument("--project-id", default="standin-project")
    parser.add_argument("--username", default="standin-user")
    parser.add_argument("--secret", default="standin-secret")
    parser.add_argument("--project-token", default="standin-token")
    parser.add_argument(
        "--no-retain",
        action="store_true",
        help="keep only counters and dedup keys, not the accepted records",
    )
    parser.add_argument(
        "--verbose-answers",
        action="store_true",
        help='answer /engage and /groups with {"status": 1, "error": null} instead of text 1',
    )
    parser.add_argument(
        "--no-profile-per-record-errors",
        action="store_true",
        help="ignore strict=1 on /engage and /groups: answer only 1 or 0",
    )
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="hold every /import answer this long"
    )
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        help="events per second per project; 429 beyond it (default: no cap)",
    )
    parser.add_argument(
        "--rate-window",
        type=float,
        default=DEFAULT_RATE_WINDOW_SECONDS,
        help="rolling window of the cap, seconds (Mixpanel's: 60)",
    )
    args = parser.parse_args(argv)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    standin = factory(
        host=args.host,
        port=args.port,
        project_id=args.project_id,
        username=args.username,
        secret=args.secret,
        project_token=args.project_token,
        max_events=args.max_events,
        max_bytes=args.max_bytes,
        retain_events=not args.no_retain,
        verbose_answers=args.verbose_answers,
        profile_per_record_errors=not args.no_profile_per_record_errors,
        latency_ms=args.latency_ms,
        rate_limit=args.rate_limit,
        rate_window_seconds=args.rate_window,
    )
    with standin:
        print(standin.url, flush=True)
        done.wait()
    return 0
