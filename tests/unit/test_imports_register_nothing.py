"""Importing relay registers no event: relay ships none (the HR catalog is examples/optimo)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import importlib
    import pkgutil

    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "relay.contrib.django",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    )
    django.setup()

    import relay
    from relay._event.registry import EVENT_SCHEMA_REGISTRY

    def walk(path, prefix):  # pkgutil.walk_packages would import packages while walking
        for info in pkgutil.iter_modules(path):
            name = prefix + info.name
            if info.name == "__main__":  # __main__ runs a program
                continue
            yield name
            if info.ispkg:
                yield from walk([f"{path[0]}/{info.name}"], name + ".")

    names = sorted(walk(list(relay.__path__), "relay."))
    for name in names:
        importlib.import_module(name)
        if EVENT_SCHEMA_REGISTRY:
            raise SystemExit(f"{name} registered {sorted(EVENT_SCHEMA_REGISTRY)}")
    print(len(names))
    """
)


def test_no_relay_module_registers_an_event_when_imported() -> None:
    """Every module of relay (Django's and the demo's included), imported in turn, leaves the
    registry empty: relay ships no product events."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert int(done.stdout.strip().splitlines()[-1]) > 50  # the walk found the modules


def test_relay_ships_no_event_catalog() -> None:
    """``relay.catalog`` is gone (its HR events are examples/optimo): nothing can import it."""
    done = subprocess.run(
        [sys.executable, "-c", "import importlib.util as u; print(u.find_spec('relay.catalog'))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.strip() == "None", done.stdout + done.stderr
