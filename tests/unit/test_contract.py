"""docs/CONTRACT.md and the code agree: record fields, settings, DLQ reasons, commands."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pipeline.__main__ import cli
from pipeline.delivery import refusal_code
from pipeline.records import json_schemas
from pipeline.settings import Settings
from tests.conftest import REPO_ROOT

CONTRACT = (REPO_ROOT / "docs" / "CONTRACT.md").read_text(encoding="utf-8")
SOURCES = sorted((REPO_ROOT / "pipeline").rglob("*.py"))

# Where a DLQ code is set: InvalidInput("code", ...) and Rejection(message, "code", ...).
_CODE_SITES = (
    re.compile(r'InvalidInput\(\s*"(\w+)"'),
    re.compile(r'Rejection\(\s*(?:\w+\([^"]*?\)|[^,"()]+),\s*"(\w+)"'),
)


def section(heading: str) -> str:
    """The text under a heading, up to the next heading of any level."""
    start = CONTRACT.index(f"\n{heading}\n") + len(heading) + 2
    end = CONTRACT.find("\n#", start)
    return CONTRACT[start : end if end != -1 else None]


def first_column(text: str) -> set[str]:
    """The backquoted names in the first column of a markdown table."""
    return set(re.findall(r"^\| `([^`]+)` ", text, re.MULTILINE))


def field_paths(
    schema: dict[str, Any], node: dict[str, Any] | None = None, prefix: str = ""
) -> set[str]:
    """Every field of a JSON Schema as a path: `dedup.status`, `entities[].key`."""
    node = schema if node is None else node
    if "$ref" in node:
        return field_paths(schema, schema["$defs"][node["$ref"].rsplit("/", 1)[-1]], prefix)
    if "anyOf" in node:
        return set().union(*(field_paths(schema, option, prefix) for option in node["anyOf"]))
    if node.get("type") == "array" and "items" in node:
        return field_paths(schema, node["items"], f"{prefix}[]")
    paths = set()
    for name, child in node.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        paths |= {path, *field_paths(schema, child, path)}
    return paths


@pytest.mark.parametrize(
    ("record", "heading"),
    [("input", "## Input record"), ("output", "## Output record"), ("dlq", "## DLQ record")],
)
def test_field_tables_match_pipeline_schema(record: str, heading: str) -> None:
    documented = first_column(section(heading))
    in_schema = field_paths(json_schemas()[record])
    assert documented - in_schema == set(), "documented but not in `pipeline schema`"
    assert in_schema - documented == set(), "in `pipeline schema` but not documented"


def test_every_setting_is_documented_with_its_variable() -> None:
    documented = first_column(section("## Environment"))
    for name, field in Settings.model_fields.items():
        aliases = getattr(field.validation_alias, "choices", None)
        variable = aliases[0] if aliases else f"PIPELINE_{name.upper()}"
        assert variable in documented, variable


def test_dlq_reasons_match_the_codes_the_code_sets() -> None:
    documented = first_column(section("### DLQ reasons"))
    in_code = {
        code for path in SOURCES for site in _CODE_SITES for code in site.findall(path.read_text())
    }
    too_large = type("RecordTooLargeError", (Exception,), {})
    in_code |= {refusal_code(too_large()), refusal_code(OSError())}  # the broker's refusals
    assert documented == in_code


def test_every_command_is_documented() -> None:
    documented = section("## Commands")
    commands = {c.name or c.callback.__name__ for c in cli.registered_commands if c.callback}
    commands |= {group.name for group in cli.registered_groups}
    for command in commands:
        assert f"`pipeline {command}" in documented, command


def test_the_readme_points_to_the_contract() -> None:
    assert "docs/CONTRACT.md" in (REPO_ROOT / "README.md").read_text(encoding="utf-8")
