"""JSON Schema export for partners that validate reports in other languages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ._handling import Handling
from ._header import EnvelopeHeader
from ._report import Report
from ._validation import invalid

__all__ = ["SCHEMAS", "export_json_schemas", "parse_report"]

SCHEMAS: dict[str, type[BaseModel]] = {
    "iir-v1.report": Report,
    "iir-v1.handling": Handling,
    "envelope-v1.header": EnvelopeHeader,
}


def export_json_schemas(out_dir: Path) -> list[Path]:
    """Write one ``<name>.schema.json`` per model (JSON Schema 2020-12); returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in SCHEMAS.items():
        schema: dict[str, Any] = model.model_json_schema(by_alias=True)
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://palermo.invalid/schemas/{name}.schema.json",
            **schema,
        }
        path = out_dir / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def parse_report(data: Any) -> Report:
    """Validate a report from parsed JSON, text or bytes; errors name every field to fix."""
    from schemas.errors import ReportInvalid

    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ReportInvalid(f"report is not JSON: {exc}") from exc
    try:
        return Report.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc, "report") from exc
