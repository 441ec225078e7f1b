"""Small-cell suppression: every withheld cell stays at least k wide (decision 0024)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import check_disclosure, suppress
from schemas import AgeBand, Indicator, StatisticalReturn
from tests.policies._joint import intervals as joint_intervals

NATIONALITIES = ["AFG", "SYR", "ERI", "TUN", "EGY", "BGD"]
AGES = [band.value for band in AgeBand]
IND = Indicator.IRREGULAR_CROSSING_BETWEEN_BCPS


def _cell(count: int, **dims: str) -> dict[str, Any]:
    return {"indicator": IND.value, "dimensions": dims, "count": count}


def two_way(grid: list[list[int]], missing: frozenset[str] = frozenset()) -> StatisticalReturn:
    """A nationality x age-band table with row, column and grand totals, less the totals named
    in ``missing`` (``r0`` the first row's, ``c0`` the first column's, ``grand``)."""
    cells = []
    for r, row in enumerate(grid):
        for c, value in enumerate(row):
            cells.append(_cell(value, nationality=NATIONALITIES[r], age_band=AGES[c]))
        if f"r{r}" not in missing:
            cells.append(_cell(sum(row), nationality=NATIONALITIES[r]))
    for c in range(len(grid[0])):
        if f"c{c}" not in missing:
            cells.append(_cell(sum(row[c] for row in grid), age_band=AGES[c]))
    if "grand" not in missing:
        cells.append(_cell(sum(map(sum, grid))))
    return StatisticalReturn.model_validate(
        {"reporting_agency": "ITA-GDF", "period": "2026-07", "cells": cells}
    )


def intervals(published: StatisticalReturn) -> dict[int, tuple[float, float]]:
    """(min, max) of each withheld count cell over the hidden tables consistent with what is
    published (tests/policies/_joint.py), by cell position."""
    return {p: interval for (_, p), interval in joint_intervals([published]).items()}


grids = st.integers(1, len(NATIONALITIES)).flatmap(
    lambda r: st.integers(1, len(AGES)).flatmap(
        lambda c: st.lists(
            st.lists(st.integers(0, 12), min_size=c, max_size=c), min_size=r, max_size=r
        )
    )
)


def _some(names: list[str]) -> st.SearchStrategy[frozenset[str]]:
    """None of a level of totals, all of it, or any part of it."""
    return st.one_of(
        st.just(frozenset()), st.just(frozenset(names)), st.frozensets(st.sampled_from(names))
    )


def _left_out(grid: list[list[int]]) -> st.SearchStrategy[frozenset[str]]:
    rows = _some([f"r{r}" for r in range(len(grid))])
    cols = _some([f"c{c}" for c in range(len(grid[0]))])
    grand = st.sampled_from([frozenset(), frozenset({"grand"})])
    return st.tuples(rows, cols, grand).map(lambda parts: frozenset().union(*parts))


cases = grids.flatmap(lambda grid: st.tuples(st.just(grid), _left_out(grid)))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases, k=st.integers(2, 10))
def test_every_withheld_cell_is_at_least_k_wide(
    case: tuple[list[list[int]], frozenset[str]], k: int
) -> None:
    """linprog: each suppressed cell's feasible interval is >= k wide; the rest are exact.
    Some totals may be missing: a return need not give every level of them."""
    grid, missing = case
    original = two_way(grid, missing)
    published = suppress(original, k)
    assert k == published.suppression_k
    widths = intervals(published)
    for position, (before, after) in enumerate(zip(original.cells, published.cells, strict=True)):
        assert after.suppressed or before.count == after.count
        assert not (after.count is not None and 0 < after.count < k)
        if after.suppressed:
            low, high = widths[position]
            assert low - 1e-6 <= (before.count or 0) <= high + 1e-6
            assert high - low >= k - 1e-6
    assert [] == check_disclosure(published, k)


def _return(*cells: dict[str, Any]) -> StatisticalReturn:
    return StatisticalReturn.model_validate(
        {"reporting_agency": "ITA-GDF", "period": "2026-Q3", "cells": list(cells)}
    )


def test_a_grand_total_over_the_finest_cells_is_an_equation() -> None:
    """Grand total and route x border cells, no route-only or border-only totals (review #16
    L1): the small cell is not recoverable from the grand total."""
    inner = [("central-med", "sea", 3), ("central-med", "land", 12)]
    inner += [("eastern-med", "sea", 15), ("eastern-med", "land", 10)]
    original = _return(_cell(40), *(_cell(n, route=r, border_type=b) for r, b, n in inner))
    published = suppress(original, 5)
    assert published.cells[1].suppressed
    assert all(high - low >= 5 for low, high in intervals(published).values())
    assert [] == check_disclosure(published, 5)
    [partner] = [i for i, c in enumerate(published.cells) if c.suppressed and i != 1]
    data = published.model_dump(mode="json")
    data["cells"][partner] = original.cells[partner].model_dump(mode="json")
    problems = check_disclosure(StatisticalReturn.model_validate(data), 5)
    assert any("cells.1 " in p and "can be recovered" in p for p in problems)


def test_partial_margins_are_safe_with_moves() -> None:
    """A route total for one route only (review #16): the small cell moves to its neighbour
    of the same route (decision 0025), not the whole indicator withheld as before; a receiver
    still refuses a return that withholds the small cell alone."""
    inner = [("central-med", "sea", 3), ("central-med", "land", 12)]
    inner += [("eastern-med", "sea", 15), ("eastern-med", "land", 10)]
    original = _return(
        _cell(40),
        _cell(25, route="eastern-med"),
        *(_cell(n, route=r, border_type=b) for r, b, n in inner),
    )
    published = suppress(original, 5)
    assert [False, False, True, True, False, False] == [c.suppressed for c in published.cells]
    assert {2: (0, 15), 3: (0, 15)} == intervals(published)
    assert [] == check_disclosure(published, 5)
    data = original.model_dump(mode="json")
    data["cells"][2] = {**data["cells"][2], "count": None, "suppressed": True}
    problems = check_disclosure(StatisticalReturn.model_validate(data), 5)
    assert any("cells.2 " in p and "can be recovered" in p for p in problems)


def test_a_nationality_band_is_a_nationality() -> None:
    """``other`` sits in the nationality line: the total covers it, so a small band is
    protected by one other nationality, not by withholding the whole indicator."""
    published = suppress(
        _return(
            _cell(20),
            _cell(10, nationality="SYR"),
            _cell(7, nationality="AFG"),
            _cell(3, nationality_band="other"),
        ),
        5,
    )
    assert [False, False, True, True] == [cell.suppressed for cell in published.cells]
    assert {2: (0, 10), 3: (0, 10)} == intervals(published)
    assert [] == check_disclosure(published, 5)


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


def test_a_return_withholding_cells_unsafely_by_hand_is_refused() -> None:
    """Cells marked suppressed in the input are kept only if they pass the receiver's check."""
    data = two_way([[7, 40], [30, 50]]).model_dump(mode="json")
    data["cells"][0] = {**data["cells"][0], "count": None, "suppressed": True}
    with pytest.raises(ValueError, match=r"not safely at k=5.*give every count"):
        suppress(StatisticalReturn.model_validate(data), 5)
