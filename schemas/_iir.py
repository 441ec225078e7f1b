"""Reading an IIR v1 from outside: JSON text or bytes, or already-parsed data, into a Report.

This is the entry point for untrusted report input (HTTP ingest, the CLI, files on disk).
Whatever goes wrong, the caller gets one typed error, :class:`ReportInvalid`, whose ``errors``
name each field to fix (``{"field": "persons.0.nationality", "message": ..., "type": ...}``)
and whose ``reason`` summarises them; nothing else escapes, so a hostile draft cannot crash a
node with a decoder exception.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ._report import Report
from ._validation import invalid
from .errors import ReportInvalid

__all__ = ["parse_report"]


def _decode(data: bytes | str) -> Any:
    if isinstance(data, bytes):
        # RFC 8259 §8.1: JSON exchanged between systems is UTF-8. json.loads would also guess
        # UTF-16/32 from the first bytes; accepting one encoding keeps validation predictable.
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ReportInvalid(
                f"report is not UTF-8 text: {exc.reason} at byte {exc.start}"
            ) from exc
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise ReportInvalid(f"report is not JSON: {exc}") from exc
    except ValueError as exc:
        # Python refuses to read an integer of more than 4300 digits (CVE-2020-10735) with a
        # bare ValueError; no field of a report holds one.
        raise ReportInvalid(f"report is not JSON this schema can hold: {exc}") from exc
    except RecursionError as exc:
        # Deeply nested arrays exhaust the decoder's stack; no valid report nests that deep.
        raise ReportInvalid("report is not JSON this schema can hold: nested too deeply") from exc


def parse_report(data: Mapping[str, Any] | bytes | str) -> Report:
    """Validate a report from parsed JSON (a mapping), JSON text or UTF-8 JSON bytes.

    Raises :class:`ReportInvalid`; its ``errors`` list one ``{"field", "message", "type"}`` per
    problem, ``field`` being a dotted path such as ``persons.0.nationality``.
    """
    parsed = _decode(data) if isinstance(data, bytes | str) else data
    try:
        return Report.model_validate(parsed)
    except ValidationError as exc:
        raise invalid(exc, "report") from exc
