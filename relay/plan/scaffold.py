"""``relay events new``: adds one event to a host's analytics package, the seed's seven steps.

The package follows the seed's layout: ``constants.py`` (step 1, ``MixPanelEvent``),
``schemas.py`` (step 2), ``registry.py`` (step 3, ``_EVENT_SCHEMA_REGISTRY``, registered with
relay at import), ``service/<domain>.py`` (step 4, the fire-and-forget helper class),
``service/__init__.py`` (step 5, the export) and ``tests/test_<action>_event.py`` (step 6).
Step 7, calling the helper from business logic, is the host's.

Each file is created when missing and otherwise edited with LibCST: the event's lines are
added and every other byte of the host's file is kept. New code is formatted with the host's
ruff settings. An event whose name or constant, schema, helper method or test already exists
is refused. Every edit is planned in memory first: on any error nothing is written.
"""

from __future__ import annotations

import ast
import dataclasses
import keyword
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst

from relay._errors import EditError, EventNameError, RelayError, ScaffoldExistsError
from relay._event.naming import check_event_name
from relay.plan import _django, _edit, _imports, _templates
from relay.plan._format import format_source, line_length
from relay.plan._templates import Names

#: Where the employee directory of a new Django package looks employees up (the seed's app).
DEFAULT_EMPLOYEE_MODEL = "optimo_core.Employee"
#: How much of a too-long event name an error message shows.
SHOWN_NAME_CHARS = 80
#: The dict ``registry.py`` keeps its events in (the seed's name).
REGISTRY_DICT = "_EVENT_SCHEMA_REGISTRY"


@dataclass(slots=True)
class Change:
    """One file ``events new`` writes: its new text and whether it is new."""

    path: Path
    text: str
    created: bool


@dataclass(slots=True)
class _Plan:
    changes: dict[Path, Change] = field(default_factory=dict)

    def create(self, path: Path, text: str) -> None:
        self.changes[path] = Change(path, format_source(text, path=path), created=True)

    def update(self, path: Path, module: cst.Module) -> None:
        self.changes[path] = Change(path, module.code, created=False)


def _camel(text: str) -> str:
    return "".join(part.capitalize() for part in text.replace(".", "_").split("_") if part)


def _read(path: Path) -> cst.Module:
    return _edit.parse(path.read_text(encoding="utf-8"), where=str(path))


def _helper_prefix(service_init: Path) -> str:
    """The prefix the package's helper classes share (the seed's ``OptimoMixpanel``), or ''."""
    if not service_init.exists():
        return ""
    module = _read(service_init)
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        small = stmt.body[0]
        if not isinstance(small, cst.ImportFrom) or isinstance(small.names, cst.ImportStar):
            continue
        domain = _edit.dotted(small.module).rsplit(".", 1)[-1]
        suffix = f"{_camel(domain)}TrackHelper"
        for alias in small.names:
            name = _edit.dotted(alias.name)
            if name.endswith(suffix):
                return name[: -len(suffix)]
    return ""


def _names(event: str, package_dir: Path, domain: str | None) -> Names:
    try:
        check_event_name(event)
    except EventNameError as exc:
        if len(event) <= SHOWN_NAME_CHARS:
            raise
        # A pasted paragraph is not echoed back whole: the error stays one readable line.
        shown = event[:SHOWN_NAME_CHARS] + "..."
        raise EventNameError(exc.reason, event=shown) from exc
    segments = event.split(".")
    domain = domain or segments[1]
    for what, name in (("--domain", domain), ("the package's directory name", package_dir.name)):
        if not name.isidentifier() or keyword.iskeyword(name):
            raise RelayError(f"{what} {name!r} is not a Python module name")
    action = "_".join(segments[2:])
    service = package_dir / "service"
    domain_module = service / f"{domain}.py"
    if domain_module.exists():
        helper = _edit.find_class(
            _read(domain_module), suffix="TrackHelper", where=str(domain_module)
        ).name.value
    else:
        helper = f"{_helper_prefix(service / '__init__.py')}{_camel(domain)}TrackHelper"
    return Names(
        event=event,
        package=package_dir.name,
        domain=domain,
        action=action,
        constant=action.upper(),
        schema=f"Mxp{_camel(segments[1])}{_camel(action)}EventSchema",
        helper=helper,
        method=f"track_{action}",
    )


