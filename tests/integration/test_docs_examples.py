"""Every code block of the documentation site and the README, run as written.

Each page runs in a fresh directory (holding a copy of the ``./relay.db``, the default database,
that ``relay migrate`` created in an empty directory once for the module) as one bash script,
its blocks in page order: a ``python`` block runs as a
script of its own, unless its first line names a file (``# conftest.py``), which it then writes;
``sh`` blocks run as they are; ``console`` blocks run their ``$ `` lines. Background processes
the page starts are stopped at the end. The stand-in's port 8765 is replaced by a free one, so
parallel runs never collide. A block is left out only when the line above it says why:

* ``<!-- not-runnable: REASON -->`` (a remote host, a systemd unit, an install from the
  package index, a fragment of a host application);
* ``<!-- tested-by: PATH ... -->``: that test file runs the block's commands (checked here);
* ``<!-- after: PAGE -->`` runs the block after PAGE's own Python blocks, in one script.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.network import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
_FENCE = re.compile(
    r"(?:^<!-- (?P<marker>[\w-]+): (?P<arg>.*?) -->\n)?^```(?P<lang>\w*)[^\n]*\n(?P<body>.*?)^```",
    re.M | re.S,
)
_FILE_HEADER = re.compile(r"#\s*([\w./-]+\.(?:py|ini|toml|cfg))\s*$")
_STANDIN_PORT = "8765"


@dataclass(frozen=True)
class Block:
    page: str
    lang: str
    body: str
    marker: str | None
    arg: str


def _pages() -> list[Path]:
    docs = ROOT / "docs"
    return [ROOT / "README.md", *sorted(docs.rglob("*.md"))]


def _name(page: Path) -> str:
    return "README.md" if page.name == "README.md" else str(page.relative_to(ROOT / "docs"))


def _blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [
        Block(_name(page), m["lang"], m["body"], m["marker"], (m["arg"] or "").strip())
        for m in _FENCE.finditer(text)
    ]


def _page(name: str) -> Path:
    return ROOT / name if name == "README.md" else ROOT / "docs" / name


def _script(blocks: list[Block], workdir: Path, port: str) -> str:
    lines = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    for n, block in enumerate(blocks):
        body = block.body.replace(_STANDIN_PORT, port)
        if block.lang == "python":
            header = _FILE_HEADER.match(body.splitlines()[0]) if body.strip() else None
            if header and block.marker != "after":
                (workdir / header.group(1)).write_text(body, encoding="utf-8")
                continue
            if block.marker == "after":
                before = [b.body for b in _blocks(_page(block.arg)) if b.lang == "python"]
                body = "\n".join([*before, body])
            script = workdir / f"block_{n}.py"
            script.write_text(body, encoding="utf-8")
            lines.append(f"python {shlex.quote(script.name)}")
        elif block.lang == "sh":
            lines.append(body)
        elif block.lang == "console":
            lines += [line[2:] for line in body.splitlines() if line.startswith("$ ")]
    return "\n".join(lines) + "\n"


def _runnable(page: Path) -> list[Block]:
    return [b for b in _blocks(page) if b.marker not in ("not-runnable", "tested-by")]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "PYTEST_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory where ``relay migrate`` created the default database, ``./relay.db``; each
    page gets a copy of it (one migrate process per module instead of one per page)."""
    directory = tmp_path_factory.mktemp("migrated")
    subprocess.run(
        [str(BIN / "relay"), "migrate"], cwd=directory, env=_env(), check=True, capture_output=True
    )
    return directory


@pytest.mark.parametrize("page", [p for p in _pages() if _runnable(p)], ids=_name)
def test_every_runnable_block_of_the_page_runs_as_written(
    page: Path, tmp_path: Path, migrated: Path
) -> None:
    """The page's blocks, in order, in a fresh directory, exit 0 (bash -e: every command)."""
    env = _env()
    shutil.copytree(migrated, tmp_path, dirs_exist_ok=True)
    script = _script(_runnable(page), tmp_path, str(free_port()))
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{script}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"


def test_every_block_is_runnable_or_says_why_not() -> None:
    """A block in a language the runner does not run carries a marker with a reason; a marker
    names a reason, an existing page or an existing test file that runs its commands."""
    for page in _pages():
        for block in _blocks(page):
            where = f"{block.page}: {block.body.splitlines()[0] if block.body else ''}"
            if block.marker is None and block.lang not in ("python", "sh", "console"):
                pytest.fail(f"a {block.lang or 'plain'} block with no marker: {where}")
            if block.marker == "not-runnable":
                assert len(block.arg) > 10, f"a not-runnable marker with no reason: {where}"
            elif block.marker == "after":
                assert _page(block.arg).exists(), where
            elif block.marker == "tested-by":
                tester = ROOT / block.arg.split()[0]
                text = tester.read_text(encoding="utf-8")
                commands = [
                    ln[2:].split("  #")[0].split(" >")[0].strip()
                    for ln in block.body.splitlines()
                    if ln.startswith("$ ")
                ]
                for command in commands:
                    # The tester writes into its own temporary directory: `--output {out}`.
                    run = re.sub(r"--output \S+", "--output {out}", command)
                    assert run in text, f"{tester.name} does not run {run!r} ({where})"
            elif block.marker is not None:
                pytest.fail(f"unknown marker {block.marker!r}: {where}")
