"""The stand-in is an independent reading of Mixpanel's contract: it imports none of relay's.

If the stand-in shared relay's limits or rules, a mistake in them would pass both sides of
every test. Its modules may import only the standard library, third-party packages and
each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import relay.testing.mixpanel_standin as package

PACKAGE = Path(package.__file__).parent


def _relay_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return [name for name in found if name == "relay" or name.startswith("relay.")]


def test_the_stand_in_imports_nothing_of_relay_but_itself() -> None:
    """Every relay import in the package's modules is of the package itself."""
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 10
    for path in modules:
        foreign = [
            name
            for name in _relay_imports(path)
            if not name.startswith("relay.testing.mixpanel_standin")
        ]
        assert foreign == [], f"{path.name} imports {foreign}"