def is_django_package(package_dir: Path) -> bool:
    """Whether the package is a Django app, or is being made beside a project's ``manage.py``."""
    if (package_dir.parent / "manage.py").exists():
        return True
    return package_dir.is_dir() and _django.is_django_code([package_dir])


def scaffold_event(
    event: str,
    *,
    package_dir: Path,
    domain: str | None = None,
    django: bool | None = None,
    employee_model: str = DEFAULT_EMPLOYEE_MODEL,
) -> list[Change]:
    """Add ``event`` to the package at ``package_dir`` (created if missing); return the changes.

    ``domain`` names the service module (default: the event's object, ``svc.<object>.…``);
    ``django`` picks the helper's flavour (default: detected, :func:`is_django_package`).
    Raises ``EventNameError`` for a bad name, :class:`ScaffoldExistsError` when the event or
    one of its names exists, :class:`relay.plan.EditError` when a host file cannot take
    the edit, :class:`relay.plan._format.FormatError` when ruff is missing or fails; in every
    case before anything is written.
    """
    names = _names(event, package_dir, domain)
    flavour = is_django_package(package_dir) if django is None else django
    own_directory = f"{names.package}.service.directory"
    found = find_directory(package_dir)
    names = dataclasses.replace(names, directory=found or own_directory)
    plan = _Plan()
    if not (package_dir / "__init__.py").exists():
        plan.create(package_dir / "__init__.py", _templates.PACKAGE_INIT.format(n=names))
    _plan_constant(plan, package_dir / "constants.py", names)
    _plan_schema(plan, package_dir / "schemas.py", names)
    _plan_registry(plan, package_dir / "registry.py", names)
    _plan_service(plan, package_dir / "service", names, django=flavour)
    if flavour and found is None:
        plan.create(
            package_dir / "service" / "directory.py",
            _templates.DIRECTORY.format(employee_model=employee_model),
        )
    _plan_tests(plan, package_dir / "tests", names, django=flavour)
    _write(list(plan.changes.values()))
    return list(plan.changes.values())


def find_directory(package_dir: Path) -> str | None:
    """The package's module defining ``fetch_employee_info`` at top level (tests excluded)."""
    if not package_dir.is_dir():
        return None
    for path in sorted(package_dir.rglob("*.py")):
        relative = path.relative_to(package_dir)
        if relative.parts[0] == "tests":
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except (SyntaxError, ValueError):
            continue
        if any(
            isinstance(node, ast.FunctionDef) and node.name == "fetch_employee_info"
            for node in tree.body
        ):
            parts = [package_dir.name, *relative.with_suffix("").parts]
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    return None


def _fragment(text: str, *, path: Path, header: str = "") -> list[cst.BaseStatement]:
    """``text`` formatted on its own (inside ``header``'s class if given), as statements."""
    source = f"{header}\n{text}" if header else text
    module = _edit.parse(format_source(source, path=path), where="generated code")
    if not header:
        return list(module.body)
    cls = module.body[-1]
    assert isinstance(cls, cst.ClassDef)
    assert isinstance(cls.body, cst.IndentedBlock)
    return list(cls.body.body)


def _spaced(statements: list[cst.BaseStatement], blank: int) -> list[cst.BaseStatement]:
    first = statements[0].with_changes(leading_lines=[cst.EmptyLine(indent=False)] * blank)
    return [first, *statements[1:]]


def _ensure_import(
    module: cst.Module, name: str, source: str, *, path: Path, package: str
) -> cst.Module:
    """``from source import name`` added unless ``name`` is bound at the module's top level.

    A name imported from another module (``track`` from ``relay`` where the Django helper needs
    ``relay.contrib.django``'s) is an :class:`EditError`: the new code would call the wrong one.
    """
    if name in _edit.bound_names(module):
        origin = _imports.imported_from(module, name)
        if origin is not None and origin != source:
            raise EditError(f"{path} imports {name} from {origin}; the new helper needs {source}'s")
        return module
    existing = _imports.find_import_from(module, source)
    if existing is None:
        new = _fragment(f"from {source} import {name}\n", path=path)[0]
        assert isinstance(new, cst.SimpleStatementLine)
        return _imports.insert_import(module, new, package=package)
    small = existing.body[0]
    assert isinstance(small, cst.ImportFrom)
    if small.lpar is not None and _edit.is_exploded(small):
        return _imports.add_to_exploded_import(module, existing, name)
    members = sorted([*_imports.imported_names(existing), name], key=_edit.member_key)
    new = _fragment(f"from {source} import {', '.join(members)}\n", path=path)[0]
    assert isinstance(new, cst.SimpleStatementLine)
    return _edit.replace_statement(module, existing, new)


