"""Fee cells next to small counts (review of issue 16; decision 0025).

A fee cell (median, min or max of the fees observed per person) describes the persons of the
crossings it is broken down like: a median over two persons is nearly each one's fee, and a
min or max is always one person's. The amounts themselves are not counts and cannot be
suppressed by intervals, so a fee cell is *left out* of the return when the crossings it
describes are withheld (fewer than k, or a complement of fewer than k) or are zero: it would
describe the few the suppression hides. A fee with no crossing cell of the same dimensions is
kept (its persons cannot be counted from the return: docs/statistics.md, "Fees").
"""

from __future__ import annotations

from collections import defaultdict

from schemas import Cell, Indicator, StatisticalReturn

__all__ = ["fees_describing_few", "without_fees_describing_few"]

_PERSONS = (Indicator.IRREGULAR_CROSSING_BETWEEN_BCPS, Indicator.IRREGULAR_CROSSING_AT_BCPS)
"""The indicators whose detections are the persons who paid the fees."""


def fees_describing_few(ret: StatisticalReturn) -> list[int]:
    """The positions of the fee cells whose crossings (same dimensions) are withheld or zero."""
    crossings: dict[tuple[tuple[str, str], ...], list[Cell]] = defaultdict(list)
    for cell in ret.cells:
        if cell.indicator in _PERSONS:
            crossings[cell.dimensions.key()].append(cell)
    out = []
    for position, cell in enumerate(ret.cells):
        same = crossings.get(cell.dimensions.key(), [])
        few = any(c.suppressed for c in same) or not sum(c.count or 0 for c in same)
        if cell.indicator is Indicator.FEE_PER_PERSON and same and few:
            out.append(position)
    return out


def without_fees_describing_few(ret: StatisticalReturn) -> StatisticalReturn:
    """``ret`` less the fee cells :func:`fees_describing_few` finds (never every cell: each
    one found has a crossing cell beside it)."""
    few = set(fees_describing_few(ret))
    kept = [cell for position, cell in enumerate(ret.cells) if position not in few]
    return ret.model_copy(update={"cells": kept}) if few else ret
