"""Small-cell suppression: every withheld cell stays at least k wide (decision 0024)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from policies import check_disclosure, suppress
from policies._disclosure import tables
from schemas import AgeBand, Indicator, StatisticalReturn

NATIONALITIES = ["AFG", "SYR", "ERI", "TUN", "EGY", "BGD"]
AGES = [band.value for band in AgeBand]
IND = Indicator.IRREGULAR_CROSSING_BETWEEN_BCPS


def _cell(count: int, **dims: str) -> dict[str, Any]:
    return {"indicator": IND.value, "dimensions": dims, "count": count}


def two_way(grid: list[list[int]]) -> StatisticalReturn:
    """A nationality x age-band table with row, column and grand totals."""
    cells = []
    for r, row in enumerate(grid):
        for c, value in enumerate(row):
            cells.append(_cell(value, nationality=NATIONALITIES[r], age_band=AGES[c]))
        cells.append(_cell(sum(row), nationality=NATIONALITIES[r]))
    for c in range(len(grid[0])):
        cells.append(_cell(sum(row[c] for row in grid), age_band=AGES[c]))
    cells.append(_cell(sum(map(sum, grid))))
    return StatisticalReturn.model_validate(
        {"reporting_agency": "ITA-GDF", "period": "2026-07", "cells": cells}
    )


def intervals(published: StatisticalReturn) -> dict[int, tuple[float, float]]:
    """(min, max) of each withheld cell over non-negative real tables consistent with what is
    published, by linear programming."""
    (table,) = tables(published)
    n = len(table.keys)
    rows, rhs = [], []
    for parent, kids in table.equations:
        row = np.zeros(n)
        row[parent] = 1
        row[list(kids)] -= 1
        rows.append(row)
        rhs.append(0)
    for i, position in enumerate(table.index):
        count = published.cells[position].count
        if count is not None:
            row = np.zeros(n)
            row[i] = 1
            rows.append(row)
            rhs.append(count)
    out = {}
    for i, position in enumerate(table.index):
        if not published.cells[position].suppressed:
            continue
        bounds = []
        for sign in (1, -1):
            objective = np.zeros(n)
            objective[i] = sign
            res = linprog(objective, A_eq=np.array(rows), b_eq=rhs, bounds=(0, None))
            assert res.status in (0, 3), res.message  # 3: unbounded
            bounds.append(sign * res.fun if res.status == 0 else np.inf)
        out[position] = (bounds[0], bounds[1])
    return out


grids = st.integers(1, len(NATIONALITIES)).flatmap(
    lambda r: st.integers(1, len(AGES)).flatmap(
        lambda c: st.lists(
            st.lists(st.integers(0, 12), min_size=c, max_size=c), min_size=r, max_size=r
        )
    )
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grid=grids, k=st.integers(2, 10))
def test_every_withheld_cell_is_at_least_k_wide(grid: list[list[int]], k: int) -> None:
    """linprog: each suppressed cell's feasible interval is >= k wide; the rest are exact."""
    original = two_way(grid)
    published = suppress(original, k)
    assert k == published.suppression_k
    for before, after in zip(original.cells, published.cells, strict=True):
        assert after.suppressed or before.count == after.count
        assert not (after.count is not None and 0 < after.count < k)
        if after.suppressed:
            low, high = intervals(published)[published.cells.index(after)]
            assert low - 1e-6 <= (before.count or 0) <= high + 1e-6
            assert high - low >= k - 1e-6
    assert [] == check_disclosure(published, k)


def test_structural_zeros_are_published() -> None:
    """A zero is a figure, not a small cell: it is never primary-suppressed."""
    published = suppress(two_way([[0, 40], [30, 50]]), 5)
    assert not any(cell.suppressed for cell in published.cells)


def test_one_small_cell_takes_a_rectangle() -> None:
    """One small cell in a 2x2 table withholds a rectangle that keeps it 5 wide."""
    published = suppress(two_way([[2, 40], [30, 50]]), 5)
    withheld = [c for c in published.cells if c.suppressed]
    assert 4 == len(withheld)
    assert all(w >= 5 for w in (h - lo for lo, h in intervals(published).values()))


def test_checker_refuses_a_recoverable_cell() -> None:
    """Withholding one cell of a row whose total is published gives it away."""
    data = two_way([[7, 40], [30, 50]]).model_dump(mode="json")
    data["cells"][0] = {**data["cells"][0], "count": None, "suppressed": True}
    problems = check_disclosure(StatisticalReturn.model_validate(data), 5)
    assert ["cells.0 (irregular-crossing-between-bcps) is withheld but can be recovered from "
            "the published cells and totals"] == problems  # fmt: skip
    (low, high) = intervals(StatisticalReturn.model_validate(data))[0]
    assert 0 == pytest.approx(high - low)


def test_checker_refuses_a_small_published_count() -> None:
    """A published 3 under k=5 is a small cell."""
    problems = check_disclosure(two_way([[3, 40], [30, 50]]), 5)
    assert any("publishes 3, below k=5" in p for p in problems)