def _plan_constant(plan: _Plan, path: Path, n: Names) -> None:
    line = _templates.CONSTANT.format(n=n)
    if not path.exists():
        plan.create(path, _templates.CONSTANTS.format(constant=line))
        return
    module = _read(path)
    cls = _edit.find_class(module, name="MixPanelEvent", where=str(path))
    if n.event in _edit.string_values(cls):
        raise ScaffoldExistsError(f"{n.event} is already in {path}")
    if n.constant in _edit.class_members(cls):
        raise ScaffoldExistsError(f"MixPanelEvent.{n.constant} already exists in {path}")
    if "Final" not in _edit.bound_names(module):
        line = line.replace(": Final", "")
    statements = _fragment(line, path=path, header="class MixPanelEvent:")
    plan.update(path, _edit.append_to_class(module, cls, statements))


def _plan_schema(plan: _Plan, path: Path, n: Names) -> None:
    text = _templates.SCHEMA.format(n=n)
    if not path.exists():
        plan.create(path, _templates.SCHEMAS.format(schema=text))
        return
    module = _read(path)
    if n.schema in _edit.bound_names(module):
        raise ScaffoldExistsError(f"{n.schema} already exists in {path}")
    for name, source in (
        ("Field", "pydantic"),
        ("MixpanelSuperEventPropertiesSchema", "relay"),
        ("STRICT_MODEL_CONFIG", "relay"),
    ):
        module = _ensure_import(module, name, source, path=path, package=n.package)
    module = _edit.append_statements(module, _spaced(_fragment(text, path=path), 2))
    plan.update(path, module)


def _plan_registry(plan: _Plan, path: Path, n: Names) -> None:
    if not path.exists():
        item = _edit.dict_item(
            f"MixPanelEvent.{n.constant}", n.schema, indent="    ", line_length=line_length(path)
        )
        plan.create(path, _templates.REGISTRY.format(n=n, item=item))
        return
    module = _read(path)
    key = f"MixPanelEvent.{n.constant}"
    found = _edit.find_dict(module, REGISTRY_DICT)
    if found is None:
        _plan_register_call(plan, path, module, n)
        return
    stmt, value = found
    if key in _edit.dict_keys(value):
        raise ScaffoldExistsError(f"{key} is already in {path}")
    module = _ensure_import(module, n.schema, f"{n.package}.schemas", path=path, package=n.package)
    module = _ensure_import(
        module, "MixPanelEvent", f"{n.package}.constants", path=path, package=n.package
    )
    found = _edit.find_dict(module, REGISTRY_DICT)
    assert found is not None
    stmt, value = found
    if value.elements and _edit.is_exploded(value):
        module = _edit.add_to_exploded_dict(
            module, value, key, n.schema, line_length=line_length(path)
        )
    else:
        # An empty or one-line dict: the statement is rewritten, exploded with a trailing comma.
        code = cst.Module(body=[]).code_for_node(stmt).strip()
        inner = code[code.index("{") + 1 : code.rindex("}")].strip().rstrip(",")
        item = _edit.dict_item(key, n.schema, indent="    ", line_length=line_length(path))
        entries = [*([inner] if inner else []), f"{key}: {item}"]
        head = code[: code.index("{")]
        new_code = head + "{\n" + "".join(f"    {e},\n" for e in entries) + "}\n"
        new = _fragment(new_code, path=path)[0]
        assert isinstance(new, cst.SimpleStatementLine)
        module = _edit.replace_statement(module, stmt, new)
    plan.update(path, module)


def _plan_register_call(plan: _Plan, path: Path, module: cst.Module, n: Names) -> None:
    """A registry written as ``register_event(MixPanelEvent.X, Schema)`` calls gets one more."""
    calls = _edit.top_level_calls(module, "register_event")
    if not calls:
        raise EditError(
            f"{path} has neither a {REGISTRY_DICT} dict literal nor register_event(...) calls"
        )
    if f"MixPanelEvent.{n.constant}" in {args[0] for args in calls if args}:
        raise ScaffoldExistsError(f"MixPanelEvent.{n.constant} is already in {path}")
    for name, source in (
        ("register_event", "relay"),
        ("MixPanelEvent", f"{n.package}.constants"),
        (n.schema, f"{n.package}.schemas"),
    ):
        module = _ensure_import(module, name, source, path=path, package=n.package)
    call = f"register_event(MixPanelEvent.{n.constant}, {n.schema})\n"
    module = _edit.append_statements(module, _fragment(call, path=path))
    plan.update(path, module)


