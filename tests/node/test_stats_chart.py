"""Trend charts (issue 16 item 4): one series per route in the SVG, suppressed values as gaps
(never zero), a PNG that opens at the requested size, and the committed docs chart current."""

from __future__ import annotations

import math
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from node._stats_chart import draw, period_range, trend_series
from schemas import StatisticalReturn, parse_report
from schemas.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
SVG_NS = "{http://www.w3.org/2000/svg}"


def _ret(agency: str, period: str, cells: dict[str, int | None]) -> StatisticalReturn:
    out: list[dict[str, Any]] = []
    for route, count in cells.items():
        cell: dict[str, Any] = {"indicator": "deaths", "dimensions": {"route": route}}
        out.append({**cell, "suppressed": True} if count is None else {**cell, "count": count})
    return StatisticalReturn.model_validate(
        {"reporting_agency": agency, "period": period, "cells": out}
    )


RETURNS = [
    _ret("ITA-GDF", "2026-Q1", {"central-med": 20, "eastern-med": 8}),
    _ret("ITA-GDF", "2026-Q2", {"central-med": None, "eastern-med": 9}),
    _ret("ITA-GDF", "2026-Q3", {"central-med": 31, "eastern-med": 0}),
]
PERIODS = ["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]


def _lines(svg: Path) -> dict[str, list[tuple[float, float] | None]]:
    """Each series group's path, as points; a gap (a new M after a break) as None."""
    tree = ET.parse(svg)
    out: dict[str, list[tuple[float, float] | None]] = {}
    for group in tree.iter(f"{SVG_NS}g"):
        gid = group.get("id", "")
        if not gid.startswith("series-"):
            continue
        path = group.find(f"{SVG_NS}path")
        assert path is not None
        points: list[tuple[float, float] | None] = []
        for op, x, y in re.findall(r"([ML])\s*([-\d.]+)\s+([-\d.]+)", path.get("d", "")):
            if op == "M" and points:
                points.append(None)
            points.append((float(x), float(y)))
        out[gid] = points
    return out


def test_period_ranges() -> None:
    """Quarters, months and years; one period alone."""
    assert PERIODS == period_range("2026-Q1..2026-Q4")
    assert ["2025-12", "2026-01"] == period_range("2025-12..2026-01")
    assert ["2026"] == period_range("2026")


@pytest.mark.parametrize("text", ["2026-Q4..2026-Q1", "2026-Q1..2026-07", "Q1..Q4", "2000..2200"])
def test_a_bad_period_range_is_a_typed_error(text: str) -> None:
    """Mixed granularity, backwards, unreadable or too long: a typed error saying how."""
    with pytest.raises(InputError, match="--period"):
        period_range(text)


def test_suppressed_and_missing_values_are_nan_never_zero() -> None:
    """central-med Q2 suppressed and Q4 not reported: NaN; eastern-med's published 0 stays 0."""
    series = {s.route: s.values for s in trend_series(RETURNS, PERIODS)}
    central, eastern = series["central-med"], series["eastern-med"]
    assert (20.0, 31.0) == (central[0], central[2])
    assert [True, True] == [math.isnan(central[1]), math.isnan(central[3])]
    assert [8.0, 9.0, 0.0] == list(eastern[:3])


def test_the_svg_has_one_series_per_route_with_gaps_where_suppressed(tmp_path: Path) -> None:
    """One <g id="series-ROUTE-deaths"> per route; central-med's line breaks at Q2 (a gap), it
    does not dip to the zero line; eastern-med's line is unbroken over Q1..Q3."""
    out = draw(trend_series(RETURNS, PERIODS), PERIODS, tmp_path / "t.svg")
    lines = _lines(out)
    assert {"series-central-med-deaths", "series-eastern-med-deaths"} == set(lines)
    central = lines["series-central-med-deaths"]
    assert 2 == len([p for p in central if p is not None])
    assert None in central
    eastern = lines["series-eastern-med-deaths"]
    assert [None, 3] == [None if None not in eastern else "gap", len(eastern)]
    zero_y = eastern[2][1]  # type: ignore[index]
    assert all(p[1] != zero_y for p in central if p is not None)


def test_the_png_opens_and_has_the_requested_size(tmp_path: Path) -> None:
    """PNG signature, and IHDR width and height as asked."""
    out = draw(trend_series(RETURNS, PERIODS), PERIODS, tmp_path / "t.png", size=(640, 480))
    data = out.read_bytes()
    assert b"\x89PNG\r\n\x1a\n" == data[:8]
    assert b"IHDR" == data[12:16]
    assert (640, 480) == struct.unpack(">II", data[16:24])


def test_fees_and_unknown_outputs_are_refused(tmp_path: Path) -> None:
    """Fees are not summed, so not charted; only .svg and .png are written."""
    with pytest.raises(InputError, match="fees are not summed"):
        trend_series(RETURNS, PERIODS, "fee-per-person")
    with pytest.raises(InputError, match="--indicator"):
        trend_series(RETURNS, PERIODS, "arrivals")
    with pytest.raises(InputError, match=r"\.svg or \.png"):
        draw([], PERIODS, tmp_path / "t.pdf")


def test_the_docs_chart_is_current(tmp_path: Path) -> None:
    """docs/img/statistics-trends.svg is what the documented command draws from the examples."""
    returns = [
        parse_report(p.read_bytes()).statistics
        for p in sorted((ROOT / "schemas" / "examples").glob("*-statistics-*.json"))
    ]
    from node._stats_chart import docs_chart

    out = docs_chart([r for r in returns if r is not None], tmp_path / "trends.svg")
    committed = ROOT / "docs" / "img" / "statistics-trends.svg"
    assert committed.read_text() == out.read_text(), (
        "regenerate: PYTHONPATH=$PWD python -m node._stats_chart docs/img/statistics-trends.svg"
    )
    assert {"series-central-med-irregular-crossing-between-bcps"} <= set(_lines(committed))


def test_an_unwritable_output_is_a_typed_error(tmp_path: Path) -> None:
    """--out under a file (not a directory), or naming a directory: InputError, not OSError."""
    (tmp_path / "a-file").write_text("")
    with pytest.raises(InputError, match="cannot write the chart"):
        draw(trend_series(RETURNS, PERIODS), PERIODS, tmp_path / "a-file" / "t.svg")
    (tmp_path / "d.svg").mkdir()
    with pytest.raises(InputError, match="cannot write the chart"):
        draw(trend_series(RETURNS, PERIODS), PERIODS, tmp_path / "d.svg")
