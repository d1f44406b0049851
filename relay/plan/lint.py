"""``relay events lint``: checks a host's event catalog against the seed's checklist and rules.

The catalog is imported (so registration's own checks run) and read with :mod:`ast`: every
registered event whose schema lives in the linted package is checked for its constant, its
schema's name, docstring and field descriptions, its tracking helper's shape (keyword-only,
fire-and-forget) and export, and, when a tests path is given, a test that tracks it.

Each finding has a stable rule id (``RLY0nn``), the file and line, and a one-line fix.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from relay._errors import DjangoSetupError, EventContractError, RelayError
from relay._event.naming import check_event_name
from relay._event.properties import MixpanelSuperEventPropertiesSchema
from relay._event.registry import EVENT_SCHEMA_REGISTRY
from relay.plan import _code, _django, _personal

#: Rule id -> what the rule demands (the stable contract of ``events lint``).
RULES: dict[str, str] = {
    "RLY000": "the catalog module imports and registers cleanly",
    "RLY001": "an event constant follows {prefix}.{object}.{action}[.error]",
    "RLY002": "every event constant is registered",
    "RLY003": "the schema class is named Mxp{Domain}{Action}EventSchema",
    "RLY004": "the schema docstring says when the event is tracked ('Tracked when ...')",
    "RLY005": "every schema field has a description",
    "RLY006": "a schema inherits the base fields and never redefines them",
    "RLY007": "every registered event has a tracking helper",
    "RLY008": "the helper's arguments are keyword-only (after the session, if it takes one)",
    "RLY009": "the helper wraps tracking in `with relay.fire_and_forget(...)`, or in try/except "
    "Exception that logs, re-raising only in strict mode",
    "RLY010": "the helper's class is exported in the __all__ of the package or of one of its "
    "packages (the seed's service/__init__.py)",
    "RLY011": "a test tracks the event",
    "RLY012": "an event tracked by a cron run documents is_cron_job in its schema docstring",
    "RLY013": "a helper's log calls carry ids only, never personal values (emails, names)",
    "RLY014": "a distinct_id is never an email address (the user's UUID, or org_<uuid>)",
}

_SCHEMA_NAME = re.compile(r"Mxp[A-Z][A-Za-z0-9]*EventSchema")
_TRIGGER = re.compile(r"\bTracked when\b")


@dataclass(frozen=True, slots=True)
class Finding:
    """One violation: rule id, where, what, and how to fix it."""

    rule: str
    path: str
    line: int
    event: str
    message: str
    fix: str

    def as_text(self) -> str:
        """``path:line: RLYnnn message (event) -- fix``."""
        subject = f" [{self.event}]" if self.event else ""
        return f"{self.path}:{self.line}: {self.rule} {self.message}{subject} -- fix: {self.fix}"

    def as_dict(self) -> dict[str, Any]:
        """The finding as a JSON-ready dict."""
        return asdict(self)


#: What a helper's one positional argument may be: the caller's session or connection.
_SESSION_NAMES = frozenset({"session", "conn", "connection", "bind"})
_SESSION_TYPES = re.compile(r"\b(Session|Connection|AsyncSession|AsyncConnection|Engine)\b")


def _is_session(arg: ast.arg) -> bool:
    annotation = ast.unparse(arg.annotation) if arg.annotation is not None else ""
    return arg.arg in _SESSION_NAMES or bool(_SESSION_TYPES.search(annotation))


def _check_keyword_only(helper: _code.Helper, event: str) -> Finding | None:
    args = helper.node.args
    positional = [*args.posonlyargs, *args.args]
    if positional and positional[0].arg in ("cls", "self"):
        positional = positional[1:]
    if positional and _is_session(positional[0]):
        positional = positional[1:]  # the caller's session comes first, as the seed allows
    if not positional and args.vararg is None:
        return None
    return Finding(
        "RLY008",
        helper.path,
        helper.node.lineno,
        event,
        f"{helper.cls.__name__}.{helper.name} takes positional arguments "
        f"{', '.join(a.arg for a in positional) or '*args'}",
        "put '*,' first (after the session, if it takes one) so every argument is keyword-only",
    )


@dataclass(frozen=True, slots=True)
class LintReport:
    """The findings, and how many events each linted module defines (None: it did not import)."""

    findings: list[Finding]
    checked: dict[str, int | None]

    def unchecked(self) -> list[str]:
        """Modules that imported cleanly but define no event: linting them proved nothing."""
        return [m for m, n in self.checked.items() if n == 0]


def lint_modules(module_names: Sequence[str], *, tests_path: Path | None = None) -> list[Finding]:
    """Check the catalogs in ``module_names`` and return every finding, sorted by file, line.

    Guarantees: never raises for a broken catalog (an import or registration failure, or
    Django's set-up failing, is the finding ``RLY000``); only events whose schema is defined in
    a linted package are checked; ``RLY011`` (a test tracks the event) is checked only when
    ``tests_path`` is given. A Django app is linted after ``django.setup()``
    (:func:`relay.plan._django.setup_for`; ``DjangoSettingsMissingError`` when no settings
    module is known).
    """
    return lint_report(module_names, tests_path=tests_path).findings


def lint_report(module_names: Sequence[str], *, tests_path: Path | None = None) -> LintReport:
    """:func:`lint_modules`, with the number of events each module defines."""
    findings: list[Finding] = []
    checked: dict[str, int | None] = {}
    try:
        _django.setup_for(list(module_names), cwd=Path.cwd())
    except DjangoSetupError as exc:
        findings = [_import_failure(name, exc) for name in module_names]
        return LintReport(findings, dict.fromkeys(module_names))
    for module_name in module_names:
        found, count = _lint_one(module_name, tests_path=tests_path)
        findings.extend(found)
        checked[module_name] = count
    findings.sort(key=lambda f: (f.path, f.line, f.rule, f.event))
    return LintReport(findings, checked)


def _import_failure(module_name: str, exc: BaseException) -> Finding:
    where = getattr(exc, "filename", None) or module_name
    path, line = (_code.rel(where), 0) if where != module_name else (module_name, 0)
    event = ""
    # Registration refused a schema (while importing, or inside Django's set-up): point at the
    # field it refused.
    contract = exc if isinstance(exc, EventContractError) else exc.__cause__
    if isinstance(contract, EventContractError):
        event = contract.event or ""
        path, line = _refused_schema_line(module_name, contract.field) or (path, line)
    message = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    return Finding(
        "RLY000",
        path,
        line,
        event,
        f"importing {module_name} failed: {message}",
        "fix the error so the catalog imports and registers",
    )


def _refused_schema_line(module_name: str, field: str | None) -> tuple[str, int] | None:
    """Where the package's one class annotating ``field`` does so (read from source: the
    refused module is not importable), if exactly one does."""
    if not field:
        return None
    dirs = _django.package_dirs(module_name)
    owners: set[tuple[str, int]] = set()
    for path in sorted(dirs[-1].rglob("*.py")) if dirs else []:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            for stmt in node.body:
                if (
                    isinstance(stmt, ast.AnnAssign)
                    and isinstance(stmt.target, ast.Name)
                    and stmt.target.id == field
                ):
                    owners.add((_code.rel(str(path)), stmt.lineno))
    return owners.pop() if len(owners) == 1 else None


def _lint_one(module_name: str, *, tests_path: Path | None) -> tuple[list[Finding], int | None]:  # noqa: PLR0912 -- one pass over the rules reads better than six helpers
    try:
        root = importlib.import_module(module_name)
        modules = _code.package_modules(root)
    except Exception as exc:  # noqa: BLE001 -- the host's code may raise anything: a finding
        # RelayError: registration refused an event (name, schema definition, PII, ...);
        # Django's errors (AppRegistryNotReady, ImproperlyConfigured), pydantic's, the host's.
        return [_import_failure(module_name, exc)], None
    prefix = root.__name__
    in_package = {m.__name__ for m in modules}
    events = {
        name: schema
        for name, schema in EVENT_SCHEMA_REGISTRY.items()
        if schema.__module__ in in_package or schema.__module__.startswith(prefix + ".")
    }
    constants = _code.constants(modules)
    constant_names = {attr: event for event, (attr, _, _) in constants.items()}
    helpers = _code.helpers(modules, constant_names)
    # The seed exports its helpers from a subpackage (service/__init__.py), not the app's root.
    exported = {
        name for m in modules if hasattr(m, "__path__") for name in getattr(m, "__all__", ())
    }
    test_text = _read_tests(tests_path) if tests_path is not None else None
    findings: list[Finding] = []

    for event, (attr, path, line) in constants.items():
        try:
            check_event_name(event)
        except RelayError as exc:
            findings.append(
                Finding(
                    "RLY001",
                    path,
                    line,
                    event,
                    f"{attr}: {exc}",
                    "rename to {prefix}.{object}.{action}[.error], lowercase snake_case",
                )
            )
            continue
        if event not in EVENT_SCHEMA_REGISTRY:
            findings.append(
                Finding(
                    "RLY002",
                    path,
                    line,
                    event,
                    f"{attr} is not registered",
                    "register_event(MixPanelEvent.<NAME>, <Schema>) in the schemas module",
                )
            )

    for event, schema in events.items():
        findings.extend(_check_schema(event, schema))
        own = [h for h in helpers if event in h.events]
        constant: str | None = constants[event][0] if event in constants else None
        if not own:
            path, line = _code.source_and_line(schema)
            findings.append(
                Finding(
                    "RLY007",
                    path,
                    line,
                    event,
                    "no track_* helper tracks this event",
                    "add a {Domain}TrackHelper.track_<event> classmethod that tracks it",
                )
            )
        for helper in own:
            problem = _check_keyword_only(helper, event)
            if problem:
                findings.append(problem)
            why = _code.fire_and_forget_problem(helper.node)
            if why:
                findings.append(
                    Finding(
                        "RLY009",
                        helper.path,
                        helper.node.lineno,
                        event,
                        f"{helper.cls.__name__}.{helper.name} is not fire-and-forget: {why}",
                        "wrap the call in `with relay.fire_and_forget(...)`, or in try/except "
                        "Exception: if is_strict(strict): raise; logger.exception(...)",
                    )
                )
            if helper.cls.__name__ not in exported:
                # The helper's own package (the seed's service/), never the app's root: an app
                # __init__ that imports helpers imports models before Django is ready.
                home = helper.cls.__module__.rpartition(".")[0] or prefix
                findings.append(
                    Finding(
                        "RLY010",
                        helper.path,
                        helper.node.lineno,
                        event,
                        f"{helper.cls.__name__} is not in the __all__ of {prefix} "
                        "or of one of its packages",
                        f"import it in {home} (its __init__.py) and add "
                        f"'{helper.cls.__name__}' to that __all__",
                    )
                )
            cron_text = ast.unparse(helper.node) + " ".join(
                ast.unparse(n) for n in ast.walk(helper.node) if isinstance(n, ast.Constant)
            )
            if "cron" in cron_text and "is_cron_job" not in (schema.__doc__ or ""):
                path, line = _code.source_and_line(schema)
                findings.append(
                    Finding(
                        "RLY012",
                        path,
                        line,
                        event,
                        f"{helper.name} is tracked by cron runs but {schema.__name__}'s "
                        "docstring does not mention is_cron_job",
                        "say in the schema docstring when is_cron_job is set",
                    )
                )
        if test_text is not None:
            needles = {event, *(f".{h.name}(" for h in own)}
            if constant:
                needles.add(f".{constant}")
            if not any(n in test_text for n in needles):
                path, line = constants.get(event, (None, *_code.source_and_line(schema)))[1:]
                findings.append(
                    Finding(
                        "RLY011",
                        path,
                        line,
                        event,
                        f"no test under {tests_path} tracks this event",
                        "add a test calling the helper (see `relay events new` for the shape)",
                    )
                )
    findings.extend(_check_personal(helpers))
    return findings, len(events)


def _check_personal(helpers: list[_code.Helper]) -> list[Finding]:
    """RLY013 and RLY014 over every method of each helper class (private ones included)."""
    findings: list[Finding] = []
    for cls in {h.cls: None for h in helpers}:
        node = _code.class_node(cls)
        if node is None:
            continue
        path, start = _code.source_and_line(cls)
        for problem in _personal.logged_personal_values(node):
            findings.append(
                Finding(
                    "RLY013",
                    path,
                    start + problem.line - 1,
                    "",
                    f"{cls.__name__}.{problem.method} logs a personal value: {problem.what}",
                    "log ids only (employee_id=...); never emails, names or phone numbers",
                )
            )
        for problem in _personal.email_distinct_ids(node):
            findings.append(
                Finding(
                    "RLY014",
                    path,
                    start + problem.line - 1,
                    "",
                    f"{cls.__name__}.{problem.method} uses an email as distinct_id: {problem.what}",
                    "use the user's UUID as string, or f'org_{organization_uuid}' with no user",
                )
            )
    return findings


def _check_schema(event: str, schema: type[MixpanelSuperEventPropertiesSchema]) -> list[Finding]:
    findings: list[Finding] = []
    path, line = _code.source_and_line(schema)
    name = schema.__name__
    if not _SCHEMA_NAME.fullmatch(name):
        findings.append(
            Finding(
                "RLY003",
                path,
                line,
                event,
                f"schema {name} is not named Mxp{{Domain}}{{Action}}EventSchema",
                "rename it Mxp<Domain><Action>EventSchema",
            )
        )
    if not _TRIGGER.search(inspect.getdoc(schema) or ""):
        findings.append(
            Finding(
                "RLY004",
                path,
                line,
                event,
                f"{name}'s docstring does not say when the event is tracked",
                "add a docstring line 'Tracked when <the trigger>.'",
            )
        )
    node = _code.class_node(schema)
    base = MixpanelSuperEventPropertiesSchema.model_fields
    field_lines: dict[str, int] = {}
    if node is not None:
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                field_lines[stmt.target.id] = line + stmt.lineno - 1
    for fname, fline in field_lines.items():
        if fname in base:
            findings.append(
                Finding(
                    "RLY006",
                    path,
                    fline,
                    event,
                    f"{name} redefines the base field {fname}",
                    "delete the line: inherit the base field and pass '' for no value",
                )
            )
            continue
        info = schema.model_fields.get(fname)
        if info is not None and not (info.description or "").strip():
            findings.append(
                Finding(
                    "RLY005",
                    path,
                    fline,
                    event,
                    f"{name}.{fname} has no description",
                    'add Field(description="what this field represents")',
                )
            )
    return findings


def _read_tests(path: Path) -> str:
    files = [path] if path.is_file() else sorted(path.rglob("*.py"))
    return "\n".join(f.read_text(encoding="utf-8", errors="replace") for f in files)


def ensure_cwd_importable() -> None:
    """Host catalogs are imported by name from the working directory, as ``python -m`` does."""
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
