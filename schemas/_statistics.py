"""A typed statistical return (UNTOC art. 28; issue 16): aggregate figures, never persons.

A return is an ``iir/1.1`` report of ``kind: statistics`` whose ``statistics`` block holds one
period's figures for one reporting agency: a table of cells, each an indicator, the dimensions it
is broken down by (absent dimension: all values), and a count (or, for fees, an amount with its
statistic). The shape follows regional risk-analysis returns: a figure per indicator, border
type and route and period, counting detections rather than persons.

A cell whose count was withheld by disclosure control is ``suppressed`` and carries no count;
which cells are suppressed, and with which threshold, is decided at the source before sealing
(docs/statistics.md).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Final, Self

from pydantic import AfterValidator, BaseModel, Field, model_validator

from ._common import Count, Model, Money, UnLocode
from ._terms import AgeBand, DocumentFraud, Sex, TransportMode
from ._terms11 import BorderType
from ._types import AgencyId, CountryCode
from ._vocab import Route

__all__ = [
    "MAX_CELLS",
    "Cell",
    "Dimensions",
    "Indicator",
    "NationalityBand",
    "Period",
    "Statistic",
    "StatisticalReturn",
    "statistics_report_extras",
]

MAX_CELLS: Final[int] = 5000
"""At most this many cells in one return (a month of a large agency's breakdowns)."""


class Indicator(StrEnum):
    """What a cell counts (regional risk-analysis returns; 000 p.23, 002 p.30)."""

    IRREGULAR_CROSSING_BETWEEN_BCPS = "irregular-crossing-between-bcps"
    """Detections of irregular border crossing between border crossing points."""
    IRREGULAR_CROSSING_AT_BCPS = "irregular-crossing-at-bcps"
    """Detections of clandestine entry at border crossing points (hidden in vehicles, ...)."""
    FACILITATORS_DETECTED = "facilitators-detected"
    """Facilitators (smugglers) detected."""
    REFUSED_ENTRY = "refused-entry"
    """Persons refused entry at the external border."""
    FRAUDULENT_DOCUMENTS = "fraudulent-documents-detected"
    """Fraudulent documents detected (broken down by fraud type)."""
    DEATHS = "deaths"
    """Deaths of migrants in the course of smuggling (000 p.14-15)."""
    MISSING = "missing"
    """Migrants missing in the course of smuggling."""
    FEE_PER_PERSON = "fee-per-person"
    """Fees observed per person: an amount with a currency and a statistic, not a count."""


class Statistic(StrEnum):
    """How a fee amount summarises the fees observed in the period."""

    MEDIAN = "median"
    MIN = "min"
    MAX = "max"


class NationalityBand(StrEnum):
    """A nationality dimension value that is not one country."""

    STATELESS = "stateless"
    UNKNOWN = "unknown"
    OTHER = "other"
    """All nationalities not broken down in the return."""


_PERIOD = re.compile(r"^(?P<year>[0-9]{4})(?:-(?P<month>0[1-9]|1[0-2])|-Q(?P<quarter>[1-4]))?$")


def check_period(value: str) -> str:
    """``value`` if it is a period (a month, quarter or year), else ValueError saying how."""
    if not _PERIOD.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a period: write a month (2026-07), a quarter (2026-Q3) or a "
            "year (2026)"
        )
    return value


Period = Annotated[str, AfterValidator(check_period)]
"""An ISO 8601 month (``2026-07``) or year (``2026``), or a quarter (``2026-Q3``)."""


class Dimensions(Model):
    """What a cell is broken down by; an absent dimension means "all values"."""

    border_type: BorderType | None = None
    route: Route | None = None
    nationality: CountryCode | None = None
    nationality_band: NationalityBand | None = None
    sex: Sex | None = None
    age_band: AgeBand | None = None
    transport_mode: TransportMode | None = None
    fraud: DocumentFraud | None = Field(
        default=None, description="Fraud type; only for fraudulent-documents-detected."
    )
    place_country: CountryCode | None = Field(default=None, description="Where detected.")
    place_unlocode: UnLocode | None = Field(default=None, description="Where detected.")

    @model_validator(mode="after")
    def _one_nationality(self) -> Self:
        if self.nationality is not None and self.nationality_band is not None:
            raise ValueError("give nationality or nationality_band, not both")
        return self

    def key(self) -> tuple[tuple[str, str], ...]:
        """The dimensions that are set, as sorted (name, value) pairs: a cell's coordinates."""
        data = self.model_dump(mode="json", exclude_none=True)
        return tuple(sorted(data.items()))


class Cell(Model):
    """One figure of the table."""

    indicator: Indicator
    dimensions: Dimensions = Field(default_factory=Dimensions)
    count: Count | None = None
    amount: Money | None = None
    statistic: Statistic | None = None
    suppressed: bool = Field(
        default=False, description="Withheld by disclosure control: no count is given."
    )

    @model_validator(mode="after")
    def _value(self) -> Self:
        fee = self.indicator is Indicator.FEE_PER_PERSON
        if (
            self.dimensions.fraud is not None
            and self.indicator is not Indicator.FRAUDULENT_DOCUMENTS
        ):
            raise ValueError("dimension fraud is only for fraudulent-documents-detected")
        if fee:
            if self.count is not None or self.suppressed:
                raise ValueError("fee-per-person takes an amount and a statistic, not a count")
            if self.amount is None or self.statistic is None:
                raise ValueError(
                    "fee-per-person needs an amount and a statistic (median, min, max)"
                )
            return self
        if self.amount is not None or self.statistic is not None:
            raise ValueError(f"{self.indicator.value} is a count; amounts are for fee-per-person")
        if self.suppressed and self.count is not None:
            raise ValueError("a suppressed cell carries no count")
        if not self.suppressed and self.count is None:
            raise ValueError("give a count (0 is a count), or mark the cell suppressed")
        return self


class StatisticalReturn(Model):
    """One agency's figures for one period."""

    reporting_agency: AgencyId
    period: Period
    cells: list[Cell] = Field(min_length=1, max_length=MAX_CELLS)
    suppression_k: Annotated[int, Field(ge=2, le=1000)] | None = Field(
        default=None,
        description="Cells below this count were suppressed at the source (with secondary "
        "suppression); absent: no disclosure control was applied.",
    )

    @model_validator(mode="after")
    def _unique_cells(self) -> Self:
        seen: set[tuple[object, ...]] = set()
        for index, cell in enumerate(self.cells):
            key = (cell.indicator, cell.statistic, cell.dimensions.key())
            if key in seen:
                raise ValueError(
                    f"cells.{index}: a second cell for the same indicator and dimensions"
                )
            seen.add(key)
        return self


STATISTICS_REPORT_FIELDS: Final[frozenset[str]] = frozenset(
    {
        *("schema_", "originator", "kind", "category", "priority", "route", "title", "observed"),
        *("handling", "narrative", "contact", "evaluation", "sources", "refs", "statistics"),
    }
)
"""All a report of kind statistics may carry: its header fields, the words around the figures
and the figures. Everything else (documents, transport, groups, events, attachments, ...) can
describe or identify a person, and an aggregate-only consumer must never receive that (000
p.23); an allow-list, so a section added later is refused until someone decides otherwise."""


def statistics_report_extras(report: BaseModel) -> list[str]:
    """The fields of ``report`` (of kind statistics) it may not carry and does: filled lists or
    objects outside STATISTICS_REPORT_FIELDS, in declaration order, for the error to name."""
    return [
        name
        for name in type(report).model_fields
        if name not in STATISTICS_REPORT_FIELDS and getattr(report, name) not in (None, [], {})
    ]
