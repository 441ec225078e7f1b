"""Small-cell suppression of a statistical return (issue 16; decision 0024).

**Which totals a return publishes.** Per indicator, the count cells of a return form a
hierarchical table: a cell whose dimensions are a subset of another's is a marginal total of
the cells below it. A nationality band is a value of ``nationality`` (as in the aggregation of
node/_stats_aggregate.py): stateless, unknown and other sit in one line with the country codes.
Every present cell ``P`` is linked to every present cell that refines it, whatever the levels in
between: the cells below ``P`` are grouped by the set of dimensions they add, and each group
gives one equation ``P = sum of the group``. So route+border_type cells sum to route-only
totals, to border_type-only totals and, even when those are not given, to the grand total.
Fee cells are amounts, not counts, and are not part of any table.

**Partial margins.** The equations hold when every level of totals a return gives is complete.
When a level is given for some lines but not others (a route-only total for one route, none for
another that is broken down below it), that level's equation would be wrong and the cells it
should constrain are left free, so every count cell of the indicator is withheld (as for a
table of more than two dimensions).

**Primary suppression.** Every non-zero count below ``k`` is withheld. Zeros are published:
a structural (or observed) zero discloses nobody (decision 0024).

**Secondary suppression.** A withheld cell must not be narrowed to less than ``k`` by the
published cells and totals. The method is the one of Hundepool et al., *Statistical Disclosure
Control* (Wiley 2012), ch. 5.2 (tau-argus' hypercube practice): a withheld cell is protected by
a *balanced perturbation*, a pattern ``z`` of +1/-1 over withheld cells that leaves every
equation true (``A z = 0``; in a 2-D table a rectangle of four cells, the totals included, or
two cells of one line). Adding ``t * z`` to the true table gives another table consistent with
everything published, for ``t`` from ``-min(value where z = +1)`` to ``+min(value where z =
-1)``, so every cell of ``z`` ranges over an interval at least ``W(z) = min(z=+1) + min(z=-1)``
wide. Each withheld cell not yet on a pattern with ``W >= k`` gets the cheapest such pattern
(fewest newly withheld cells, then smallest withheld total); if there is none, or the indicator
is broken down by more than two dimensions or has partial margins, every count cell of the
indicator is withheld. The property test (tests/policies/test_disclosure.py) checks the
intervals with ``scipy.optimize.linprog`` under constraints it derives from the cell keys alone.

**What a receiver can check** (:func:`check_disclosure`) without the withheld values: no
published non-zero count below ``k``, and every withheld cell lies on a balanced pattern of
withheld cells (so none is determined by the published figures).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from schemas import Indicator, StatisticalReturn

__all__ = [
    "DEFAULT_SUPPRESSION_K",
    "Table",
    "check_disclosure",
    "suppress",
    "tables",
]

DEFAULT_SUPPRESSION_K: Final[int] = 5
"""Cells below this are withheld when neither the node nor the federation sets k."""
_MAX_TABLE_DIMENSIONS: Final[int] = 2
_INF: Final[float] = float("inf")

Key = tuple[tuple[str, str], ...]
"""A cell's coordinates: its set dimensions as sorted (name, value) pairs."""


@dataclass(frozen=True)
class Table:
    """One indicator's count cells and the equations between them (indices into ``keys``)."""

    indicator: Indicator
    keys: tuple[Key, ...]
    index: tuple[int, ...]
    """Each key's position in the return's ``cells``."""
    equations: tuple[tuple[int, tuple[int, ...]], ...]
    """(parent, children): ``parent = sum(children)``."""
    partial: bool
    """Some level of totals is given for some lines only (see the module)."""

    @property
    def dimensions(self) -> frozenset[str]:
        return frozenset(name for key in self.keys for name, _ in key)


def _key(dimensions: Key) -> Key:
    """A cell's coordinates in its table: a nationality band is a value of ``nationality``."""
    values = dict(dimensions)
    if "nationality_band" in values:
        values["nationality"] = values.pop("nationality_band")
    return tuple(sorted(values.items()))


def _partial(keys: Sequence[Key]) -> bool:
    """Whether a finer cell misses its total at a coarser level that the table does give."""
    levels = {frozenset(name for name, _ in key) for key in keys}
    present = set(keys)
    for key in keys:
        for level in levels:
            above = tuple(item for item in key if item[0] in level)
            if level < {name for name, _ in key} and above not in present:
                return True
    return False


def tables(ret: StatisticalReturn) -> list[Table]:
    """The return's count tables, one per indicator, with their marginal-total equations."""
    by_indicator: dict[Indicator, list[tuple[Key, int]]] = defaultdict(list)
    for position, cell in enumerate(ret.cells):
        if cell.indicator is not Indicator.FEE_PER_PERSON:
            by_indicator[cell.indicator].append((_key(cell.dimensions.key()), position))
    out = []
    for indicator, entries in by_indicator.items():
        keys = tuple(key for key, _ in entries)
        items = [frozenset(key) for key in keys]
        groups: dict[tuple[int, frozenset[str]], list[int]] = defaultdict(list)
        for parent, above in enumerate(items):
            for child, below in enumerate(items):
                if above < below:
                    added = frozenset(name for name, _ in below - above)
                    groups[(parent, added)].append(child)
        equations = tuple(
            (parent, tuple(kids))
            for (parent, _), kids in sorted(
                groups.items(), key=lambda g: (g[0][0], sorted(g[0][1]))
            )
        )
        out.append(Table(indicator, keys, tuple(p for _, p in entries), equations, _partial(keys)))
    return out


