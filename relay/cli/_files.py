"""What a command reads or writes on the operator's say-so: output files and directories, and
catalog modules. Each failure is one ``relay:`` line and exit 2 (bad input), before anything is
written."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

from relay import _exit

_T = TypeVar("_T")


def _why(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else type(exc).__name__


def output_directory(path: Path, *, option: str) -> Path:
    """``path`` as a directory to write into, created with its parents if needed."""
    if path.exists() and not path.is_dir():
        _exit.fail(f"{option} {path} is a file: name a directory", _exit.USAGE)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _exit.fail(f"{option} {path}: cannot create the directory: {_why(exc)}", _exit.USAGE)
    return path


def creatable_directory(path: Path, *, option: str) -> Path:
    """``path`` checked as a directory that exists or can be created, creating nothing: its
    nearest existing ancestor must be a directory relay may write in."""
    if path.exists() and not path.is_dir():
        _exit.fail(f"{option} {path} is a file: name a directory", _exit.USAGE)
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        _exit.fail(f"{option} {path}: {ancestor} is a file, not a directory", _exit.USAGE)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        _exit.fail(f"{option} {path}: cannot write in {ancestor}", _exit.USAGE)
    return path


def open_output(path: Path, *, option: str) -> IO[bytes]:
    """``path`` opened for writing (truncated); its directory must exist already."""
    if path.is_dir():
        _exit.fail(f"{option} {path} is a directory: name a file", _exit.USAGE)
    parent = path.parent
    if not parent.is_dir():
        what = "is a file, not a directory" if parent.exists() else "does not exist"
        _exit.fail(f"{option} {path}: {parent} {what}", _exit.USAGE)
    try:
        return path.open("wb")
    except OSError as exc:
        _exit.fail(f"{option} {path}: cannot write it: {_why(exc)}", _exit.USAGE)


def import_catalog(load: Callable[[list[str]], _T], names: list[str]) -> _T:
    """``load(names)``, with a catalog module that cannot be found refused in one line."""
    try:
        return load(names)
    except ImportError as exc:
        missing = exc.name or "?"
        _exit.fail(
            f"cannot import the catalog module {missing!r} ({type(exc).__name__}): check the "
            "module name, and run from the directory that holds it or install its package",
            _exit.USAGE,
        )
