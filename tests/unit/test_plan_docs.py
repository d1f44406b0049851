"""``relay events docs``: the data dictionary of the shipped catalog, Markdown and JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from click.testing import CliRunner
from hr_catalog import (
    CATALOG_SCHEMAS,
    DeliveryChannel,
    MixPanelEvent,
    MxpSurveyDeliveredEventSchema,
    SurveyType,
)

from relay.cli import main
from relay.plan.docs import catalog_registry, event_json_schema, markdown


def test_every_catalog_event_has_a_valid_json_schema_with_valid_examples() -> None:
    """Each event's JSON Schema is valid 2020-12, and every property's example satisfies it."""
    registry = catalog_registry(["hr_catalog"])
    assert set(registry) == set(CATALOG_SCHEMAS)
    for event, schema in registry.items():
        body = event_json_schema(event, schema)
        jsonschema.Draft202012Validator.check_schema(body)
        assert body["title"] == event
        for name, prop in body["properties"].items():
            assert prop["description"], (event, name)
            sub = {"$defs": body.get("$defs", {}), **prop}
            jsonschema.validate(prop["examples"][0], sub, cls=jsonschema.Draft202012Validator)


def test_json_schema_accepts_a_real_event_and_refuses_unknown_or_missing_properties() -> None:
    """What the schema serialises validates; an unknown or a missing required property does not."""
    body = event_json_schema(MixPanelEvent.SURVEY_DELIVERED, MxpSurveyDeliveredEventSchema)
    props = MxpSurveyDeliveredEventSchema(
        employee_id="e",
        organization_id="o",
        organization_name="Org",
        role=None,
        impersonation=False,
        survey_id="s",
        survey_run_id="r",
        survey_type=SurveyType.PULSE,
        channel=DeliveryChannel.SLACK,
        question_count=3,
        is_reminder=False,
    ).model_dump(mode="json", by_alias=True)
    validator = jsonschema.Draft202012Validator(body)
    assert list(validator.iter_errors(props)) == []
    assert list(validator.iter_errors({**props, "email": "x"}))
    assert list(validator.iter_errors({k: v for k, v in props.items() if k != "survey_id"}))
    assert "survey_id" in body["required"]
    assert "is_cron_job" not in body["required"]


def test_markdown_lists_every_property_with_type_required_description_and_example() -> None:
    """The Markdown has a section per event and a table row per property, by wire name."""
    text = markdown(catalog_registry(["hr_catalog"]))
    for event, schema in CATALOG_SCHEMAS.items():
        assert f"## `{event}`" in text
        section = text.split(f"## `{event}`", 1)[1].split("\n## ", 1)[0]
        for name, info in schema.model_fields.items():
            wire = info.alias or name
            row = next(line for line in section.splitlines() if line.startswith(f"| `{wire}` |"))
            assert info.description
            assert info.description in row
    assert "| `$device_id` | string | yes | Client device id (not personal) |" in text
    assert "Tracked when a manager saves a new action plan" in text


def test_cli_writes_markdown_and_one_schema_file_per_event(tmp_path: Path) -> None:
    """`events docs --output DIR` writes tracking-plan.md or <event>.schema.json files."""
    runner = CliRunner()
    md = runner.invoke(main, ["events", "docs", "hr_catalog", "--output", str(tmp_path / "md")])
    assert md.exit_code == 0, md.output
    assert (tmp_path / "md" / "tracking-plan.md").read_text().startswith("# Tracking plan")
    js = runner.invoke(
        main,
        [
            "events",
            "docs",
            "hr_catalog",
            "--format",
            "json-schema",
            "--output",
            str(tmp_path / "js"),
        ],
    )
    assert js.exit_code == 0, js.output
    files = sorted(p.name for p in (tmp_path / "js").iterdir())
    assert files == sorted(f"{event}.schema.json" for event in CATALOG_SCHEMAS)
    one = json.loads((tmp_path / "js" / "svc.risk.score_calculated.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(one)
    stdout = runner.invoke(main, ["events", "docs", "hr_catalog", "--format", "json-schema"])
    assert set(json.loads(stdout.output)) == set(CATALOG_SCHEMAS)
