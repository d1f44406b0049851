"""``relay events docs``: the data dictionary, built from the registry.

Markdown for people (one section per event: its trigger and a table of properties with type,
whether required, description and an example) and one JSON Schema (draft 2020-12) per event
for tools. Both are generated from the registered pydantic schemas, by their wire names, so
they cannot drift from what ``track()`` validates.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from typing import Any

from relay._event.properties import MixpanelSuperEventPropertiesSchema

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

Registry = Mapping[str, type[MixpanelSuperEventPropertiesSchema]]


def event_json_schema(
    event: str, schema: type[MixpanelSuperEventPropertiesSchema]
) -> dict[str, Any]:
    """The JSON Schema of ``event``'s properties, by wire name, each property with an example.

    ``required`` lists the properties ``track()`` refuses the event without; ``examples``
    holds one value the schema accepts.
    """
    body = schema.model_json_schema(by_alias=True, mode="validation")
    defs = body.get("$defs", {})
    for name, prop in body.get("properties", {}).items():
        prop.setdefault("examples", [_example(name, prop, defs)])
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:relay:event:{event}",
        **body,
        "title": event,
        "x-relay-schema": schema.__qualname__,
    }


def _resolve(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return dict(defs.get(ref.removeprefix("#/$defs/"), {}))
    return prop


def _example(name: str, prop: Mapping[str, Any], defs: Mapping[str, Any]) -> Any:  # noqa: PLR0911 -- one return per JSON type
    """A value of ``prop``'s type the schema accepts (ids look like UUIDs)."""
    if "default" in prop and prop["default"] is not None:
        return prop["default"]
    prop = _resolve(prop, defs)
    if "enum" in prop:
        return prop["enum"][0]
    for option in prop.get("anyOf", []):
        if _resolve(option, defs).get("type") != "null":
            return _example(name, option, defs)
    kind = prop.get("type")
    if kind == "string":
        if name.endswith("_id") or name == "$device_id":
            return "2f1c9a3e-7b4d-4c61-9e0a-5d8b6f3a1c27"
        return "x" * max(1, int(prop.get("minLength", 1)))
    if kind == "integer":
        return int(prop.get("minimum", 0))
    if kind == "number":
        return float(prop.get("minimum", 0))
    if kind == "boolean":
        return False
    if kind == "array":
        return [_example(name.removesuffix("s"), prop.get("items", {}), defs)]
    return None


def _type_label(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> str:
    if "$ref" in prop:
        target = _resolve(prop, defs)
        values = ", ".join(f"`{v}`" for v in target.get("enum", []))
        return (
            f"{prop['$ref'].rsplit('/', 1)[-1]} ({values})" if values else str(target.get("type"))
        )
    if "anyOf" in prop:
        return " or ".join(_type_label(o, defs) for o in prop["anyOf"])
    if prop.get("type") == "array":
        return f"array of {_type_label(prop.get('items', {}), defs)}"
    return str(prop.get("type", "any"))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(registry: Registry) -> str:
    """The data dictionary as Markdown: one section per event, sorted by name."""
    lines = ["# Tracking plan", "", f"{len(registry)} events.", ""]
    for event in sorted(registry):
        schema = registry[event]
        body = event_json_schema(event, schema)
        defs = body.get("$defs", {})
        required = set(body.get("required", []))
        doc = inspect.getdoc(schema) or ""
        lines += [f"## `{event}`", "", f"Schema: `{schema.__module__}.{schema.__qualname__}`", ""]
        if doc:
            lines += [doc.replace("``", "`"), ""]
        lines += [
            "| Property | Type | Required | Description | Example |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, prop in body.get("properties", {}).items():
            example = json.dumps(prop["examples"][0])
            lines.append(
                f"| `{name}` | {_cell(_type_label(prop, defs))} | "
                f"{'yes' if name in required else 'no'} | "
                f"{_cell(str(prop.get('description', '')))} | `{_cell(example)}` |"
            )
        lines.append("")
    return "\n".join(lines)


def catalog_registry(
    module_names: list[str],
) -> dict[str, type[MixpanelSuperEventPropertiesSchema]]:
    """Import ``module_names`` (and every module below them) and return the registered events
    whose schema they define.

    Every submodule is imported, as ``events lint`` does: the seed's layout registers its events
    in ``registry.py``, which its root ``__init__.py`` does not import. A Django app is imported
    after ``django.setup()``. Raises :class:`relay._errors.RelayError` (one line) when a module
    fails to import or Django cannot be set up, and when the modules define no event at all (an
    empty dictionary pushed with ``--truncate`` would empty Lexicon).
    """
    import importlib  # noqa: PLC0415 -- only the docs command needs it
    from pathlib import Path  # noqa: PLC0415

    from relay._errors import RelayError  # noqa: PLC0415
    from relay._event.registry import EVENT_SCHEMA_REGISTRY  # noqa: PLC0415
    from relay.plan import _code, _django  # noqa: PLC0415

    _django.setup_for(module_names, cwd=Path.cwd())
    prefixes = []
    for name in module_names:
        try:
            root = importlib.import_module(name)
            _code.package_modules(root)
        except ModuleNotFoundError as exc:
            if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
                raise  # no such module: the operator's typo (the CLI says so in one line, exit 2)
            first = (str(exc).splitlines() or [""])[0]
            raise RelayError(f"importing {name} failed: {type(exc).__name__}: {first}") from exc
        except Exception as exc:
            first = (str(exc).splitlines() or [""])[0]
            raise RelayError(f"importing {name} failed: {type(exc).__name__}: {first}") from exc
        prefixes.append(root.__name__)
    found = {
        event: schema
        for event, schema in EVENT_SCHEMA_REGISTRY.items()
        if any(schema.__module__ == p or schema.__module__.startswith(p + ".") for p in prefixes)
    }
    if not found:
        raise RelayError(f"no events are defined in {', '.join(module_names)}")
    return found
