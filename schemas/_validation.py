"""Turn pydantic's ValidationError into our typed error, naming each field."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .errors import ReportInvalid

__all__ = ["field_errors", "invalid"]


def field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """One ``{"field", "message", "type"}`` per problem; ``field`` is a dotted path."""
    return [
        {
            "field": ".".join(str(p) for p in e["loc"]) or "(document)",
            "message": e["msg"],
            "type": e["type"],
        }
        for e in exc.errors(include_url=False, include_input=False)
    ]


def invalid(exc: ValidationError, what: str) -> ReportInvalid:
    """A ReportInvalid whose reason lists the fields to fix."""
    errors = field_errors(exc)
    listed = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    noun = "field is" if len(errors) == 1 else "fields are"
    return ReportInvalid(f"{what}: {len(errors)} {noun} invalid: {listed}{more}", errors)
