"""JSON Schema export: three well-formed draft 2020-12 files that agree with the models."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from schemas.export import JSON_SCHEMA_DIALECT, SCHEMAS, export_json_schemas, json_schema

FILES = {
    "iir-v1.1.report.schema.json",
    "iir-v1.1.handling.schema.json",
    "envelope-v1.header.schema.json",
}
# The keywords pydantic emits; a schema using anything else would be a surprise to partners.
KEYWORDS = {
    "$schema", "$id", "$defs", "$ref", "title", "description", "type", "properties",
    "required", "additionalProperties", "items", "prefixItems", "minItems", "maxItems",
    "minLength", "maxLength", "pattern", "enum", "const", "default", "anyOf", "oneOf",
    "discriminator", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
}  # fmt: skip
TYPES = {"object", "array", "string", "integer", "number", "boolean", "null"}


def _walk(node: Any, root: dict[str, Any], where: str = "#") -> None:
    """Check one schema node: known keywords and types, resolvable refs, sane constraints."""
    if not isinstance(node, dict):
        return
    for key in node:
        assert key in KEYWORDS, f"{where}: unexpected keyword {key}"
    if "type" in node:
        assert node["type"] in TYPES, where
    if "$ref" in node:
        assert node["$ref"].startswith("#/$defs/"), where
        assert node["$ref"].removeprefix("#/$defs/") in root["$defs"], where
    if "pattern" in node:
        re.compile(node["pattern"])
    if "required" in node:
        assert set(node["required"]) <= set(node["properties"]), where
    if node.get("type") == "object" and "properties" in node:
        assert node.get("additionalProperties") is False, f"{where}: extra fields must be refused"
    for key in ("properties", "$defs"):
        for name, child in node.get(key, {}).items():
            _walk(child, root, f"{where}/{key}/{name}")
    for key in ("anyOf", "oneOf", "prefixItems"):
        for i, child in enumerate(node.get(key, [])):
            _walk(child, root, f"{where}/{key}/{i}")
    _walk(node.get("items"), root, f"{where}/items")


def test_export_writes_three_files(tmp_path: Path) -> None:
    """One file per model, into a directory it creates, returned in a fixed order."""
    out = tmp_path / "new" / "dir"
    paths = export_json_schemas(out)
    assert FILES == {p.name for p in paths}
    assert [out / f"{n}.schema.json" for n in SCHEMAS] == paths
    assert paths == export_json_schemas(out)  # idempotent: overwrites


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_exported_schema_is_well_formed(tmp_path: Path, name: str) -> None:
    """Each file is draft 2020-12 JSON Schema with an $id, resolvable refs and no extras."""
    (path,) = [p for p in export_json_schemas(tmp_path) if p.name == f"{name}.schema.json"]
    schema = json.loads(path.read_text())
    assert JSON_SCHEMA_DIALECT == schema["$schema"]
    assert schema["$id"].endswith(f"/{name}.schema.json")
    assert "object" == schema["type"]
    assert path.read_text().endswith("}\n")
    assert schema == json_schema(name)
    _walk(schema, schema)


def test_report_schema_matches_the_wire_names_and_limits(tmp_path: Path) -> None:
    """Partners see the wire names and the same limits the model enforces."""
    schema = json_schema("iir-v1.1.report")
    props = schema["properties"]
    assert "schema" in props
    assert "schema_" not in props
    assert ["iir/1", "iir/1.1"] == props["schema"]["enum"]
    assert 200 == props["persons"]["maxItems"]
    assert {"originator", "category", "route", "title", "handling", "narrative", "contact"} == set(
        schema["required"]
    )
    assert "^[A-Z]{3}$" == schema["$defs"]["Money"]["properties"]["currency"]["pattern"]
    assert "scheme" == props["evaluation"]["anyOf"][0]["discriminator"]["propertyName"]
