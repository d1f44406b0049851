"""Reading a host's catalog package as code: its modules, event constants and tracking helpers.

The lint rules (:mod:`relay.plan.lint`) judge what these functions find; nothing here reports.
Sources are read with :mod:`inspect` and :mod:`ast`, never executed beyond the import.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import textwrap
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Logger methods that count as "logged" in a fire-and-forget ``except`` block.
LOG_METHODS = frozenset({"exception", "error", "warning", "critical"})


@dataclass(slots=True)
class Helper:
    cls: type
    name: str
    node: ast.FunctionDef
    path: str
    events: set[str] = field(default_factory=set)


def rel(path: str | None) -> str:
    if not path:
        return "<unknown>"
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def package_modules(root: types.ModuleType) -> list[types.ModuleType]:
    """``root`` and, if it is a package, every module below it (imported)."""
    modules = [root]
    if hasattr(root, "__path__"):
        for info in pkgutil.walk_packages(root.__path__, prefix=root.__name__ + "."):
            modules.append(importlib.import_module(info.name))
    return modules


def source_and_line(obj: Any) -> tuple[str, int]:
    try:
        path = inspect.getsourcefile(obj)
        _, line = inspect.getsourcelines(obj)
    except (OSError, TypeError):
        return "<unknown>", 0
    return rel(path), line


def class_node(cls: type) -> ast.ClassDef | None:
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return None
    tree = ast.parse(source)
    node = tree.body[0] if tree.body else None
    return node if isinstance(node, ast.ClassDef) else None


def constants(modules: Iterable[types.ModuleType]) -> dict[str, tuple[str, str, int]]:
    """Event-name constants: event -> (attribute name, path, line).

    A constant is an upper-case class attribute holding a dotted string, on a class defined
    in the linted package (the seed's ``MixPanelEvent``).
    """
    found: dict[str, tuple[str, str, int]] = {}
    for module in modules:
        for obj in vars(module).values():
            if not isinstance(obj, type) or obj.__module__ != module.__name__:
                continue
            node = class_node(obj)
            if node is None:
                continue
            path, start = source_and_line(obj)
            for stmt in node.body:
                target: ast.expr | None = None
                value: ast.expr | None = None
                if isinstance(stmt, ast.AnnAssign):
                    target, value = stmt.target, stmt.value
                elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                    target, value = stmt.targets[0], stmt.value
                if not (
                    isinstance(target, ast.Name)
                    and target.id.isupper()
                    and isinstance(value, ast.Constant)
                    and isinstance(value.value, str)
                    and "." in value.value
                    and " " not in value.value
                ):
                    continue
                found.setdefault(value.value, (target.id, path, start + stmt.lineno - 1))
    return found


def referenced_attrs(node: ast.AST) -> set[str]:
    return {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def helpers(modules: Iterable[types.ModuleType], constant_names: dict[str, str]) -> list[Helper]:
    """Public ``track_*`` methods and the events (by constant) they or their impl track."""
    helpers: list[Helper] = []
    for module in modules:
        for cls in vars(module).values():
            if not isinstance(cls, type) or cls.__module__ != module.__name__:
                continue
            node = class_node(cls)
            if node is None:
                continue
            path, start = source_and_line(cls)
            methods = {s.name: s for s in node.body if isinstance(s, ast.FunctionDef)}
            for name, method in methods.items():
                if not name.startswith("track_"):
                    continue
                attrs = referenced_attrs(method)
                for called in list(attrs):
                    if called in methods and called.startswith("_"):
                        attrs |= referenced_attrs(methods[called])
                events = {constant_names[a] for a in attrs if a in constant_names}
                shifted = ast.increment_lineno(method, start - 1)
                assert isinstance(shifted, ast.FunctionDef)
                helpers.append(Helper(cls, name, shifted, path, events))
    return helpers


def is_strict_guard(test: ast.expr) -> bool:
    return any(
        isinstance(n, ast.Call)
        and (
            (isinstance(n.func, ast.Name) and "strict" in n.func.id)
            or (isinstance(n.func, ast.Attribute) and "strict" in n.func.attr)
        )
        for n in ast.walk(test)
    ) or any(isinstance(n, ast.Name) and "strict" in n.id for n in ast.walk(test))


def _is_fire_and_forget_block(node: ast.stmt) -> bool:
    """``with fire_and_forget(...):`` (or ``relay.fire_and_forget``), relay's own guard."""
    if not isinstance(node, ast.With):
        return False
    for item in node.items:
        call = item.context_expr
        if isinstance(call, ast.Call):
            func = call.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name == "fire_and_forget":
                return True
    return False


def fire_and_forget_problem(fn: ast.FunctionDef) -> str | None:
    """Why ``fn`` is not ``try: ... except Exception: [if strict: raise] log``; None if it is."""
    body = list(fn.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    if len(body) == 1 and _is_fire_and_forget_block(body[0]):
        return None  # ``with relay.fire_and_forget(...):`` applies the policy itself
    if len(body) != 1 or not isinstance(body[0], ast.Try):
        return "its body is not a single try/except or `with relay.fire_and_forget(...)` block"
    handlers = [
        h for h in body[0].handlers if isinstance(h.type, ast.Name) and h.type.id == "Exception"
    ]
    if not handlers:
        return "it does not catch Exception"
    handler = handlers[0]
    logs = any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in LOG_METHODS
        for n in ast.walk(handler)
    )
    if not logs:
        return "its except block does not log the failure"
    guarded: set[int] = set()
    for n in ast.walk(handler):
        if isinstance(n, ast.If) and is_strict_guard(n.test):
            guarded |= {id(r) for stmt in n.body for r in ast.walk(stmt)}
    for n in ast.walk(handler):
        if isinstance(n, ast.Raise) and id(n) not in guarded:
            return "its except block re-raises outside strict mode"
    return None
