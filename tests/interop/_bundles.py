"""Shared helpers for the interop tests: exporting example reports at fixed times."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import stix2

from node.interop import export_bundle
from schemas import Report, parse_report
from tests.schemas._support import EXAMPLES, example

CREATED = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
MODIFIED = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
REPORT_ID = "01935a3e-7c00-7000-8000-000000000001"
EXAMPLE_NAMES = [p.name for p in EXAMPLES]


def report(prefix: str) -> Report:
    return parse_report(example(prefix))


def export(r: Report, **options: Any) -> dict[str, Any]:
    """``r`` exported as JSON data (what a consumer reads)."""
    options = {"report_id": REPORT_ID, "created": CREATED, "modified": MODIFIED} | options
    bundle: stix2.Bundle = export_bundle(r, **options)
    data: dict[str, Any] = json.loads(bundle.serialize())
    return data


def by_type(bundle: dict[str, Any], stix_type: str) -> list[dict[str, Any]]:
    return [o for o in bundle["objects"] if o["type"] == stix_type]
