"""Disclosure control across the returns an agency has published (issue 16; decision 0025).

A consumer keeps every return it received. Two versions of one period (a resubmission), or a
month and the quarter or year that contains it, describe the same detections, so together they
can pin a cell that each withholds. The publishing node therefore suppresses a new return
*linked* to what the same reporting agency already published (every version, retracted ones
too: a recipient may have kept them), overlapping periods being linked:

1. **Seed.** Every cell withheld in a linked return is withheld in the new one (then secondary
   suppression protects the seeded cells as any other). A version with unchanged figures then
   publishes nothing the earlier one did not; a quarter published after its months withholds
   each cell some month withheld, whose interval the month's own pattern keeps k wide.
2. **Same cells.** The argument needs the linked returns to give the same cells of an indicator:
   when they differ (a breakdown added or dropped) and a cell of it is withheld on either side,
   every count of that indicator is withheld in the new return.
3. **Coarser after finer.** A quarter (or year) withholding more than its months did (a month
   not yet published, or a pattern the months do not share) withholds every count of that
   indicator: its own patterns would be measured on figures the months partly give away.
4. **Finer after coarser: refused.** A month whose withheld cells the published quarter gives
   would, with the quarter's other months, pin them: :class:`LinkedReturnsDisclose` says to
   publish the shorter periods first.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from schemas import Indicator, StatisticalReturn
from schemas.errors import InputError

from ._disclosure import CellId, cell_id, suppress

__all__ = ["LinkedReturnsDisclose", "months", "suppress_linked"]

_PERIOD = re.compile(r"^(?P<year>[0-9]{4})(?:-(?P<month>[0-9]{2})|-Q(?P<quarter>[1-4]))?$")


class LinkedReturnsDisclose(InputError):
    """A return whose withheld cells a published return of a longer period gives: with the
    other periods inside it, they would be pinned."""

    code = "linked_returns_disclose"

    def __init__(self, period: str, coarser: str, cells: list[str]) -> None:
        listed = "; ".join(cells[:5]) + (f" (and {len(cells) - 5} more)" if len(cells) > 5 else "")
        super().__init__(
            f"the return for {period} must withhold {listed}, which the return for {coarser} "
            f"already published: with the other periods of {coarser} they would be pinned. "
            f"Publish the returns of the shorter periods before the one for {coarser} (a "
            f"retraction does not help: its recipients have read it), or leave {period} out"
        )
        self.period = period
        self.coarser = coarser
        self.cells = cells

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "period": self.period, "coarser": self.coarser}


def months(period: str) -> frozenset[str]:
    """The months a period covers: ``2026-Q3`` -> 2026-07, 2026-08, 2026-09."""
    match = _PERIOD.fullmatch(period)
    if match is None:
        raise ValueError(f"{period!r} is not a period")
    year = match["year"]
    if match["month"]:
        return frozenset({period})
    first, last = (1, 12)
    if match["quarter"]:
        first = 3 * int(match["quarter"]) - 2
        last = first + 2
    return frozenset(f"{year}-{m:02d}" for m in range(first, last + 1))


def _keys(ret: StatisticalReturn) -> dict[Indicator, set[CellId]]:
    out: dict[Indicator, set[CellId]] = defaultdict(set)
    for cell in ret.cells:
        if cell.indicator is not Indicator.FEE_PER_PERSON:
            out[cell.indicator].add(cell_id(cell))
    return out


def _withheld(returns: Iterable[StatisticalReturn]) -> set[CellId]:
    return {cell_id(c) for ret in returns for c in ret.cells if c.suppressed}


def _describe(ident: CellId) -> str:
    indicator, key = ident
    return f"{indicator.value} {', '.join(f'{n}={v}' for n, v in key) or '(total)'}"


def suppress_linked(
    ret: StatisticalReturn, published: Sequence[StatisticalReturn], k: int
) -> StatisticalReturn:
    """``ret`` suppressed at ``k`` and linked to the agency's ``published`` returns (see the
    module); raises :class:`LinkedReturnsDisclose` for a shorter period after a longer one."""
    covered = months(ret.period)
    linked = [
        p for p in published
        if p.reporting_agency == ret.reporting_agency and months(p.period) & covered
    ]  # fmt: skip
    seed = _withheld(linked)
    finer = [p for p in linked if months(p.period) < covered]
    coarser = [p for p in linked if months(p.period) > covered]
    result = suppress(ret, k, seed=seed)
    whole = _whole(result, linked, seed, bool(finer))
    if whole:
        result = suppress(ret, k, seed=seed, whole=whole)
    withheld = _withheld([result])
    for other in coarser:
        given = {cell_id(c) for c in other.cells if c.count is not None}
        if clash := sorted(withheld & given, key=_describe):
            raise LinkedReturnsDisclose(ret.period, other.period, [_describe(c) for c in clash])
    return result


def _whole(
    result: StatisticalReturn,
    linked: Sequence[StatisticalReturn],
    seed: set[CellId],
    after_finer: bool,
) -> set[Indicator]:
    """The indicators of ``result`` to withhold whole: rules 2 and 3 of the module."""
    withheld = _withheld([result])
    mine = _keys(result)
    whole = {indicator for indicator, _ in withheld - seed} if after_finer else set()
    for other in linked:
        theirs = _keys(other)
        for indicator in mine.keys() & theirs.keys():
            touched = (mine[indicator] | theirs[indicator]) & (withheld | seed)
            if mine[indicator] != theirs[indicator] and touched:
                whole.add(indicator)
    return whole
