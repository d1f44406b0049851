"""The ``relay`` command's exit codes, defined once, and the one way to fail with one of them.

====  =====================================================================================
code  meaning
====  =====================================================================================
0     success (a dry run included)
1     a runtime failure: the database failed or could not be reached; ``relay drain``
      did not deliver everything due (Mixpanel unreachable or failing, rows dead-lettered
      or left for a retry)
2     bad usage or bad input (an unknown option, a malformed date, duration or filter):
      nothing was changed and nothing audited
3     configuration: an invalid ``RELAY_*`` setting, a database URL relay cannot use,
      missing or refused Mixpanel credentials, a destination's project not in its region
      (``relay check``), tables missing or at another revision
====  =====================================================================================

This module imports nothing heavy: the daemon and every command module use it.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import NoReturn

OK = 0
FAILURE = 1
USAGE = 2
CONFIGURATION = 3

#: The line every command's help ends with.
EXIT_CODES_HELP = (
    "Exit codes: 0 success (dry runs included); 1 runtime failure (database; drain: not all "
    "that was due was delivered); 2 bad usage or filter, nothing changed; 3 configuration error "
    "(settings, database URL, credentials, tables not migrated)."
)


def fail(message: str, code: int) -> NoReturn:
    """Print ``relay: <message>`` as one escaped line on stderr and exit with ``code``.

    ``message`` must already be scrubbed of secrets (the root group scrubs what it catches).
    """
    from relay._escape import safe_text  # noqa: PLC0415 - small, but only on the error path

    sys.stderr.write(f"relay: {safe_text(message)}\n")
    sys.stderr.flush()
    sys.exit(code)


#: The stop signals that came while :func:`hold_stop_signals` held them.
_held: list[int] = []


def _hold(signum: int, _frame: FrameType | None) -> None:
    _held.append(signum)  # nothing else in a signal handler


def hold_stop_signals() -> None:
    """From now on SIGINT and SIGTERM only note a stop request, until a command installs its
    own handlers (``relay run`` then asks :func:`stop_requested`): a Ctrl-C while Python is
    still importing or parsing the command can then never surface as a traceback or click's
    ``Aborted!``. Outside the main thread (where no handler can be installed) nothing changes.
    """
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _hold)
    except ValueError:  # not the main thread
        pass


def stop_requested() -> bool:
    """Whether a SIGINT or SIGTERM came while :func:`hold_stop_signals` held them."""
    return bool(_held)
