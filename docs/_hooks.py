"""MkDocs hooks: the reference tables are generated from the code when the site is built.

``<!-- relay:settings-table -->`` becomes the table of ``relay.RelaySettings`` (variable,
default, description) and the secret variables of each destination, ``<!-- relay:exit-codes-table -->`` the exit codes of
``relay._exit`` with their meanings, and ``<!-- relay:api-reference MODULE -->`` one
mkdocstrings ``:::`` block per public name of ``relay`` or ``relay.testing``.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from pydantic import SecretStr
from pydantic_core import PydanticUndefined

from relay import RelaySettings, _destinations, _exit

_MARKER = re.compile(
    r"<!-- relay:(settings-table|exit-codes-table|api-reference)(?: ([\w.]+))? -->"
)


def settings_table() -> str:
    """The Markdown table of every ``RELAY_*`` setting, in the model's order."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in RelaySettings.model_fields.items():
        default = field.default
        if default is PydanticUndefined or default is None:
            shown = ""
        else:
            value = default.get_secret_value() if isinstance(default, SecretStr) else default
            shown = f"`{value}`"
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `RELAY_{name.upper()}` | {shown} | {meaning} |")
    # A destination's secrets are variables named after it, not fields (relay._destinations).
    for key, meaning in _destinations.SECRET_DESCRIPTIONS.items():
        variable = f"{_destinations.SECRET_PREFIX}<NAME>_{key.upper()}"
        also = f" Or `{variable}{_destinations.FILE_SUFFIX}`: the path of a file holding it."
        rows.append(f"| `{variable}` | | {meaning}{also} |")
    return "\n".join(rows)


def exit_codes_table() -> str:
    """The Markdown table of the ``relay`` command's exit codes, from their module's table."""
    doc = _exit.__doc__ or ""
    meanings: dict[int, list[str]] = {}
    current: int | None = None
    for line in doc.splitlines():
        if line.startswith("="):
            continue
        match = re.match(r"^(\d)\s{2,}(.*)$", line)
        if match:
            current = int(match.group(1))
            meanings[current] = [match.group(2).strip()]
        elif current is not None and line.startswith("      ") and line.strip():
            meanings[current].append(line.strip())
        elif not line.strip():
            current = None
    codes = {_exit.OK, _exit.FAILURE, _exit.USAGE, _exit.CONFIGURATION}
    missing = codes - set(meanings)
    if missing:
        raise ValueError(f"relay._exit documents no meaning for exit codes {sorted(missing)}")
    rows = ["| code | meaning |", "| --- | --- |"]
    for code in sorted(codes):
        text = " ".join(meanings[code]).replace("``", "`")
        rows.append(f"| {code} | {text} |")
    return "\n".join(rows)


def api_reference(module_name: str) -> str:
    """One mkdocstrings block per public name of ``module_name``, where it is defined."""
    module = importlib.import_module(module_name)
    blocks = []
    for name in sorted(module.__all__):
        obj = getattr(module, name)
        home = getattr(obj, "__module__", None)
        if not isinstance(home, str) or not hasattr(obj, "__qualname__"):
            continue  # a constant (a registry, a config dict): named in the prose instead
        blocks.append(
            f"### `{module_name}.{name}`\n\n::: {home}.{obj.__qualname__}\n"
            "    options:\n      show_root_heading: false\n      show_source: false\n"
        )
    return "\n".join(blocks)


def on_page_markdown(markdown: str, **_kwargs: Any) -> str:
    """Replace each marker with what it names."""

    def expand(match: re.Match[str]) -> str:
        kind, argument = match.group(1), match.group(2)
        if kind == "settings-table":
            return settings_table()
        if kind == "exit-codes-table":
            return exit_codes_table()
        return api_reference(argument or "relay")

    return _MARKER.sub(expand, markdown)
