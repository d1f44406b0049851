"""Personal data in a tracking helper's code: log calls that carry it, email-shaped distinct ids.

The lint rules RLY013 and RLY014 (:mod:`relay.plan.lint`) judge what these functions find. A
value is personal when its name says so by relay's own vocabulary
(:func:`relay._event.pii.field_name_refusal`: ``email``, ``employee.email``, ``full_name``),
or when it is a literal email. ``organization.name`` is read as ``organization_name``, which
the seed allows.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

from relay._event.pii import field_name_refusal, looks_like_email

#: Logger methods whose arguments reach the logs (the seed logs with structlog).
LOGGING_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical"})
_EMAIL = "an email address"


@dataclass(frozen=True, slots=True)
class Problem:
    """Where (line in the class's source, 1-based) and what was found."""

    line: int
    method: str
    what: str


def _names(node: ast.AST) -> Iterator[str]:
    """The names an expression reads, ``a.b`` as ``a_b`` (so ``organization.name`` is allowed)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            yield sub.id
        elif isinstance(sub, ast.Attribute):
            base = sub.value
            owner = base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
            yield f"{owner}_{sub.attr}" if owner else sub.attr


def _literal_email(node: ast.AST) -> bool:
    return any(
        isinstance(sub, ast.Constant) and isinstance(sub.value, str) and looks_like_email(sub.value)
        for sub in ast.walk(node)
    ) or any(
        isinstance(sub, ast.JoinedStr)
        and any(isinstance(v, ast.Constant) and "@" in str(v.value) for v in sub.values)
        for sub in ast.walk(node)
    )


def personal(node: ast.AST) -> str | None:
    """What personal data the expression carries, or None."""
    if _literal_email(node):
        return _EMAIL
    for name in _names(node):
        refusal = field_name_refusal(name)
        if refusal is not None:
            return refusal
    return None


def _is_log_call(call: ast.Call) -> bool:
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr in LOGGING_METHODS):
        return False
    owner = func.value
    name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
    return "log" in name.lower()


def logged_personal_values(cls: ast.ClassDef) -> list[Problem]:
    """Log calls in the class's methods whose keyword names or values are personal."""
    problems: list[Problem] = []
    for method in (s for s in cls.body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)):
        for call in (n for n in ast.walk(method) if isinstance(n, ast.Call)):
            if not _is_log_call(call):
                continue
            for keyword in call.keywords:
                what = (field_name_refusal(keyword.arg) if keyword.arg else None) or personal(
                    keyword.value
                )
                if what:
                    label = keyword.arg or "**"
                    problems.append(Problem(call.lineno, method.name, f"{label}= ({what})"))
            for arg in call.args[1:]:
                what = personal(arg)
                if what:
                    problems.append(Problem(call.lineno, method.name, f"an argument ({what})"))
    return problems


def email_distinct_ids(cls: ast.ClassDef) -> list[Problem]:
    """``distinct_id`` values (keywords, or a local ``distinct_id = ...``) shaped as emails."""
    problems: list[Problem] = []
    for method in (s for s in cls.body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)):
        values: list[tuple[int, ast.AST]] = []
        for node in ast.walk(method):
            if isinstance(node, ast.Call):
                values += [(node.lineno, k.value) for k in node.keywords if k.arg == "distinct_id"]
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if node.value is not None and any(
                    isinstance(t, ast.Name) and t.id == "distinct_id" for t in targets
                ):
                    values.append((node.lineno, node.value))
        for line, value in values:
            if personal(value) == _EMAIL:
                problems.append(Problem(line, method.name, ast.unparse(value)))
    return problems
