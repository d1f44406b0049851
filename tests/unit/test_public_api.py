"""The public API: what ``relay`` exports, and that the README uses nothing else.

Modules whose name starts with an underscore are private. Users import public names from
``relay`` (or from the public packages ``relay.admin``, ``relay.cli``,
``relay.contrib``, ``relay.demos``, ``relay.plan``, ``relay.testing``); the README is the
contract, so every ``relay.<name>`` it mentions must resolve without touching a private module.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import relay

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_PACKAGES = {"admin", "cli", "contrib", "demos", "plan", "testing", "migrations"}


def test_every_exported_name_resolves_to_the_object_in_its_private_module() -> None:
    """``relay.<name>`` for each name of ``__all__`` is the object its private module defines."""
    assert sorted(relay.__all__) == sorted(relay._EXPORTS)
    for name in relay.__all__:
        module, attribute = relay._EXPORTS[name]
        assert getattr(relay, name) is getattr(importlib.import_module(module), attribute)


def test_an_unknown_name_raises_attribute_error() -> None:
    """A typo is an AttributeError naming the attribute, as for any module."""
    with pytest.raises(AttributeError, match="no attribute 'trak'"):
        _ = relay.trak  # type: ignore[attr-defined]


def test_import_relay_loads_no_heavy_dependency() -> None:
    """``import relay`` alone loads neither SQLAlchemy, pydantic nor Alembic (names are lazy)."""
    code = (
        "import sys, relay\n"
        "heavy = [m for m in ('sqlalchemy', 'pydantic', 'alembic', 'httpx') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


def _documentation() -> str:
    """The README and every page of the documentation site (not the engineers' notes)."""
    docs = ROOT / "docs"
    pages = [p for p in sorted(docs.rglob("*.md")) if "notes" not in p.relative_to(docs).parts]
    return "\n".join(p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *pages])


def _readme_references() -> set[str]:
    text = _documentation()
    dotted = set(re.findall(r"(?<![\w./-])relay\.([A-Za-z_][\w.]*\w)", text))
    imported = set()
    for module, names in re.findall(r"^from (relay[\w.]*) import ([\w, ]+)$", text, flags=re.M):
        imported |= {f"{module}.{n.strip()}".removeprefix("relay.") for n in names.split(",")}
    # Not Python references: file names and hosts (relay.db, relay.service), the Django
    # permission relay.operate_outbox and Django system-check ids (relay.E001).
    return {
        ref
        for ref in dotted | imported
        if ref not in {"db", "service", "operate_outbox"} and not re.fullmatch(r"[EW]\d{3}", ref)
    }


def test_the_readme_only_uses_public_names() -> None:
    """Every ``relay.X`` the README and the docs pages mention is public (no ``_`` part) and
    resolves."""
    references = _readme_references()
    assert references, "the README mentions relay's API"
    for ref in sorted(references):
        parts = ref.split(".")
        assert not any(part.startswith("_") for part in parts), f"README uses private relay.{ref}"
        if parts[0] in PUBLIC_PACKAGES:
            target: object = importlib.import_module(f"relay.{parts[0]}")
            rest = parts[1:]
        else:
            target, rest = relay, parts
        for i, part in enumerate(rest):
            if hasattr(target, part):
                target = getattr(target, part)
                continue
            # A submodule of a public package (relay.testing.plugin, ...).
            assert isinstance(target, type(relay)), f"relay.{ref} does not resolve"
            module_name = f"{target.__name__}.{part}"
            target = importlib.import_module(module_name)
            assert i == len(rest) - 1 or hasattr(target, rest[i + 1]), f"relay.{ref}"


def test_every_relay_exception_is_public_in_relay_exceptions() -> None:
    """Each exception class relay defines is importable from the public ``relay.exceptions``."""
    import relay.exceptions  # noqa: PLC0415

    source = ROOT / "relay"
    defined = {
        match.group(1)
        for path in source.rglob("*.py")
        if "testing" not in path.relative_to(source).parts
        for match in re.finditer(
            r"^class (\w+)\(([\w, .]*(Error|Exception)[\w, .]*)\):", path.read_text(), re.M
        )
    }
    assert defined, "relay defines exceptions"
    assert defined == set(relay.exceptions.__all__)
    for name in defined:
        assert issubclass(getattr(relay.exceptions, name), relay.RelayError), name
