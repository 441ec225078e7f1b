"""Small-cell suppression of a statistical return (issue 16; decisions 0024 and 0025).

**What a consumer can infer.** Per indicator, the count cells of a return are sums over one
hidden table of detections cross-classified by every dimension the indicator uses (the values
of each dimension being those the cells name, a nationality band a value of ``nationality``, and
a UN/LOCODE inside the country of its first two letters):
a cell with dimensions unset sums over all their values. A consumer who assumes exactly that
(the strongest reading) knows every published cell is such a sum of non-negative unknowns, and
nothing else. Fee cells are amounts, not counts, and are not part of any table.

**Primary suppression.** Every non-zero count below ``k`` is withheld, as is every cell of the
``seed`` (cells the agency withheld in linked returns it has already published: decision 0025).
Zeros are published: a structural (or observed) zero discloses nobody (decision 0024).

**Secondary suppression: moves of detections between cells** (Hundepool et al., *Statistical
Disclosure Control*, Wiley 2012, ch. 5.2 and 5.6; the hypercube idea of tau-argus). A withheld
cell is protected when the hidden table can be changed, without changing any published cell,
so that the cell takes every value in an interval at least ``k`` wide. Three kinds of change:

- *A move* between two cells ``a`` and ``b`` with the same dimensions (they differ in the values
  of some, ``D``): detections of ``a`` become detections of ``b`` with every other coordinate
  kept. All of ``a`` can go to ``b`` and all of ``b`` to ``a``, so both range over
  ``value(a) + value(b)``. The move changes exactly the cells that set a dimension of ``D`` and
  are compatible with ``a`` or ``b`` (besides them): those must be withheld too. Every breakdown
  is so its own table, linked to the others through what they share: a small nationality is
  protected by another nationality of the same total, whatever other breakdowns the total has.
- *A rectangle* of a two-dimensional sub-table (an anchor cell, or no cell, and the cells adding
  two dimensions ``A`` to it, their margins included): two moves along ``A`` whose effects on
  the margins cancel; the pattern ``z`` of +1/-1 must leave every marginal equation true and
  every level's sum unchanged, and no cell outside the sub-table may set a dimension of ``A``
  while being compatible with the anchor (else it would change too). Its cells range over
  ``min(value where z = +1) + min(value where z = -1)``.
- *Alone*: a cell every compatible cell of which is withheld can take any value.

Each withheld cell not yet protected gets the cheapest protection at least ``k`` wide (fewest
newly withheld cells, then smallest withheld total); "alone" always exists, so at worst every
cell that could hold the same detections is withheld. The property tests
(tests/policies/test_disclosure*.py) compute every withheld cell's interval with
``scipy.optimize.linprog`` over the hidden table itself.

**What a receiver can check** (:func:`check_disclosure`) without the withheld values: no
published non-zero count below ``k``, and every withheld cell lies on a move, rectangle or
alone pattern of withheld cells (so none is determined by the published figures).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from schemas import Cell, Indicator, StatisticalReturn

from ._disclosure_implicit import (
    BreakdownLeavesSmallRest,
    country_of,
    fees_describing_few,
    small_rests,
    without_fees_describing_few,
)

__all__ = [
    "DEFAULT_SUPPRESSION_K",
    "BreakdownLeavesSmallRest",
    "CellId",
    "Table",
    "cell_id",
    "check_disclosure",
    "suppress",
    "tables",
]

DEFAULT_SUPPRESSION_K: Final[int] = 5
"""Cells below this are withheld when neither the node nor the federation sets k."""
_INF: Final[float] = float("inf")
LINES_PER_GRID: Final[int] = 8
"""Other rows (and columns) tried per cell and sub-table for a rectangle, cheapest first: a
full search is quadratic in a grid's size (minutes for a 2,000-cell return). Fewer tried can
only withhold more, never less safely; the receiver's check tries every withheld line."""

Key = tuple[tuple[str, str], ...]
"""A cell's coordinates: its set dimensions as sorted (name, value) pairs."""
CellId = tuple[Indicator, Key]
"""A count cell across returns: its indicator and coordinates."""


