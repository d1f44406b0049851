"""Imports in a host's module: which names are bound, and a new one placed as isort would.

Part of ``relay events new``'s LibCST edits (:mod:`relay.plan._edit`): a name the event's code
needs is added to an existing ``from module import ...`` statement, or a new statement is put in
its isort section and order, so ruff's I001 stays clean without re-sorting the host's imports.
"""

from __future__ import annotations

import sys

import libcst as cst

from relay._errors import EditError
from relay.plan._edit import alias_name, dotted, insert_element, member_key, replace

#: isort's sections, in order: ``from __future__``, the standard library, third party, first party.
FUTURE, STDLIB, THIRD_PARTY, FIRST_PARTY = range(4)


def _import_section(module_name: str, package: str) -> int:
    root = module_name.split(".", maxsplit=1)[0]
    if root == "__future__":
        return FUTURE
    if root == package:
        return FIRST_PARTY
    if root in sys.stdlib_module_names:
        return STDLIB
    return THIRD_PARTY


def _import_key(small: cst.BaseSmallStatement, package: str) -> tuple[int, int, str]:
    if isinstance(small, cst.ImportFrom):
        name = "." * len(small.relative) + dotted(small.module)
        return (_import_section(name, package), 1, name.lower())
    assert isinstance(small, cst.Import)
    name = dotted(small.names[0].name)
    return (_import_section(name, package), 0, name.lower())


def _import_block(module: cst.Module) -> list[int]:
    """Indexes of the module's leading import statements (after its docstring)."""
    indexes: list[int] = []
    for index, stmt in enumerate(module.body):
        if isinstance(stmt, cst.SimpleStatementLine) and all(
            isinstance(s, cst.Import | cst.ImportFrom) for s in stmt.body
        ):
            indexes.append(index)
        elif indexes:
            break
    return indexes


def find_import_from(module: cst.Module, module_name: str) -> cst.SimpleStatementLine | None:
    """The top-level ``from module_name import ...`` statement, if there is exactly one."""
    for index in _import_block(module):
        stmt = module.body[index]
        assert isinstance(stmt, cst.SimpleStatementLine)
        small = stmt.body[0]
        if (
            isinstance(small, cst.ImportFrom)
            and not small.relative
            and dotted(small.module) == module_name
            and not isinstance(small.names, cst.ImportStar)
        ):
            return stmt
    return None


def imported_names(stmt: cst.SimpleStatementLine) -> list[str]:
    """What a ``from ... import a, b as c`` statement imports, as written (``b as c``)."""
    small = stmt.body[0]
    assert isinstance(small, cst.ImportFrom)
    assert not isinstance(small.names, cst.ImportStar)
    names = []
    for alias in small.names:
        text = dotted(alias.name)
        if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
            text += f" as {alias.asname.name.value}"
        names.append(text)
    return names


def insert_import(
    module: cst.Module, statement: cst.SimpleStatementLine, *, package: str
) -> cst.Module:
    """A new import statement placed where isort would put it in the leading import block."""
    block = _import_block(module)
    if not block:
        raise EditError("the module has no import block to add an import to")
    key = _import_key(statement.body[0], package)
    position = block[0]
    for index in block:
        stmt = module.body[index]
        assert isinstance(stmt, cst.SimpleStatementLine)
        if _import_key(stmt.body[0], package) < key:
            position = index + 1
    body = list(module.body)
    previous = body[position - 1] if position > block[0] else None
    follower = body[position] if position <= block[-1] else None
    same_before = isinstance(previous, cst.SimpleStatementLine) and (
        _import_key(previous.body[0], package)[0] == key[0]
    )
    same_after = isinstance(follower, cst.SimpleStatementLine) and (
        _import_key(follower.body[0], package)[0] == key[0]
    )
    blank = [cst.EmptyLine()]
    if same_before:
        statement = statement.with_changes(leading_lines=[])
    elif isinstance(follower, cst.SimpleStatementLine):
        # First of its section: it takes over the blank line (or comments) before the follower.
        statement = statement.with_changes(leading_lines=follower.leading_lines)
        body[position] = follower.with_changes(leading_lines=[] if same_after else blank)
    else:
        statement = statement.with_changes(leading_lines=blank)
    body.insert(position, statement)
    return module.with_changes(body=body)


def add_to_exploded_import(
    module: cst.Module, stmt: cst.SimpleStatementLine, name: str
) -> cst.Module:
    """``name`` added, in sorted place, to a parenthesised one-per-line ``from ... import``."""
    small = stmt.body[0]
    assert isinstance(small, cst.ImportFrom)
    assert not isinstance(small.names, cst.ImportStar)
    assert small.lpar is not None
    names = [alias_name(a) for a in small.names]
    index = sorted([*names, name], key=member_key).index(name)
    new = cst.ImportAlias(name=cst.Name(name))
    assert small.rpar is not None
    aliases, closing = insert_element(
        list(small.names), index, new, small.lpar.whitespace_after, small.rpar.whitespace_before
    )
    rpar = small.rpar.with_changes(whitespace_before=closing)
    return replace(module, small, small.with_changes(names=aliases, rpar=rpar))


def imported_from(module: cst.Module, name: str) -> str | None:
    """The module a top-level ``from X import name`` (or ``... as name``) imports it from."""
    for index in _import_block(module):
        stmt = module.body[index]
        assert isinstance(stmt, cst.SimpleStatementLine)
        for small in stmt.body:
            if (
                isinstance(small, cst.ImportFrom)
                and not isinstance(small.names, cst.ImportStar)
                and any(alias_name(alias) == name for alias in small.names)
            ):
                return "." * len(small.relative) + dotted(small.module)
    return None