def _plan_service(plan: _Plan, service: Path, n: Names, *, django: bool) -> None:
    methods = (_templates.DJANGO_METHODS if django else _templates.SQL_METHODS).format(n=n)
    module_path = service / f"{n.domain}.py"
    if not module_path.exists():
        template = _templates.DJANGO_SERVICE if django else _templates.SQL_SERVICE
        plan.create(module_path, template.format(n=n, methods=methods))
    else:
        module = _read(module_path)
        cls = _edit.find_class(module, name=n.helper, where=str(module_path))
        if n.method in _edit.class_members(cls):
            raise ScaffoldExistsError(f"{n.helper}.{n.method} already exists in {module_path}")
        needs = _templates.DJANGO_NEEDS if django else _templates.SQL_NEEDS
        for name, source in {**needs, n.schema: "{package}.schemas"}.items():
            module = _ensure_import(
                module,
                name,
                source.format(package=n.package, directory=n.directory),
                path=module_path,
                package=n.package,
            )
        if "logger" not in _edit.bound_names(module):
            raise EditError(f"{module_path} has no module-level logger for the helper")
        cls = _edit.find_class(module, name=n.helper)
        statements = _spaced(_fragment(methods, path=module_path, header="class _X:"), 1)
        plan.update(module_path, _edit.append_to_class(module, cls, statements))
    init = service / "__init__.py"
    if not init.exists():
        plan.create(init, _templates.SERVICE_INIT.format(n=n))
        return
    module = _read(init)
    if n.helper in _edit.bound_names(module):
        return
    source = f"{n.package}.service.{n.domain}"
    module = _ensure_import(module, n.helper, source, path=init, package=n.package)
    found = _edit.find_all_list(module)
    if found is None:
        raise EditError(f"{init} has no __all__ list to export {n.helper} from")
    stmt, value = found
    if value.elements and _edit.is_exploded(value):
        module = _edit.add_to_exploded_list(module, value, n.helper)
    else:
        members = sorted([*_edit.list_strings(value), n.helper], key=_edit.member_key)
        new = _fragment(f"__all__ = {members!r}\n".replace("'", '"'), path=init)[0]
        assert isinstance(new, cst.SimpleStatementLine)
        module = _edit.replace_statement(module, stmt, new)
    plan.update(init, module)


def _plan_tests(plan: _Plan, tests: Path, n: Names, *, django: bool) -> None:
    test_path = tests / f"test_{n.action}_event.py"
    if test_path.exists():
        raise ScaffoldExistsError(f"{test_path} already exists")
    if not tests.exists():
        plan.create(tests / "__init__.py", _templates.TESTS_INIT)
    if (
        django
        and n.directory == f"{n.package}.service.directory"
        and not (tests / "conftest.py").exists()
    ):
        plan.create(tests / "conftest.py", _templates.TESTS_CONFTEST.format(n=n))
    template = _templates.DJANGO_TEST if django else _templates.SQL_TEST
    plan.create(test_path, template.format(n=n, registry=_registry_module(plan, n)))


def _registry_module(plan: _Plan, n: Names) -> str:
    """Where the test imports relay's registry views: the package's registry.py if it re-exports
    them (the seed's test does), else relay."""
    registry = next(c for c in plan.changes.values() if c.path.name == "registry.py")
    bound = _edit.bound_names(_edit.parse(registry.text, where=str(registry.path)))
    wanted = {"EVENT_SCHEMA_REGISTRY", "is_event_registered"}
    return f"{n.package}.registry" if wanted <= bound else "relay"


def _write(changes: list[Change]) -> None:
    """Every file written to a temporary sibling first, then renamed into place."""
    staged: list[tuple[str, Path]] = []
    try:
        for change in changes:
            change.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=change.path.parent, prefix=".relay-new-", suffix=".py")
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(change.text)
            staged.append((tmp, change.path))
    except OSError:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        raise
    for tmp, path in staged:
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)


def changed_paths(changes: list[Change]) -> Iterator[str]:
    """``created <path>`` / ``updated <path>`` lines for the CLI."""
    for change in changes:
        yield f"{'created' if change.created else 'updated'} {change.path}"
