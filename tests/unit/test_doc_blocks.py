"""Blocks of the README and the documentation site that no test can run as written are still
checked for what would break them where they are used."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _blocks(language: str) -> list[tuple[Path, str]]:
    return [
        (page, body)
        for page in _pages()
        for lang, body in _FENCE.findall(page.read_text(encoding="utf-8"))
        if lang == language
    ]


def test_systemd_units_carry_no_inline_comments() -> None:
    """systemd reads ``TimeoutStopSec=90   # ...`` as part of the value (and refuses it): every
    comment in a documented unit file is on a line of its own."""
    units = [(page, body) for page, body in _blocks("ini") if "[Service]" in body]
    assert units
    for page, body in units:
        for line in body.splitlines():
            if "=" in line and not line.lstrip().startswith(("#", ";")):
                assert "#" not in line, f"{page.name}: {line}"


def test_examples_are_fenced_so_that_the_docs_test_runs_them() -> None:
    """No indented code block (four spaces after a blank line, outside a fence and not a
    nested list item): nothing would run it (tests/integration/test_docs_examples.py runs
    fenced blocks only)."""
    for page in _pages():
        if "notes" in page.relative_to(ROOT).parts:
            continue
        previous, fenced = "", False
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("```"):
                fenced = not fenced
            elif not fenced and previous == "" and re.match(r"    [^\s*+\-\d]", line):
                raise AssertionError(f"{page.name}:{number}: an indented code block: {line}")
            previous = line
