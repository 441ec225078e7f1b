"""Rewriting an ``iir/1`` report as ``iir/1.1`` without changing what it means.

IIR 1.1 is additive, so every ``iir/1`` field means the same under 1.1, with one exception: the
handling defaults. An ``iir/1`` handling block without ``action`` means A1, while under 1.1 an
absent ``action`` means none (decision 0019). An upgrade therefore writes the action code out;
H0 needs nothing, since it is in force in every ``iir/1`` report and its 1.1 default is in force
too. ``palermo schema upgrade FILE`` uses :func:`upgrade_data`, which changes only those two
keys of the author's JSON, so that dates, key order and left-out defaults stay as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._handling import ActionCode
from ._iir import _decode, parse_report
from ._report import Report
from ._versions import SCHEMA_V11

__all__ = ["upgrade", "upgrade_data"]


def _action(report: Report) -> str:
    # Under iir/1 an absent action code means A1 (validation has already filled it in).
    return (report.handling.action or ActionCode.A1).value


def upgrade(report: Report) -> Report:
    """``report`` as ``iir/1.1``, meaning the same; an ``iir/1.1`` report is returned as is.

    The schema becomes ``iir/1.1`` and the handling's action code is written explicitly (A1
    when the ``iir/1`` report left it out); everything else is identical.
    """
    if report.schema_ == SCHEMA_V11:
        return report
    data = report.to_wire()
    data["schema"] = SCHEMA_V11
    data["handling"] = {**data["handling"], "action": _action(report), "h0": True}
    return Report.from_wire(data)


def upgrade_data(data: Mapping[str, Any] | bytes | str) -> dict[str, Any]:
    """A report's JSON data (parsed, text or UTF-8 bytes) rewritten as ``iir/1.1``, changing
    only ``schema`` and ``handling.action``; ``iir/1.1`` data is returned unchanged.

    Raises :class:`~schemas.errors.ReportInvalid` naming each field to fix if ``data`` is not a
    valid report. Parsing the result gives ``upgrade(parse_report(data))``.
    """
    parsed = _decode(data) if isinstance(data, bytes | str) else data
    report = parse_report(parsed)
    # A valid report is a JSON object, so the data is a mapping.
    out = dict(parsed)
    if report.schema_ == SCHEMA_V11:
        return out
    if "schema" not in out:
        # A report that leaves out "schema" is iir/1; the version goes first, as in the examples.
        out = {"schema": SCHEMA_V11, **out}
    out["schema"] = SCHEMA_V11
    out["handling"] = {**parsed["handling"], "action": _action(report)}
    return out
