"""The package list in pyproject.toml ships every package a wheel needs."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_relay_package_is_listed_for_the_wheel() -> None:
    """Each folder with an __init__.py under relay/, migrations/ and monitoring/ (data shipped
    as relay.monitoring) is in [tool.setuptools]."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "relay").rglob("__init__.py")
    }
    for folder in ("migrations", "monitoring"):
        found |= {
            "relay." + ".".join(init.parent.relative_to(ROOT).parts)
            for init in (ROOT / folder).rglob("__init__.py")
        }
    assert found == listed
    assert config["package-dir"] == {
        "relay.migrations": "migrations",
        "relay.monitoring": "monitoring",
    }
