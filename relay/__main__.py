"""The ``relay`` command's entry point (and ``python -m relay``).

It exists so that Ctrl-C while Python is still importing the command (click and the command
modules, the first tenth of a second or so) is a quiet stop rather than a ``KeyboardInterrupt``
traceback: nothing has started yet. ``relay run`` and ``relay drain`` stop as they do on every
SIGINT or SIGTERM (``run`` exits 0; ``drain`` exits 1 with its one ``relay:`` line): their
signals are held from the first line here (:func:`relay._exit.hold_stop_signals`) until the
command takes them over, so a signal while click parses the command or the command imports
what it runs is the same stop, never click's ``Aborted!``. Any other command exits 130 (128 +
SIGINT, the shell's convention for an interrupted command) on a Ctrl-C during the import; once
the command runs, it handles Ctrl-C itself.
"""

from __future__ import annotations

import sys

#: The exit code of a command interrupted before it started, other than those below.
EXIT_INTERRUPTED = 130
#: The commands whose stop signals are held until they take them over, and their exit code
#: on a stop (``run``: a clean stop; ``drain``: not everything due was delivered).
HELD_SIGNALS_EXIT = {"run": 0, "drain": 1}


def main() -> None:
    """Import the ``relay`` command and run it."""
    word = _command_word(sys.argv[1:])
    held = word in HELD_SIGNALS_EXIT
    try:
        if held:
            from relay._exit import hold_stop_signals  # noqa: PLC0415 - guarded too

            hold_stop_signals()
        from relay.cli import main as command  # noqa: PLC0415 - the import is what is guarded
    except KeyboardInterrupt:
        sys.exit(HELD_SIGNALS_EXIT[word] if held and word else EXIT_INTERRUPTED)
    command()


def _command_word(args: list[str]) -> str | None:
    """The subcommand named in ``args``: the first word that is neither an option nor the value
    of ``--database-url``, the one root option that takes a value."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--database-url":
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


if __name__ == "__main__":
    main()
