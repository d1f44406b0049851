"""The settings and exit-code tables of the documentation site are generated from the code
(``docs/_hooks.py``), so they name every setting and exit code, and nothing else."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from relay import RelaySettings, _exit

ROOT = Path(__file__).resolve().parents[2]


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("relay_docs_hooks", ROOT / "docs" / "_hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_settings_table_has_one_described_row_per_setting() -> None:
    """Each RelaySettings field is one row, as its RELAY_ variable, with its description."""
    table = _hooks().settings_table()
    rows = re.findall(r"^\| `(RELAY_[A-Z0-9_]+)` \| [^|]* \| (.+) \|$", table, flags=re.M)

    assert [name for name, _ in rows] == [f"RELAY_{f.upper()}" for f in RelaySettings.model_fields]
    assert all(meaning.strip() for _, meaning in rows)


def test_the_exit_code_table_has_every_code_with_its_meaning() -> None:
    """0, 1, 2 and 3 each get the meaning relay._exit documents."""
    table = _hooks().exit_codes_table()
    codes = re.findall(r"^\| (\d) \| (.+) \|$", table, flags=re.M)

    assert [int(code) for code, _ in codes] == sorted(
        {_exit.OK, _exit.FAILURE, _exit.USAGE, _exit.CONFIGURATION}
    )
    assert "configuration" in dict(codes)["3"]


def test_the_reference_pages_use_the_generated_tables() -> None:
    """The settings and exit-code pages hold the markers the build replaces."""
    reference = ROOT / "docs" / "reference"
    assert "<!-- relay:settings-table -->" in (reference / "settings.md").read_text()
    assert "<!-- relay:exit-codes-table -->" in (reference / "exit-codes.md").read_text()
