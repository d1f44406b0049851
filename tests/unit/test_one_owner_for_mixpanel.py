"""Only relay._mixpanel talks HTTP to Mixpanel: no other module of relay imports an HTTP client.

The exceptions are named: the stand-in (it is the server) and `relay standin`'s query of the
local stand-in.
"""

from __future__ import annotations

import ast
from pathlib import Path

RELAY = Path(__file__).resolve().parents[2] / "relay"
HTTP_CLIENTS = {"httpx", "httpcore", "requests", "urllib3", "aiohttp", "http.client"}
ALLOWED = {
    RELAY / "cli" / "standin.py",  # queries the local stand-in, never Mixpanel
}


def _imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            found.add("__import__")
    return found


def test_no_module_outside_the_mixpanel_package_imports_an_http_client() -> None:
    """HTTP clients are imported only under relay/_mixpanel/ (and the named exceptions)."""
    offenders = []
    for path in sorted(RELAY.rglob("*.py")):
        if RELAY / "_mixpanel" in path.parents or path in ALLOWED:
            continue
        if RELAY / "testing" / "mixpanel_standin" in path.parents:
            continue
        clients = {
            name
            for name in _imported(path)
            if name in HTTP_CLIENTS or name.split(".")[0] in HTTP_CLIENTS - {"http.client"}
        }
        if clients:
            offenders.append(f"{path.relative_to(RELAY.parent)}: {sorted(clients)}")
    assert offenders == []
