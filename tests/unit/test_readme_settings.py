"""The README's settings table names every ``RELAY_*`` setting ``RelaySettings`` reads."""

from __future__ import annotations

import re
from pathlib import Path

from relay import RelaySettings

ROOT = Path(__file__).resolve().parents[2]


def _documented() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("\n## Configuration\n") :]
    names: set[str] = set()
    for row in re.findall(r"^\| (`RELAY_[^|]+)\|", table, flags=re.M):
        spelled = re.findall(r"`(RELAY_[A-Z0-9_]+|\.\.\._[A-Z0-9_]+)`", row)
        stem = ""
        for name in spelled:
            if name.startswith("..._"):  # `RELAY_X_USERNAME`, `..._SECRET`
                names.add(stem + name.removeprefix("..._"))
            else:
                names.add(name)
                stem = name.rsplit("_", 1)[0] + "_"
    return names


def test_every_setting_is_in_the_readme_table() -> None:
    """A setting added to RelaySettings without a README row fails here, named."""
    settings = {f"RELAY_{name.upper()}" for name in RelaySettings.model_fields}
    missing = sorted(settings - _documented())
    assert missing == [], f"settings missing from the README's Configuration table: {missing}"


def test_the_table_names_no_setting_that_does_not_exist() -> None:
    """A README row for a removed or misspelt setting fails here, named."""
    settings = {f"RELAY_{name.upper()}" for name in RelaySettings.model_fields}
    unknown = sorted(_documented() - settings)
    assert unknown == [], f"README rows for settings RelaySettings does not have: {unknown}"