def _key(dimensions: Key) -> Key:
    """A cell's coordinates in its table: a nationality band is a value of ``nationality``, and
    a UN/LOCODE implies its country. Without that country, a consumer who reads ``GRMJT`` as in
    Greece (anyone can) learns ``place_country=GRC`` = the sum of the Greek LOCODE cells, an
    equation the moves would not know of, and can pin a withheld LOCODE or country."""
    values = dict(dimensions)
    if "nationality_band" in values:
        values["nationality"] = values.pop("nationality_band")
    if "place_unlocode" in values and "place_country" not in values:
        country = country_of(values["place_unlocode"])
        if country is not None:
            values["place_country"] = country
    return tuple(sorted(values.items()))


def cell_id(cell: Cell) -> CellId:
    """Which cell this is, whatever the return: the same id in two periods or versions."""
    return (cell.indicator, _key(cell.dimensions.key()))


def _compatible(a: Key, b: Key) -> bool:
    """Whether two cells can hold the same detections: no dimension set to different values."""
    values = dict(a)
    return all(values.get(name, value) == value for name, value in b)


@dataclass
class Table:
    """One indicator's count cells and the equations between them (indices into ``keys``),
    with the indexes the pattern search needs (built once: a return has up to 5000 cells)."""

    indicator: Indicator
    keys: tuple[Key, ...]
    index: tuple[int, ...]
    """Each key's position in the return's ``cells``."""
    equations: tuple[tuple[int, tuple[int, ...]], ...]
    """(parent, children): ``parent = sum(children)``, one per group of added dimensions."""
    values_of: dict[str, list[str]] = field(init=False, repr=False)
    """Each dimension's values, sorted."""
    with_item: dict[tuple[str, str], list[int]] = field(init=False, repr=False)
    """The cells setting one dimension to one value."""
    with_names: dict[tuple[str, ...], list[int]] = field(init=False, repr=False)
    """The cells setting exactly these dimensions."""
    lookup: dict[Key, int] = field(init=False, repr=False)
    involved: dict[int, list[int]] = field(init=False, repr=False)
    """The equations (indices) each cell takes part in."""
    kids: list[frozenset[int]] = field(init=False, repr=False)
    level: list[frozenset[str]] = field(init=False, repr=False)
    """Each cell's set dimensions."""
    """Each equation's children, as a set."""
    closed: dict[tuple[Key, tuple[str, ...]], bool] = field(init=False, repr=False)
    _conflicting: dict[Key, frozenset[int]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.with_item, self.with_names = defaultdict(list), defaultdict(list)
        for i, key in enumerate(self.keys):
            self.with_names[tuple(name for name, _ in key)].append(i)
            for item in key:
                self.with_item[item].append(i)
        values: dict[str, set[str]] = defaultdict(set)
        for name, value in self.with_item:
            values[name].add(value)
        self.values_of = {name: sorted(v) for name, v in values.items()}
        self.lookup = {key: i for i, key in enumerate(self.keys)}
        self.kids = [frozenset(kids) for _, kids in self.equations]
        self.level = [frozenset(name for name, _ in key) for key in self.keys]
        self.involved = defaultdict(list)
        for e, (parent, kids) in enumerate(self.equations):
            for c in (parent, *kids):
                self.involved[c].append(e)
        self.closed, self._conflicting = {}, {}

    @property
    def dimensions(self) -> frozenset[str]:
        return frozenset(self.values_of)

    def conflicting(self, items: Key) -> frozenset[int]:
        """The cells that set one of these dimensions to another value (cannot overlap)."""
        if items not in self._conflicting:
            self._conflicting[items] = frozenset().union(
                *(self.with_item[(n, other)] for n, v in items for other in self.values_of[n]
                  if other != v)
            )  # fmt: skip
        return self._conflicting[items]


def tables(ret: StatisticalReturn) -> list[Table]:
    """The return's count tables, one per indicator, with their marginal-total equations."""
    by_indicator: dict[Indicator, list[tuple[Key, int]]] = defaultdict(list)
    for position, cell in enumerate(ret.cells):
        if cell.indicator is not Indicator.FEE_PER_PERSON:
            by_indicator[cell.indicator].append((cell_id(cell)[1], position))
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
        out.append(Table(indicator, keys, tuple(p for _, p in entries), equations))
    return out


@dataclass(frozen=True)
class _Pattern:
    """A way to protect cells: the cells it needs withheld, those it protects, its width."""

    cells: frozenset[int]
    protects: frozenset[int]
    width: float


def _partners(table: Table, cell: int, single: bool) -> Iterator[int]:
    """The cells with the same dimensions as ``cell``: differing in one value (``single``), or
    in more than one."""
    key = table.keys[cell]
    if single:
        for at, (name, value) in enumerate(key):
            for alternative in table.values_of[name]:
                found = table.lookup.get((*key[:at], (name, alternative), *key[at + 1 :]))
                if alternative != value and found is not None:
                    yield found
        return
    for partner in table.with_names[tuple(name for name, _ in key)]:
        if sum(x != y for x, y in zip(key, table.keys[partner], strict=True)) > 1:
            yield partner


def _moves(table: Table, cell: int, values: Sequence[int], single: bool) -> Iterator[_Pattern]:
    """Moves between ``cell`` and each partner (see the module)."""
    key = table.keys[cell]
    for other in _partners(table, cell, single):
        okey = table.keys[other]
        moved = [(x, y) for x, y in zip(key, okey, strict=True) if x != y]
        names = {x[0] for x, _ in moved}
        # Compatible with both outside the moved dimensions, and with one of them on those.
        shared = tuple(item for item in key if item[0] not in names)
        candidates = set().union(*(table.with_item[x] for pair in moved for x in pair))
        on_a = tuple(x for x, _ in moved)
        on_b = tuple(y for _, y in moved)
        off_a, off_b, off = (table.conflicting(x) for x in (on_a, on_b, shared))
        # Over the few candidates, not the table (sets of every cell are slow at 2,000 cells).
        affected = frozenset(
            c for c in candidates if c not in off and not (c in off_a and c in off_b)
        )
        yield _Pattern(affected, frozenset({cell, other}), values[cell] + values[other])


def _balanced(table: Table, z: Mapping[int, int]) -> bool:
    """``z`` keeps every marginal equation and every level's sum (so it is made of moves)."""
    levels: dict[frozenset[str], int] = defaultdict(int)
    for c, s in z.items():
        levels[table.level[c]] += s
    if any(levels.values()):
        return False
    for e in {e for c in z for e in table.involved.get(c, ())}:
        parent, kids = table.equations[e], table.kids[e]
        # Over z's few cells, not the children: a grand total has thousands (2,000-cell returns).
        if z.get(parent[0], 0) != sum(s for c, s in z.items() if c in kids):
            return False
    return True


def _rectangles(
    table: Table, cell: int, values: Sequence[int], withheld: Collection[int], only: bool
) -> Iterator[dict[int, int]]:
    """Balanced rectangles through ``cell`` in every closed two-dimensional sub-table: with
    ``only``, of ``withheld`` cells alone; else the cheapest lines (:data:`LINES_PER_GRID`)."""
    key = dict(table.keys[cell])
    for size in (1, 2):
        if size > len(key):
            continue
        for anchor_names in itertools.combinations(sorted(key), len(key) - size):
            anchor = {n: key[n] for n in anchor_names}
            free = sorted(set(key) - set(anchor))
            others = sorted(table.dimensions - set(key)) if len(free) < 2 else [None]
            for extra in others:
                dims = sorted({*free, *([extra] if extra else [])})
                if len(dims) != 2 or not _closed(table, anchor, dims):
                    continue
                yield from _grid_rectangles(table, cell, anchor, dims, values, withheld, only)


def _closed(table: Table, anchor: dict[str, str], dims: Sequence[str]) -> bool:
    """No cell outside the sub-table sets one of ``dims`` while compatible with the anchor."""
    place = (tuple(sorted(anchor.items())), tuple(dims))
    if place not in table.closed:
        table.closed[place] = not any(
            _compatible(table.keys[i], place[0])
            and not (
                {name for name, _ in table.keys[i]} <= {*anchor, *dims}
                and all(dict(table.keys[i]).get(n) == v for n, v in anchor.items())
            )
            for d in dims
            for value in table.values_of.get(d, ())
            for i in table.with_item[(d, value)]
        )
    return table.closed[place]


def _grid_rectangles(
    table: Table,
    cell: int,
    anchor: dict[str, str],
    dims: Sequence[str],
    counts: Sequence[int],
    withheld: Collection[int],
    only: bool,
) -> Iterator[dict[int, int]]:
    values = table.values_of

    def at(r: str | None, c: str | None) -> int | None:
        coords = dict(anchor)
        for d, v in ((dims[0], r), (dims[1], c)):
            if v is not None:
                coords[d] = v
        return table.lookup.get(tuple(sorted(coords.items())))

    here = dict(table.keys[cell])
    row, col = here.get(dims[0]), here.get(dims[1])
    # A 2,000-cell grid has 2,000 rectangles per cell: the cheapest rows and columns only.
    rows = _lines([None, *values[dims[0]]], row, lambda r: at(r, col), counts, withheld, only)
    cols = _lines([None, *values[dims[1]]], col, lambda c: at(row, c), counts, withheld, only)
    for (r2, b), (c2, a) in itertools.product(rows, cols):
        d = at(r2, c2)
        if d is None or (only and d not in withheld):
            continue
        for sa, sb, sd in itertools.product((1, -1), repeat=3):
            z = {cell: 1, a: sa, b: sb, d: sd}
            if _balanced(table, z):
                yield z


def _lines(
    lines: list[str | None],
    mine: str | None,
    corner: Callable[[str | None], int | None],
    counts: Sequence[int],
    withheld: Collection[int],
    only: bool,
) -> list[tuple[str | None, int]]:
    """The other rows (or columns) of a grid with their corner on the cell's column (row):
    with ``only`` those whose corner is withheld, else the :data:`LINES_PER_GRID` cheapest."""
    found = [
        (line, c) for line in lines
        if line != mine and (c := corner(line)) is not None and (c in withheld or not only)
    ]  # fmt: skip
    if only:
        return found
    found.sort(key=lambda lc: (lc[1] not in withheld, counts[lc[1]]))
    return found[:LINES_PER_GRID]


def _width(z: Mapping[int, int], values: Sequence[int]) -> float:
    up = min((values[i] for i, s in z.items() if s < 0), default=_INF)
    down = min((values[i] for i, s in z.items() if s > 0), default=_INF)
    return up + down


def _patterns(
    table: Table,
    cell: int,
    values: Sequence[int],
    wide: bool,
    withheld: Collection[int] = frozenset(),
    only: bool = False,
) -> Iterable[_Pattern]:
    """The protections of ``cell`` (see the module): alone, a move to a cell differing in one
    value, a rectangle; with ``wide``, only the moves to cells differing in more (costlier to
    find, so searched when the others are costly)."""
    if wide:
        yield from _moves(table, cell, values, single=False)
        return
    compatible = frozenset(range(len(table.keys))) - table.conflicting(table.keys[cell])
    yield _Pattern(compatible, frozenset({cell}), _INF)
    yield from _moves(table, cell, values, single=True)
    for z in _rectangles(table, cell, values, withheld, only):
        yield _Pattern(frozenset(z), frozenset(z), _width(z, values))


Cost = tuple[int, int]
"""Newly withheld cells, then their total."""


def _cheapest(
    table: Table, cell: int, values: Sequence[int], k: int, withheld: set[int], wide: bool
) -> tuple[Cost, _Pattern] | None:
    """The protection of ``cell`` at least k wide that withholds the fewest new cells, then the
    smallest new total."""
    best: tuple[Cost, _Pattern] | None = None
    for pattern in _patterns(table, cell, values, wide, withheld):
        if pattern.width < k:
            continue
        new = pattern.cells - withheld
        cost = (len(new), sum(values[i] for i in new))
        if best is None or cost < best[0]:
            best = (cost, pattern)
            if not new:
                break
    return best


def _suppress_table(
    table: Table, values: Sequence[int], k: int, seeded: Collection[int] = ()
) -> set[int]:
    """The cells to withhold. Every withheld cell gets a protection: "alone" always exists
    (withholding every compatible cell), so the search never comes back empty."""
    withheld = {i for i, v in enumerate(values) if 0 < v < k} | set(seeded)
    covered: set[int] = set()
    while uncovered := sorted(withheld - covered):
        cell = uncovered[0]
        found = _cheapest(table, cell, values, k, withheld, wide=False)
        assert found is not None  # "alone" is infinitely wide
        if found[0][0] > 1:  # a wider move withholds at least its partner: only then can it win
            wider = _cheapest(table, cell, values, k, withheld, wide=True)
            found = wider if wider is not None and wider[0] < found[0] else found
        withheld |= found[1].cells
        covered |= found[1].protects
    return withheld


def suppress(
    ret: StatisticalReturn,
    k: int,
    *,
    seed: Collection[CellId] = (),
    whole: Collection[Indicator] = (),
) -> StatisticalReturn:
    """``ret`` with every small count withheld (primary and secondary) and ``suppression_k = k``.

    ``seed``: cells to withhold whatever their count (withheld in linked returns already
    published, decision 0025); ``whole``: indicators every count of which is withheld. Cells
    already marked suppressed in ``ret`` must pass :func:`check_disclosure` as given.
    """
    if any(cell.suppressed for cell in ret.cells):
        problems = check_disclosure(ret, k)
        if problems:
            raise ValueError(
                "the return already withholds cells, and not safely at k="
                f"{k}: {'; '.join(problems)}; give every count and let the node suppress"
            )
        given = {cell_id(c) for c in ret.cells if c.suppressed}
        present = {cell_id(c) for c in ret.cells if c.indicator is not Indicator.FEE_PER_PERSON}
        needed = (set(seed) & present) | {i for i in present if i[0] in whole}
        if needed - given:
            raise ValueError(
                f"the return already withholds cells, but not the {len(needed - given)} that "
                "the agency's published returns require (decision 0025): give every count and "
                "let the node suppress"
            )
        return ret.model_copy(update={"suppression_k": k})
    seeds = set(seed)
    cells = list(ret.cells)
    if rests := [r for t in tables(ret) for r in small_rests(ret, t, k)]:
        raise BreakdownLeavesSmallRest(rests, k)
    for table in tables(ret):
        values = [ret.cells[p].count or 0 for p in table.index]
        if table.indicator in whole:
            withheld = set(range(len(values)))
        else:
            seeded = [i for i, key in enumerate(table.keys) if (table.indicator, key) in seeds]
            withheld = _suppress_table(table, values, k, seeded)
        for i in withheld:
            position = table.index[i]
            cells[position] = cells[position].model_copy(update={"count": None, "suppressed": True})
    controlled = ret.model_copy(update={"cells": cells, "suppression_k": k})
    return without_fees_describing_few(controlled)


def check_disclosure(ret: StatisticalReturn, k: int) -> list[str]:
    """What breaks disclosure control at ``k`` in a received return (empty: nothing)."""
    problems = [
        f"cells.{p} (fee-per-person) describes crossings that are withheld or zero"
        for p in fees_describing_few(ret)
    ]
    for table in tables(ret):
        problems += small_rests(ret, table, k)
        cells = [ret.cells[p] for p in table.index]
        for i, cell in enumerate(cells):
            if cell.count is not None and 0 < cell.count < k:
                problems.append(
                    f"cells.{table.index[i]} ({table.indicator.value}) publishes {cell.count}, "
                    f"below k={k}"
                )
        withheld = {i for i, cell in enumerate(cells) if cell.suppressed}
        unknown = [0] * len(cells)  # widths cannot be checked: only that the pattern exists
        for i in sorted(withheld):
            patterns = itertools.chain(
                _patterns(table, i, unknown, False, withheld, only=True),
                _patterns(table, i, unknown, True),
            )
            if not any(p.cells <= withheld for p in patterns):
                problems.append(
                    f"cells.{table.index[i]} ({table.indicator.value}) is withheld but can be "
                    "recovered from the published cells and totals"
                )
    return problems
