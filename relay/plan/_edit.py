"""Edits of a host's existing module with LibCST: one event's lines added, every other kept.

LibCST keeps the host's formatting and comments byte for byte; each function here returns the
module's new source or raises :class:`EditError` (the scaffold then writes nothing). New code
arrives already formatted (:mod:`relay.plan._format`) and is spliced in as parsed statements.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

import libcst as cst

from relay._errors import EditError

_Node = TypeVar("_Node", bound=cst.CSTNode)


def replace(module: cst.Module, old: cst.CSTNode, new: cst.CSTNode) -> cst.Module:
    replaced = cast(Any, module).deep_replace(old, new)
    assert isinstance(replaced, cst.Module)
    return replaced


def parse(source: str, *, where: str) -> cst.Module:
    """The module's concrete syntax tree; a syntax error is an :class:`EditError`."""
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        raise EditError(f"{where} does not parse: line {exc.raw_line}") from exc


def dotted(node: cst.BaseExpression | None) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{dotted(node.value)}.{node.attr.value}"
    return ""


def bound_names(module: cst.Module) -> set[str]:
    """Names bound at the module's top level: imports, classes, functions, assignments."""
    names: set[str] = set()
    for stmt in module.body:
        if isinstance(stmt, cst.ClassDef | cst.FunctionDef):
            names.add(stmt.name.value)
            continue
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                for alias in small.names:
                    names.add(alias_name(alias))
            elif isinstance(small, cst.Import):
                for alias in small.names:
                    names.add(alias_name(alias).split(".")[0])
            elif isinstance(small, cst.Assign):
                names |= {dotted(t.target) for t in small.targets}
            elif isinstance(small, cst.AnnAssign):
                names.add(dotted(small.target))
    return names


def alias_name(alias: cst.ImportAlias) -> str:
    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
        return alias.asname.name.value
    return dotted(alias.name)


def find_class(
    module: cst.Module, *, name: str | None = None, suffix: str = "", where: str = "the module"
) -> cst.ClassDef:
    """The top-level class called ``name`` (or the one whose name ends with ``suffix``)."""
    found = [
        stmt
        for stmt in module.body
        if isinstance(stmt, cst.ClassDef)
        and (stmt.name.value == name if name else stmt.name.value.endswith(suffix))
    ]
    if len(found) != 1:
        what = name or f"*{suffix}"
        raise EditError(f"{where}: expected one class {what}, found {len(found)}")
    return found[0]


def class_members(cls: cst.ClassDef) -> set[str]:
    """Names the class body defines: attributes, methods, nested classes."""
    names: set[str] = set()
    for stmt in cls.body.body:
        if isinstance(stmt, cst.FunctionDef | cst.ClassDef):
            names.add(stmt.name.value)
        elif isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.AnnAssign):
                    names.add(dotted(small.target))
                elif isinstance(small, cst.Assign):
                    names |= {dotted(t.target) for t in small.targets}
    return names


def string_values(cls: cst.ClassDef) -> set[str]:
    """The string constants a class body assigns (the event names of ``MixPanelEvent``)."""
    values: set[str] = set()
    for stmt in cls.body.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            value = small.value if isinstance(small, cst.Assign | cst.AnnAssign) else None
            if isinstance(value, cst.SimpleString):
                values.add(str(value.evaluated_value))
    return values


def append_to_class(
    module: cst.Module, cls: cst.ClassDef, statements: list[cst.BaseStatement]
) -> cst.Module:
    """``statements`` added at the end of ``cls``'s body (after its last member)."""
    body = cls.body
    if not isinstance(body, cst.IndentedBlock):
        raise EditError(f"class {cls.name.value} is written on one line")
    new_cls = cls.with_changes(body=body.with_changes(body=[*body.body, *statements]))
    return replace(module, cls, new_cls)


def append_statements(module: cst.Module, statements: list[cst.BaseStatement]) -> cst.Module:
    """``statements`` added at the end of the module."""
    return module.with_changes(body=[*module.body, *statements])


def replace_statement(
    module: cst.Module, old: cst.SimpleStatementLine, new: cst.SimpleStatementLine
) -> cst.Module:
    """``old`` replaced by ``new``, keeping ``old``'s leading comments and blank lines."""
    return replace(module, old, new.with_changes(leading_lines=old.leading_lines))


def member_key(name: str) -> tuple[int, str, str]:
    """isort's order-by-type key (RUF022 too): CONSTANTS, then Classes, then the rest."""
    kind = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    return (kind, name.lower(), name)


def is_exploded(node: cst.List | cst.Dict | cst.ImportFrom) -> bool:
    """Whether the literal (or parenthesised import) is written one element per line."""
    return "\n" in cst.Module(body=[]).code_for_node(node).strip()


def _clean_comma(opening: cst.BaseParenthesizableWhitespace) -> cst.Comma:
    if isinstance(opening, cst.ParenthesizedWhitespace):
        return cst.Comma(
            whitespace_after=cst.ParenthesizedWhitespace(
                first_line=cst.TrailingWhitespace(),
                empty_lines=[],
                indent=True,
                last_line=opening.last_line,
            )
        )
    return cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


