"""Aggregating statistical returns across the federation (issue 16 item 3): pure functions.

The input is the returns a node holds, the newest per agency and period (a resubmitted return
replaces the earlier one; a retracted one is purged from the inbox and so leaves the aggregate).
A breakdown is a list of dimension names, and ``indicator``. From each return and indicator the
aggregate takes the coarsest table that has every requested dimension (the cells whose set
dimensions are the fewest that include them; ties broken by name) and sums its cells onto the
requested dimensions, so a return that reports a total and a breakdown is never counted twice.

Suppressed cells are never totals: a sum that includes a suppressed contribution is shown as
suppressed, with the sum of the published contributions as a lower bound, and the total per
indicator is the sum of the rows shown (a lower bound if any is suppressed), never a return's
own total, from which a suppressed cell could be recovered by subtraction. Counts of different
indicators are never added together (a breakdown always includes the indicator). Fees are not
summed: each agency's amount is listed, with the minimum and maximum across agencies per
statistic and currency.
See docs/statistics.md.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from schemas import Dimensions, Indicator, StatisticalReturn
from schemas.errors import InputError

from ._stats_store import latest_returns
from .inbox import Inbox

__all__ = [
    "BREAKDOWNS",
    "Aggregate",
    "FeeRow",
    "Row",
    "aggregate",
    "render",
    "returns_in_inbox",
]

INDICATOR: Final = "indicator"
BREAKDOWNS: Final[tuple[str, ...]] = (INDICATOR, *Dimensions.model_fields)
"""What ``--by`` may name: the indicator and every dimension of a cell."""
NONE: Final = "(all)"
"""How a dimension a cell leaves out is shown when it is asked for (it should not happen: only
tables that have every requested dimension are used)."""


def parse_by(text: str) -> tuple[str, ...]:
    """``route,indicator`` as a breakdown; a typed error names an unknown dimension."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in BREAKDOWNS]
    if unknown or not names:
        raise InputError(
            f"--by {text!r}: unknown breakdown {', '.join(unknown) or '(empty)'}; choose from "
            f"{', '.join(BREAKDOWNS)}"
        )
    if len(set(names)) != len(names):
        raise InputError(f"--by {text!r}: each breakdown once")
    return names


def returns_in_inbox(inbox: Inbox) -> list[StatisticalReturn]:
    """The statistical returns in a node's inbox: the newest per agency and period (by the
    signed creation time), retracted and expired ones left out (``node._stats_store``)."""
    return latest_returns(inbox)


@dataclass
class Row:
    """One cell of the aggregate: a count, or a lower bound when a contribution is suppressed."""

    key: tuple[str, ...]
    total: int = 0
    suppressed: bool = False
    agencies: set[str] = field(default_factory=set)
    suppressed_by: set[str] = field(default_factory=set)

    def shown(self) -> str:
        return f">= {self.total} (suppressed)" if self.suppressed else str(self.total)

    def to_dict(self, by: Sequence[str]) -> dict[str, Any]:
        return {
            **dict(zip(by, self.key, strict=True)),
            "total": None if self.suppressed else self.total,
            "lower_bound": self.total if self.suppressed else None,
            "suppressed": self.suppressed,
            "agencies": sorted(self.agencies),
            "suppressed_by": sorted(self.suppressed_by),
        }


@dataclass
class FeeRow:
    """Fees per person at one breakdown: per agency, and min and max across agencies."""

    key: tuple[str, ...]
    statistic: str
    currency: str
    by_agency: dict[str, Decimal] = field(default_factory=dict)

    def to_dict(self, by: Sequence[str]) -> dict[str, Any]:
        values = self.by_agency.values()
        return {
            **dict(zip(by, self.key, strict=True)),
            "statistic": self.statistic,
            "currency": self.currency,
            "by_agency": {a: str(v) for a, v in sorted(self.by_agency.items())},
            "min_across_agencies": str(min(values)),
            "max_across_agencies": str(max(values)),
        }


@dataclass
class Aggregate:
    """The federation's figures for one period at one breakdown."""

    period: str
    by: tuple[str, ...]
    rows: list[Row]
    fees: list[FeeRow]
    agencies: list[str]

    def totals(self) -> dict[str, Row]:
        """Per indicator, the sum of the rows shown: never a return's own total (see the
        module); counts of different indicators are never added together."""
        out: dict[str, Row] = {}
        at = self.by.index(INDICATOR)
        for row in self.rows:
            indicator = row.key[at]
            total = out.setdefault(indicator, Row(key=_total_key(self.by, indicator)))
            total.total += row.total
            total.suppressed |= row.suppressed
            total.agencies |= row.agencies
            total.suppressed_by |= row.suppressed_by
        return out

    def total_rows(self) -> list[Row]:
        """The per-indicator totals worth printing: none when the rows are already per
        indicator alone."""
        return [] if self.by == (INDICATOR,) else list(self.totals().values())

    def value(self, **coordinates: str) -> Row:
        """The row at these coordinates (every breakdown named)."""
        key = tuple(coordinates[name] for name in self.by)
        for row in self.rows:
            if row.key == key:
                return row
        raise KeyError(key)


def _total_key(by: Sequence[str], indicator: str) -> tuple[str, ...]:
    return tuple(indicator if n == INDICATOR else "TOTAL" for n in by)


