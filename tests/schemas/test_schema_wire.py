"""Report.to_wire / from_wire: plain JSON-compatible data that reads back equal."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from pydantic import ValidationError

from schemas import Report, parse_report
from tests.schemas._support import example, minimal, report_data


def _has_none(value: Any) -> bool:
    if isinstance(value, dict):
        return any(v is None or _has_none(v) for v in value.values())
    if isinstance(value, list):
        return any(v is None or _has_none(v) for v in value)
    return value is None


@settings(max_examples=150, deadline=None)
@given(report_data())
def test_wire_round_trip(data: dict[str, Any]) -> None:
    """For any report: to_wire is JSON text-safe, has no nulls, and from_wire gives it back."""
    report = parse_report(data)
    wire = report.to_wire()
    assert not _has_none(wire)
    assert wire == json.loads(json.dumps(wire))
    assert report == Report.from_wire(wire)
    assert report == parse_report(json.dumps(wire).encode())
    assert wire == Report.from_wire(wire).to_wire()


def test_wire_form_of_times_money_and_schema() -> None:
    """Times are epoch ms, amounts decimal strings, and the version key is "schema"."""
    report = parse_report(example("10"))
    wire = report.to_wire()
    assert 1_794_998_400_000 == wire["observed"]
    assert {"amount": "12000.00", "currency": "USD"} == wire["finance"][0]["amount"]
    fee = report.finance[0].amount
    assert fee is not None
    assert Decimal("12000.00") == fee.amount
    assert "iir/1" == wire["schema"]
    assert "schema_" not in wire


def test_defaults_are_filled_and_written() -> None:
    """A minimal report reads back with its defaults written out explicitly."""
    wire = parse_report(minimal(concealment=[{"method": "other"}])).to_wire()
    assert ("report", "routine", [], "suspected") == (
        wire["kind"],
        wire["priority"],
        wire["persons"],
        wire["concealment"][0]["certainty"],
    )
    assert "evaluation" not in wire


def test_reports_are_immutable_values() -> None:
    """Reports are frozen and compare by value."""
    a, b = parse_report(example("01")), parse_report(example("01"))
    assert a == b
    with pytest.raises(ValidationError, match="frozen"):
        a.title = "changed"  # type: ignore[misc]
    assert a == b