def insert_element(
    elements: list[_Node],
    index: int,
    new: _Node,
    opening: cst.BaseParenthesizableWhitespace,
    closing: cst.BaseParenthesizableWhitespace,
) -> tuple[list[_Node], cst.BaseParenthesizableWhitespace]:
    """``new`` inserted at ``index`` of an exploded sequence, and the closing bracket's new
    leading whitespace. Every old element keeps its comma and the comment written after it
    (the last element's comment belongs to the closing bracket in LibCST's tree)."""
    clean = _clean_comma(opening)
    out = list(elements)
    if index < len(out):
        out.insert(index, new.with_changes(comma=clean))
        return out, closing
    last = out[-1]
    comma = getattr(last, "comma", cst.MaybeSentinel.DEFAULT)
    if isinstance(closing, cst.ParenthesizedWhitespace) and isinstance(
        opening, cst.ParenthesizedWhitespace
    ):
        kept = cst.Comma(
            whitespace_before=comma.whitespace_before
            if isinstance(comma, cst.Comma)
            else cst.SimpleWhitespace(""),
            whitespace_after=cst.ParenthesizedWhitespace(
                first_line=closing.first_line,
                empty_lines=closing.empty_lines,
                indent=True,
                last_line=opening.last_line,
            ),
        )
        out[-1] = last.with_changes(comma=kept)
        trailing = cst.Comma() if isinstance(comma, cst.Comma) else cst.MaybeSentinel.DEFAULT
        out.append(new.with_changes(comma=trailing))
        closed = cst.ParenthesizedWhitespace(
            first_line=cst.TrailingWhitespace(),
            empty_lines=[],
            indent=True,
            last_line=closing.last_line,
        )
        return out, closed
    out[-1] = last.with_changes(comma=clean)
    out.append(new.with_changes(comma=comma))
    return out, closing


def find_all_list(module: cst.Module) -> tuple[cst.SimpleStatementLine, cst.List] | None:
    """The top-level ``__all__ = [...]`` statement and its list."""
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if isinstance(small, cst.Assign):
                targets = {dotted(t.target) for t in small.targets}
            elif isinstance(small, cst.AnnAssign):
                targets = {dotted(small.target)}
            else:
                continue
            if "__all__" in targets and isinstance(small.value, cst.List):
                return stmt, small.value
    return None


def list_strings(value: cst.List) -> list[str]:
    """The string values of a list literal; anything else is an :class:`EditError`."""
    strings = [e.value for e in value.elements if isinstance(e.value, cst.SimpleString)]
    if len(strings) != len(value.elements):
        raise EditError("__all__ holds something other than string literals")
    return [str(s.evaluated_value) for s in strings]


def add_to_exploded_list(module: cst.Module, value: cst.List, name: str) -> cst.Module:
    """``name`` added, in sorted place, to an exploded list of strings."""
    values = list_strings(value)
    first = value.elements[0].value
    quote = first.quote if isinstance(first, cst.SimpleString) else '"'
    index = sorted([*values, name], key=member_key).index(name)
    new = cst.Element(cst.SimpleString(f"{quote}{name}{quote}"))
    elements, closing = insert_element(
        list(value.elements),
        index,
        new,
        value.lbracket.whitespace_after,
        value.rbracket.whitespace_before,
    )
    rbracket = value.rbracket.with_changes(whitespace_before=closing)
    return replace(module, value, value.with_changes(elements=elements, rbracket=rbracket))


def find_dict(module: cst.Module, name: str) -> tuple[cst.SimpleStatementLine, cst.Dict] | None:
    """The top-level statement assigning a dict literal to ``name`` (annotated or not)."""
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if (isinstance(small, cst.AnnAssign) and dotted(small.target) == name) or (
                isinstance(small, cst.Assign) and name in {dotted(t.target) for t in small.targets}
            ):
                value = small.value
            else:
                continue
            return (stmt, value) if isinstance(value, cst.Dict) else None
    return None


def dict_keys(value: cst.Dict) -> set[str]:
    """The dotted keys of a dict literal (``MixPanelEvent.X``)."""
    return {dotted(e.key) for e in value.elements if isinstance(e, cst.DictElement)}


def dict_item(key: str, item: str, *, indent: str, line_length: int) -> str:
    """The value's code: ``item``, or ``(item)`` on lines of its own when the entry is too long.

    ruff's formatter keeps either form, and nothing else keeps a long entry under E501.
    """
    if len(f"{indent}{key}: {item},") <= line_length:
        return item
    return f"(\n{indent * 2}{item}\n{indent})"


def add_to_exploded_dict(
    module: cst.Module, value: cst.Dict, key: str, item: str, *, line_length: int
) -> cst.Module:
    """``key: item`` appended to an exploded dict literal."""
    opening = value.lbrace.whitespace_after
    indent = opening.last_line.value if isinstance(opening, cst.ParenthesizedWhitespace) else ""
    code = dict_item(key, item, indent=indent or "    ", line_length=line_length)
    entry = cst.DictElement(cst.parse_expression(key), cst.parse_expression(code))
    elements, closing = insert_element(
        list(value.elements),
        len(value.elements),
        entry,
        value.lbrace.whitespace_after,
        value.rbrace.whitespace_before,
    )
    rbrace = value.rbrace.with_changes(whitespace_before=closing)
    return replace(module, value, value.with_changes(elements=elements, rbrace=rbrace))


def top_level_calls(module: cst.Module, function: str) -> list[list[str]]:
    """The arguments (as code) of each top-level expression statement calling ``function``."""
    calls: list[list[str]] = []
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if (
                isinstance(small, cst.Expr)
                and isinstance(small.value, cst.Call)
                and dotted(small.value.func) == function
            ):
                code = cst.Module(body=[]).code_for_node
                calls.append([code(arg.value) for arg in small.value.args])
    return calls
