"""``python manage.py relay <command> [args]``: any ``relay`` command, with the Django settings.

The arguments are the ``relay`` command's own (``manage.py relay stats``, ``manage.py relay run``,
``manage.py relay dead-letters list --json``, ...), and so are the exit codes (0 ok, 1 failure,
2 usage, 3 configuration). The settings are ``settings.RELAY`` with the ``RELAY_*`` environment
variables winning, and the outbox database is Django's (``RELAY["DATABASE"]``, else
``default``) unless ``DATABASE_URL`` is set there or in the environment.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from relay.cli import EXIT_CONFIGURATION
from relay.cli import main as relay_main
from relay.cli._output import safe_text


class Command(BaseCommand):
    """Runs the ``relay`` command line with settings from Django."""

    help = "Run a relay command (relay --help lists them) with the project's Django settings."

    def run_from_argv(self, argv: list[str]) -> None:
        """Hand every argument after ``relay`` to relay's own parser (``--help`` included)."""
        code = run(argv[2:], prog_name=f"{os.path.basename(argv[0])} {argv[1]}")
        sys.exit(code)

    def add_arguments(self, parser: Any) -> None:
        # REMAINDER: everything from the relay command on is relay's, options included, so
        # that call_command("relay", "stats", "--json") reaches relay as it is.
        parser.add_argument(
            "relay_args", nargs=argparse.REMAINDER, help="the relay command and its arguments"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """For ``call_command("relay", "stats", ...)``: a non-zero exit is a ``CommandError``.

        relay's output goes to the command's ``stdout``/``stderr`` (``call_command(...,
        stdout=buffer)`` captures it).
        """
        arguments = [*options.get("relay_args", []), *args]
        with (
            contextlib.redirect_stdout(_stream(self.stdout, sys.stdout)),
            contextlib.redirect_stderr(_stream(self.stderr, sys.stderr)),
        ):
            code = run(arguments, prog_name="manage.py relay")
        if code:
            raise CommandError(f"relay exited with status {code}", returncode=code)


def _stream(wrapper: Any, default: Any) -> Any:
    """The stream under Django's ``OutputWrapper`` (``stdout=`` of ``call_command``)."""
    return getattr(wrapper, "_out", default)


def run(arguments: list[str], *, prog_name: str) -> int:
    """Run ``relay arguments`` with the Django settings; return its exit status."""
    from relay.contrib.django._settings import field_values  # noqa: PLC0415

    try:
        values = field_values()
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"relay: configuration error: {safe_text(str(exc))}\n")
        return EXIT_CONFIGURATION
    try:
        relay_main.main(args=arguments, prog_name=prog_name, obj=values, standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0
