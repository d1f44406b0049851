"""Setting Django up before a Django app's catalog is imported by ``relay events lint``.

An app whose modules import its models (or ``django.conf.settings``) cannot be imported before
``django.setup()``: it fails with ``ImproperlyConfigured`` or ``AppRegistryNotReady``. The linter
sets Django up when the package looks like a Django app, or when the project says it is one
(``DJANGO_SETTINGS_MODULE``, or the setting ``manage.py`` gives it), and reports a failure to do
so as one line, never a traceback. Under ``manage.py relay events lint`` Django is already set up.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
from pathlib import Path

from relay._errors import DjangoSettingsMissingError, DjangoSetupError

_SETDEFAULT = re.compile(
    r"""setdefault\(\s*["']DJANGO_SETTINGS_MODULE["']\s*,\s*["']([\w.]+)["']\s*\)"""
)
_APP_MARKERS = ("apps.py", "models.py", "migrations")
_DJANGO_MODULES = ("django.", "relay.contrib.django")


def package_dirs(module_name: str) -> list[Path]:
    """The module's directory and its packages' up to the top one, found without importing."""
    parts = module_name.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    top = Path(next(iter(spec.submodule_search_locations)))
    dirs = [top.joinpath(*parts[1:i]) for i in range(len(parts), 0, -1)]
    return [d for d in dirs if d.is_dir()]


def needs_django(module_name: str) -> bool:
    """Whether the module is (in) a Django app, or imports Django somewhere below it."""
    return is_django_code(package_dirs(module_name))


def is_django_code(dirs: list[Path]) -> bool:
    """Whether ``dirs`` (a package's directory, then its parents' up to the top package) hold a
    Django app's files, or the first one imports Django somewhere below it."""
    if not dirs:
        return False
    if any((d / marker).exists() for d in dirs for marker in _APP_MARKERS):
        return True
    return any(_imports_django(path) for path in dirs[0].rglob("*.py"))


def _imports_django(path: Path) -> bool:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except (SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules = [node.module]
        else:
            continue
        if any(m == "django" or m.startswith(_DJANGO_MODULES) for m in modules):
            return True
    return False


def settings_module(cwd: Path) -> str | None:
    """``DJANGO_SETTINGS_MODULE``, else the one ``manage.py`` in ``cwd`` sets by default."""
    named = os.environ.get("DJANGO_SETTINGS_MODULE")
    if named:
        return named
    manage = cwd / "manage.py"
    if manage.is_file():
        found = _SETDEFAULT.search(manage.read_text(encoding="utf-8", errors="replace"))
        if found:
            return found.group(1)
    return None


def setup_for(module_names: list[str], *, cwd: Path) -> str | None:
    """Set Django up if a linted package needs it; return the settings module used, or None.

    Raises :class:`DjangoSettingsMissingError` when a package needs Django but no settings
    module is known, :class:`DjangoSetupError` when Django's own set-up fails.
    """
    if not any(needs_django(name) for name in module_names):
        return None
    try:
        from django.apps import apps  # noqa: PLC0415 -- only Django apps need it
    except ImportError as exc:
        raise DjangoSettingsMissingError(
            "the package imports Django, which is not installed"
        ) from exc
    if apps.ready:
        return os.environ.get("DJANGO_SETTINGS_MODULE", "")
    settings = settings_module(cwd)
    if settings is None:
        raise DjangoSettingsMissingError(
            f"{module_names[0]} is a Django app: set DJANGO_SETTINGS_MODULE, run from the "
            "directory of manage.py, or use `manage.py relay events lint`"
        )
    os.environ["DJANGO_SETTINGS_MODULE"] = settings
    import django  # noqa: PLC0415

    try:
        django.setup()
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise DjangoSetupError(
            f"setting Django up with {settings} failed: {type(exc).__name__}: {first}"
        ) from exc
    return settings