def _balanced(table: Table, z: Mapping[int, int]) -> bool:
    return all(
        z.get(parent, 0) == sum(z.get(c, 0) for c in kids) for parent, kids in table.equations
    )


def _patterns(table: Table, cell: int) -> Iterable[dict[int, int]]:
    """Candidate balanced patterns through ``cell``: alone, with one other cell, or (for a table
    of at most two dimensions) a rectangle of its grid, the totals as the ``*`` row and column."""
    n = len(table.keys)
    singles = [{cell: 1}]
    pairs = [{cell: 1, o: s} for o in range(n) if o != cell for s in (1, -1)]
    candidates: Iterable[dict[int, int]] = itertools.chain(singles, pairs)
    dims = sorted(table.dimensions)
    if len(dims) == _MAX_TABLE_DIMENSIONS:
        grid = {_coordinates(key, dims): i for i, key in enumerate(table.keys)}
        row, col = _coordinates(table.keys[cell], dims)
        rows = {r for r, _ in grid}
        cols = {c for _, c in grid}
        rects = []
        for r2, c2 in itertools.product(rows - {row}, cols - {col}):
            corners = [grid.get((row, c2)), grid.get((r2, col)), grid.get((r2, c2))]
            if any(c is None for c in corners):
                continue
            a, b, d = (c for c in corners if c is not None)
            for sa, sb, sd in itertools.product((1, -1), repeat=3):
                rects.append({cell: 1, a: sa, b: sb, d: sd})
        candidates = itertools.chain(candidates, rects)
    return (z for z in candidates if _balanced(table, z))


def _coordinates(key: Key, dims: Sequence[str]) -> tuple[str, str]:
    values = dict(key)
    return (values.get(dims[0], "*"), values.get(dims[1], "*"))


def _width(z: Mapping[int, int], values: Sequence[int]) -> float:
    up = min((values[i] for i, s in z.items() if s < 0), default=_INF)
    down = min((values[i] for i, s in z.items() if s > 0), default=_INF)
    return up + down


def _suppress_table(table: Table, values: Sequence[int], k: int) -> set[int]:
    withheld = {i for i, v in enumerate(values) if 0 < v < k}
    if not withheld:
        return withheld
    everything = set(range(len(values)))
    if table.partial or len(table.dimensions) > _MAX_TABLE_DIMENSIONS:
        return everything
    covered: set[int] = set()
    while uncovered := sorted(withheld - covered):
        cell = uncovered[0]
        best: tuple[int, int, dict[int, int]] | None = None
        for z in _patterns(table, cell):
            if _width(z, values) < k:
                continue
            new = [i for i in z if i not in withheld]
            cost = (len(new), sum(values[i] for i in new))
            if best is None or cost < best[:2]:
                best = (*cost, z)
        if best is None:
            return everything
        withheld |= set(best[2])
        covered |= set(best[2])
    return withheld


def suppress(ret: StatisticalReturn, k: int) -> StatisticalReturn:
    """``ret`` with every small count withheld (primary and secondary) and ``suppression_k = k``.

    Cells already marked suppressed in ``ret`` must pass :func:`check_disclosure` as given.
    """
    if any(cell.suppressed for cell in ret.cells):
        problems = check_disclosure(ret, k)
        if problems:
            raise ValueError(
                "the return already withholds cells, and not safely at k="
                f"{k}: {'; '.join(problems)}; give every count and let the node suppress"
            )
        return ret.model_copy(update={"suppression_k": k})
    cells = list(ret.cells)
    for table in tables(ret):
        values = [ret.cells[p].count or 0 for p in table.index]
        for i in _suppress_table(table, values, k):
            position = table.index[i]
            cells[position] = cells[position].model_copy(update={"count": None, "suppressed": True})
    return ret.model_copy(update={"cells": cells, "suppression_k": k})


def check_disclosure(ret: StatisticalReturn, k: int) -> list[str]:
    """What breaks disclosure control at ``k`` in a received return (empty: nothing)."""
    problems = []
    for table in tables(ret):
        cells = [ret.cells[p] for p in table.index]
        for i, cell in enumerate(cells):
            if cell.count is not None and 0 < cell.count < k:
                problems.append(
                    f"cells.{table.index[i]} ({table.indicator.value}) publishes {cell.count}, "
                    f"below k={k}"
                )
        withheld = {i for i, cell in enumerate(cells) if cell.suppressed}
        if not withheld or len(withheld) == len(cells):
            continue
        if len(table.dimensions) > _MAX_TABLE_DIMENSIONS:
            problems.append(
                f"{table.indicator.value} is broken down by more than two dimensions: withhold "
                "every count of it, or none"
            )
            continue
        if table.partial:
            problems.append(
                f"{table.indicator.value} gives a level of totals for some lines only: withhold "
                "every count of it, or none"
            )
            continue
        for i in sorted(withheld):
            if not any(set(z) <= withheld for z in _patterns(table, i)):
                problems.append(
                    f"cells.{table.index[i]} ({table.indicator.value}) is withheld but can be "
                    "recovered from the published cells and totals"
                )
    return problems
