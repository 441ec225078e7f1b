"""Aggregating returns (issue 16 item 3): coarsest tables, suppressed sums as lower bounds,
totals that reveal nothing, fees never summed, the newest return per agency and period."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from node._stats_aggregate import aggregate, parse_by, render
from schemas import StatisticalReturn, parse_report
from schemas.errors import InputError

EXAMPLES = sorted(
    (Path(__file__).resolve().parents[2] / "schemas" / "examples").glob("2[2-5]-statistics-*.json")
)


def _ret(agency: str, cells: list[dict[str, Any]], period: str = "2026-Q3") -> StatisticalReturn:
    return StatisticalReturn.model_validate(
        {"reporting_agency": agency, "period": period, "cells": cells}
    )


def _c(route: str, count: int | None, **dims: str) -> dict[str, Any]:
    cell: dict[str, Any] = {"indicator": "deaths", "dimensions": {"route": route, **dims}}
    return {**cell, "suppressed": True} if count is None else {**cell, "count": count}


def _examples() -> list[StatisticalReturn]:
    returns = [parse_report(p.read_bytes()).statistics for p in EXAMPLES]
    assert all(r is not None for r in returns)
    return [r for r in returns if r is not None]


def test_the_examples_sum_per_route_and_indicator() -> None:
    """2026-Q2: ITA-GDF's and GRC-HCG's detections per route, each from its return's own cell."""
    agg = aggregate(_examples(), "2026-Q2", ("route", "indicator"))
    between = "irregular-crossing-between-bcps"
    assert ["GRC-HCG", "ITA-GDF"] == agg.agencies
    assert 4210 == agg.value(route="central-med", indicator=between).total
    assert 1935 == agg.value(route="eastern-med", indicator=between).total
    assert 41 + 3 == sum(r.total for r in agg.rows if r.key[1] == "deaths")


def test_a_finer_table_is_rolled_up_and_never_double_counted() -> None:
    """By indicator alone: each return's route table (coarsest with the indicator) counts once,
    not once more for each of its nationality, sex, mode and place tables."""
    agg = aggregate(_examples(), "2026-Q3", ("indicator",))
    assert 5340 + 3120 == agg.value(indicator="irregular-crossing-between-bcps").total


def test_nationality_bands_are_values_of_nationality() -> None:
    """--by nationality covers the countries and the bands: the table sums to the route total."""
    agg = aggregate(_examples(), "2026-Q3", ("nationality", "indicator"))
    between = "irregular-crossing-between-bcps"
    assert 5340 + 3120 == agg.totals()[between].total
    assert 3 + 4 == agg.value(nationality="stateless", indicator=between).total


def test_a_sum_with_a_suppressed_contribution_is_a_lower_bound() -> None:
    """One agency suppressed, the other published 7: the sum is shown as >= 7, not 7."""
    returns = [_ret("ITA-GDF", [_c("central-med", None)]), _ret("MLT-AFM", [_c("central-med", 7)])]
    agg = aggregate(returns, "2026-Q3", ("route", "indicator"))
    row = agg.value(route="central-med", indicator="deaths")
    assert (7, True, {"ITA-GDF"}) == (row.total, row.suppressed, row.suppressed_by)
    assert ">= 7 (suppressed)" in render(agg, "table")
    data = json.loads(render(agg, "json"))["rows"][0]
    assert (None, 7, True) == (data["total"], data["lower_bound"], data["suppressed"])
    row_csv, total_csv, *_ = csv.DictReader(io.StringIO(render(agg, "csv")))
    assert ("", "7", "yes") == (row_csv["total"], row_csv["lower_bound"], row_csv["suppressed"])
    assert ("", "7") == (total_csv["total"], total_csv["lower_bound"])  # the TOTAL row


def test_the_total_never_reveals_a_suppressed_cell() -> None:
    """A return's own total is not used: the grand total is a lower bound from the rows shown,
    so total minus the published cells does not give the suppressed one."""
    cells = [_c("central-med", None), _c("eastern-med", 30), {"indicator": "deaths", "count": 33}]
    agg = aggregate([_ret("GRC-HCG", cells)], "2026-Q3", ("route", "indicator"))
    total = agg.totals()["deaths"]
    assert (30, True) == (total.total, total.suppressed)
    assert "33" not in render(agg, "csv")
    assert "33" not in render(agg, "table")


def test_without_suppression_the_total_is_exact() -> None:
    """No suppressed cell: rows and the total are plain numbers."""
    agg = aggregate(
        [_ret("GRC-HCG", [_c("central-med", 4), _c("eastern-med", 30)])],
        "2026-Q3",
        ("route", "indicator"),
    )
    total = agg.totals()["deaths"]
    assert (34, False) == (total.total, total.suppressed)
    rows = list(csv.reader(io.StringIO(render(agg, "csv"))))
    assert ["total", "lower_bound", "suppressed"] == rows[0][2:5]
    assert ["TOTAL", "deaths", "34", "", "", "GRC-HCG"] == rows[-1]


def test_fees_are_listed_per_agency_with_min_and_max_never_summed() -> None:
    """Median fees of two agencies on one route: both shown, min and max named, no sum."""
    fee = lambda amount: {  # noqa: E731
        "indicator": "fee-per-person", "dimensions": {"route": "central-med"},
        "amount": {"amount": amount, "currency": "EUR"}, "statistic": "median",
    }  # fmt: skip
    returns = [_ret("ITA-GDF", [fee("3500.00")]), _ret("MLT-AFM", [fee("2000.00")])]
    agg = aggregate(returns, "2026-Q3", ("route", "indicator"))
    assert [] == agg.rows
    data = json.loads(render(agg, "json"))["fees"]
    assert [
        {
            "route": "central-med", "indicator": "fee-per-person", "statistic": "median",
            "currency": "EUR", "by_agency": {"ITA-GDF": "3500.00", "MLT-AFM": "2000.00"},
            "min_across_agencies": "2000.00", "max_across_agencies": "3500.00",
        }
    ] == data  # fmt: skip
    assert "5500" not in render(agg, "table")


def test_only_the_asked_period_is_summed() -> None:
    """Returns of other periods are left out."""
    agg = aggregate(_examples(), "2026-Q4", ("route", "indicator"))
    assert ([], []) == (agg.rows, agg.agencies)


@pytest.mark.parametrize("text", ["route,colour", "", "route,route"])
def test_an_unknown_breakdown_is_a_typed_error(text: str) -> None:
    """--by names only known dimensions, each once."""
    with pytest.raises(InputError, match="--by"):
        parse_by(text)


def test_an_unknown_format_is_a_typed_error() -> None:
    """--format is table, csv or json."""
    with pytest.raises(InputError, match="table, csv or json"):
        render(aggregate([], "2026-Q3", ("route", "indicator")), "xlsx")


def test_indicators_are_never_added_together() -> None:
    """A breakdown without indicator would add deaths to detections: refused; the totals are
    per indicator."""
    with pytest.raises(InputError, match="add indicator"):
        aggregate(_examples(), "2026-Q2", ("route",))
    totals = aggregate(_examples(), "2026-Q2", ("route", "indicator")).totals()
    assert (41 + 3, 4210 + 1935) == (
        totals["deaths"].total,
        totals["irregular-crossing-between-bcps"].total,
    )
