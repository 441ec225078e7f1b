"""JSON Schema export for partners that validate reports in other languages.

pydantic writes the schemas; :class:`_PartnerSchema` corrects the few types whose checks live in
our own validator functions, which pydantic cannot see into: a time is RFC 3339 text *or* epoch
milliseconds (not text only), a country is one of the ISO 3166-1 alpha-3 codes (not any string),
and release targets and UUIDv7s have their patterns. What no JSON Schema can say (rules across
fields, IMO check digits) is listed in docs/schema.md, "What the JSON Schema does not check".

``parse_report`` is re-exported here because the CLI and node import it from this module; its
home is ``schemas._iir`` (and ``schemas.parse_report``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from ._countries import ISO3166_ALPHA3
from ._handling import HandlingV11
from ._header import EnvelopeHeader
from ._iir import parse_report
from ._report import Report
from ._types import (
    _UUID7,
    AGENCY_ID_PATTERN,
    MAX_EPOCH_MS,
    _aware_ms,
    _check_country,
    _check_release_target,
    _check_uuid7,
)

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

_COUNTRIES: Final[list[str]] = sorted(ISO3166_ALPHA3)
_COUNTRY_REF: Final[str] = "#/$defs/CountryCode"
_COUNTRY_DEF: Final[dict[str, Any]] = {
    "title": "CountryCode",
    "description": "ISO 3166-1 alpha-3: the 249 assigned codes, territories included.",
    "type": "string",
    "enum": _COUNTRIES,
}
_TIME: Final[dict[str, Any]] = {
    # Both forms that EpochMillis reads; the wire (to_wire, the sealed body) writes integers.
    "anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "integer", "minimum": 0, "maximum": MAX_EPOCH_MS},
    ],
    "description": "RFC 3339 with a timezone, or milliseconds since 1970-01-01T00:00:00Z.",
}
_RELEASE_TARGET: Final[str] = (
    f"^(?:group:[a-z0-9][a-z0-9-]{{0,47}}|{AGENCY_ID_PATTERN.strip('^$')})$"
)


class _PartnerSchema(GenerateJsonSchema):
    """pydantic's generator, told what our validator functions accept.

    Without this, a partner's validator would refuse epoch-ms times that every node accepts,
    and accept any string as a country.
    """

    def function_after_schema(
        self, schema: core_schema.AfterValidatorFunctionSchema
    ) -> JsonSchemaValue:
        function = schema["function"]["function"]
        if function is _aware_ms:
            return dict(_TIME)
        if function is _check_country:
            # A marker that json_schema() turns into one shared $defs entry: 249 codes inline
            # at each of the ~20 country fields would bury the rest of the schema.
            return {"type": "string", "enum": _COUNTRIES}
        if function is _check_release_target:
            return {"type": "string", "pattern": _RELEASE_TARGET}
        if function is _check_uuid7:
            return {"type": "string", "pattern": _UUID7.pattern}
        return super().function_after_schema(schema)


def _share_countries(node: Any) -> bool:
    """Replace every inline country enum under ``node`` by a ``$ref``; True if any was found."""
    found = False
    if isinstance(node, dict):
        if node.get("enum") == _COUNTRIES:
            del node["enum"], node["type"]
            node["$ref"] = _COUNTRY_REF
            return True
        for child in node.values():
            found = _share_countries(child) or found
    elif isinstance(node, list):
        for child in node:
            found = _share_countries(child) or found
    return found


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one model in :data:`SCHEMAS`, with ``$schema``/``$id``."""
    # by_alias: partners see the wire names ("schema", not the Python attribute "schema_").
    # mode="validation": the schema says what a validator accepts (times as RFC 3339 or epoch ms).
    body = SCHEMAS[name].model_json_schema(
        by_alias=True, mode="validation", schema_generator=_PartnerSchema
    )
    if _share_countries(body):
        body.setdefault("$defs", {})["CountryCode"] = dict(_COUNTRY_DEF)
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
