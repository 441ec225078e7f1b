"""JSON Schema export for partners that validate reports in other languages.

``parse_report`` is re-exported here because the CLI and node import it from this module; its
home is ``schemas._iir`` (and ``schemas.parse_report``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel

from ._handling import HandlingV11
from ._header import EnvelopeHeader
from ._iir import parse_report
from ._report import Report

__all__ = [
    "JSON_SCHEMA_DIALECT",
    "SCHEMAS",
    "SCHEMA_ID_BASE",
    "export_json_schemas",
    "json_schema",
    "parse_report",
]

JSON_SCHEMA_DIALECT: Final[str] = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID_BASE: Final[str] = "https://palermo.invalid/schemas/"
"""Base of each schema's ``$id``: ``.invalid`` (RFC 2606) because the ids name, not locate."""

SCHEMAS: Final[dict[str, type[BaseModel]]] = {
    # The report schema accepts iir/1 and iir/1.1 (1.1 is additive); the handling block is
    # 1.1's, where an absent action means none (an iir/1 block without one means A1).
    "iir-v1.1.report": Report,
    "iir-v1.1.handling": HandlingV11,
    "envelope-v1.header": EnvelopeHeader,
}


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one model in :data:`SCHEMAS`, with ``$schema``/``$id``."""
    # by_alias: partners see the wire names ("schema", not the Python attribute "schema_").
    # mode="validation": the schema says what a validator accepts (times as RFC 3339 or epoch ms).
    body = SCHEMAS[name].model_json_schema(by_alias=True, mode="validation")
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": f"{SCHEMA_ID_BASE}{name}.schema.json", **body}


def export_json_schemas(out_dir: Path) -> list[Path]:
    """Write one ``<name>.schema.json`` per model into ``out_dir``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SCHEMAS:
        path = out_dir / f"{name}.schema.json"
        # sort_keys and a trailing newline: the files diff cleanly between releases.
        path.write_text(json.dumps(json_schema(name), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
