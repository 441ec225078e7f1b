"""Figures a consumer derives without a cell for them (review of issue 16; decision 0025).

**The rest of a partial breakdown.** Total 100, AFG 60 and SYR 38 publish 2 detections of
other nationalities by subtraction: :class:`BreakdownLeavesSmallRest` refuses such a return
at the source, and the receiver's check reports it, when the rest is 1 to k-1.

**Fee cells next to small counts.**
A fee cell (median, min or max of the fees observed per person) describes the persons of the
crossings it is broken down like: a median over two persons is nearly each one's fee, and a
min or max is always one person's. The amounts themselves are not counts and cannot be
suppressed by intervals, so a fee cell is *left out* of the return when the crossings it
describes are withheld (fewer than k, or a complement of fewer than k) or are zero: it would
describe the few the suppression hides. A fee with no crossing cell of the same dimensions is
kept (its persons cannot be counted from the return: docs/statistics.md, "Fees").
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from typing import Protocol

import pycountry

from schemas import Cell, Indicator, StatisticalReturn
from schemas.errors import InputError


class Table(Protocol):
    """What :func:`small_rests` reads of ``_disclosure.Table`` (no import: no cycle)."""

    indicator: Indicator
    keys: tuple[tuple[tuple[str, str], ...], ...]
    index: tuple[int, ...]
    equations: tuple[tuple[int, tuple[int, ...]], ...]
    values_of: dict[str, list[str]]


__all__ = [
    "BreakdownLeavesSmallRest",
    "country_of",
    "fees_describing_few",
    "small_rests",
    "without_fees_describing_few",
]

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


class BreakdownLeavesSmallRest(InputError):
    """A breakdown whose cells add up to less than their total by fewer than k detections: the
    difference is a small cell nobody suppressed (a consumer subtracts)."""

    code = "breakdown_leaves_small_rest"

    def __init__(self, rests: list[str], k: int) -> None:
        listed = "; ".join(rests[:5]) + (f" (and {len(rests) - 5} more)" if len(rests) > 5 else "")
        super().__init__(
            f"{listed}: fewer than k={k} detections a consumer finds by subtraction. Give the "
            "rest as a cell of its own (nationality_band other or unknown, sex or age_band "
            "unknown, transport_mode or fraud other, ...) so it is suppressed, or leave the "
            "breakdown out"
        )
        self.rests = rests


def small_rests(ret: StatisticalReturn, table: Table, k: int) -> list[str]:
    """Each total whose breakdown gives every value the table knows (so no missing margin
    explains the gap) and falls short of it by 1 to k-1 (a partial breakdown, such as the
    largest nationalities only): the rest is an implicit small cell."""
    out, values = [], [ret.cells[p].count for p in table.index]
    for parent, kids in table.equations:
        added = sorted({n for n, _ in table.keys[kids[0]]} - {n for n, _ in table.keys[parent]})
        if len(kids) < math.prod(len(table.values_of[n]) for n in added):
            continue  # a value listed elsewhere is missing here: the hidden table has it
        counts = [v for c in (parent, *kids) if (v := values[c]) is not None]
        if len(counts) == 1 + len(kids) and 0 < (rest := counts[0] - sum(counts[1:])) < k:
            where = ", ".join(f"{n}={v}" for n, v in table.keys[parent]) or "(total)"
            out.append(
                f"{table.indicator.value} {where} broken down by {', '.join(added)} "
                f"leaves {rest} unlisted"
            )
    return out


@functools.cache
def country_of(unlocode: str) -> str | None:
    """The ISO alpha-3 country of a UN/LOCODE (its first two letters are the alpha-2 code)."""
    country = pycountry.countries.get(alpha_2=unlocode[:2])
    return None if country is None else str(country.alpha_3)
