"""Formatting the code ``relay events new`` writes, with the host's own ruff settings.

Only new code goes through the formatter: a whole new file, or one new fragment (a method,
a class, an import statement) formatted on its own before it is spliced into the host's
module, so the host's existing lines are never touched. ``ruff`` (the ``scaffold`` extra)
reads the host's configuration from the fragment's would-be path, as ``ruff format`` run in
the project would.
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

from relay._errors import FormatError

#: ruff's own default line length, when the project sets none.
DEFAULT_LINE_LENGTH = 88
#: Seconds one ruff run may take before the scaffold gives up (ruff takes milliseconds).
RUFF_TIMEOUT_SECONDS = 60


def _ruff() -> str:
    try:
        from ruff.__main__ import find_ruff_bin  # noqa: PLC0415 -- only the scaffold needs it
    except ImportError as exc:
        raise FormatError(
            "events new needs ruff and libcst: pip install 'relay-outbox[scaffold]'"
        ) from exc
    return str(find_ruff_bin())


def _run(argv: list[str], source: str, cwd: Path) -> str:
    try:
        proc = subprocess.run(  # noqa: S603 -- ruff's own binary, argv built here, no shell
            argv,
            input=source,
            capture_output=True,
            text=True,
            cwd=cwd,
            check=False,
            timeout=RUFF_TIMEOUT_SECONDS,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FormatError(f"ruff could not run: {type(exc).__name__}") from exc
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["no message"])[0]
        raise FormatError(f"ruff refused the generated code: {first}")
    return proc.stdout


def _existing_dir(path: Path) -> Path:
    for parent in [path.parent, *path.parents]:
        if parent.is_dir():
            return parent
    return Path.cwd()


def format_source(source: str, *, path: Path) -> str:
    """``source`` sorted (isort rules) and formatted as ruff would in the project at ``path``."""
    ruff = _ruff()
    cwd = _existing_dir(path)
    name = str(path.resolve())
    sorted_source = _run(
        [ruff, "check", "--select", "I", "--fix-only", "--exit-zero", "--stdin-filename", name],
        source,
        cwd,
    )
    return _run([ruff, "format", "--stdin-filename", name, "-"], sorted_source, cwd)


def line_length(path: Path) -> int:
    """The line length ruff uses at ``path``: the nearest ruff configuration's, else 88."""
    for parent in path.resolve().parents:
        for name, section in (
            ("ruff.toml", ()),
            (".ruff.toml", ()),
            ("pyproject.toml", ("tool", "ruff")),
        ):
            config = parent / name
            if not config.is_file():
                continue
            try:
                data: object = tomllib.loads(config.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError):
                continue
            for key in section:
                data = data.get(key) if isinstance(data, dict) else None
            if isinstance(data, dict):
                value = data.get("line-length", DEFAULT_LINE_LENGTH)
                return value if isinstance(value, int) else DEFAULT_LINE_LENGTH
    return DEFAULT_LINE_LENGTH