def _dims(cell: Any) -> dict[str, str]:
    """A cell's set dimensions; a nationality band is a value of ``nationality`` (a country
    code or stateless, unknown, other: one table, so no nationality falls out of a total)."""
    dims = dict(cell.dimensions.key())
    if "nationality_band" in dims:
        dims["nationality"] = dims.pop("nationality_band")
    return dims


def _table(cells: Sequence[Any], wanted: frozenset[str]) -> list[Any]:
    """The coarsest table of one indicator's cells that has every wanted dimension."""
    tables: dict[frozenset[str], list[Any]] = defaultdict(list)
    for cell in cells:
        tables[frozenset(_dims(cell))].append(cell)
    fits = [names for names in tables if wanted <= names]
    if not fits:
        return []
    best = min(fits, key=lambda names: (len(names), sorted(names)))
    return tables[best]


def aggregate(returns: Iterable[StatisticalReturn], period: str, by: Sequence[str]) -> Aggregate:
    """Sum the returns of ``period`` at the breakdown ``by`` (see the module for the rules)."""
    by = tuple(by)
    if "nationality_band" in by:
        raise InputError(
            "--by nationality covers the nationality bands too; leave out nationality_band"
        )
    if INDICATOR not in by:
        raise InputError(
            f"--by {','.join(by)}: add indicator (counts of different indicators are never "
            "added together)"
        )
    wanted = frozenset(n for n in by if n != INDICATOR)
    rows: dict[tuple[str, ...], Row] = {}
    fees: dict[tuple[tuple[str, ...], str, str], FeeRow] = {}
    agencies: set[str] = set()
    for ret in returns:
        if ret.period != period:
            continue
        agencies.add(ret.reporting_agency)
        per_indicator: dict[Indicator, list[Any]] = defaultdict(list)
        for cell in ret.cells:
            per_indicator[cell.indicator].append(cell)
        for indicator, cells in per_indicator.items():
            for cell in _table(cells, wanted):
                dims = _dims(cell)
                key = tuple(
                    indicator.value if n == INDICATOR else str(dims.get(n, NONE)) for n in by
                )
                if indicator is Indicator.FEE_PER_PERSON:
                    # Cell's validator: a fee cell always has both.
                    assert cell.amount is not None
                    assert cell.statistic is not None
                    fee_key = (key, cell.statistic.value, cell.amount.currency)
                    fee = fees.setdefault(fee_key, FeeRow(key, *fee_key[1:]))
                    fee.by_agency[ret.reporting_agency] = cell.amount.amount
                    continue
                row = rows.setdefault(key, Row(key))
                row.agencies.add(ret.reporting_agency)
                if cell.suppressed:
                    row.suppressed = True
                    row.suppressed_by.add(ret.reporting_agency)
                else:
                    row.total += cell.count or 0
    return Aggregate(
        period=period,
        by=by,
        rows=[rows[k] for k in sorted(rows)],
        fees=[fees[k] for k in sorted(fees)],
        agencies=sorted(agencies),
    )


def _json(agg: Aggregate) -> str:
    data = {
        "period": agg.period,
        "by": list(agg.by),
        "agencies": agg.agencies,
        "rows": [r.to_dict(agg.by) for r in agg.rows],
        "totals": [t.to_dict(agg.by) for t in agg.totals().values()],
        "fees": [f.to_dict(agg.by) for f in agg.fees],
    }
    return json.dumps(data, indent=2, ensure_ascii=False)


def _csv(agg: Aggregate) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    # A suppressed sum goes in lower_bound, never in total: a spreadsheet summing the total
    # column must not take a lower bound for a count.
    writer.writerow([*agg.by, "total", "lower_bound", "suppressed", "agencies"])
    for row in [*agg.rows, *agg.total_rows()]:
        writer.writerow(
            [
                *row.key,
                "" if row.suppressed else row.total,
                row.total if row.suppressed else "",
                "yes" if row.suppressed else "",
                " ".join(sorted(row.agencies)),
            ]
        )
    return out.getvalue()


def _table_text(agg: Aggregate) -> str:
    head = [*agg.by, "total", "agencies"]
    body = [[*r.key, r.shown(), " ".join(sorted(r.agencies))] for r in agg.rows]
    body += [[*t.key, t.shown(), " ".join(sorted(t.agencies))] for t in agg.total_rows()]
    for fee in agg.fees:
        values = fee.by_agency
        each = " ".join(f"{a}={v}" for a, v in sorted(values.items()))
        shown = f"{fee.statistic} {min(values.values())}..{max(values.values())} {fee.currency}"
        body.append([*fee.key, shown, each])
    widths = [max(len(str(r[i])) for r in [head, *body]) for i in range(len(head))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *body]
    ]
    header = f"period {agg.period}: {len(agg.agencies)} agencies ({', '.join(agg.agencies)})"
    note = "'>= N (suppressed)': a contribution was withheld at the source; N is a lower bound"
    return "\n".join([header, *(line.rstrip() for line in lines), note])


FORMATS: Final = {"table": _table_text, "csv": _csv, "json": _json}


def render(agg: Aggregate, fmt: str) -> str:
    """The aggregate as ``table``, ``csv`` or ``json``."""
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: choose table, csv or json")
    return FORMATS[fmt](agg)
