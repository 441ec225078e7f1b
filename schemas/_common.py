"""Building blocks shared by the report's field groups: limits, text types, places and money."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Final, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ._terms import Certainty
from ._types import CountryCode

__all__ = [
    "MAX_ITEMS",
    "MAX_NARRATIVE",
    "MAX_TEXT",
    "Count",
    "Model",
    "Money",
    "Point",
    "Short",
    "Text",
    "UnLocode",
]

MAX_ITEMS: Final[int] = 200
"""At most this many entries in any list of a report (persons, documents, ...)."""
MAX_TEXT: Final[int] = 4000
MAX_NARRATIVE: Final[int] = 20_000

Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT, strip_whitespace=True)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
UnLocode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}[A-Z2-9]{3}$")]
"""A UN/LOCODE without its space, e.g. ``LYZUA`` (Zuwara), ``ITLMP`` (Lampedusa)."""
Count = Annotated[int, Field(ge=0, le=1_000_000)]
"""A number of persons or items: a non-negative integer."""


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Point(Model):
    """An embarkation, transit or destination point."""

    country: CountryCode
    place: Short | None = None
    unlocode: UnLocode | None = None
    iata: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    icao: Annotated[str, StringConstraints(pattern=r"^[A-Z]{4}$")] | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    certainty: Certainty = Certainty.KNOWN

    @model_validator(mode="after")
    def _both_coordinates(self) -> Self:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        return self


class Money(Model):
    amount: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = Field(
        description="ISO 4217, e.g. EUR, USD, LYD."
    )
