"""Field groups added by IIR 1.1: events and their times, counts of persons, border crossing
points, document theft or loss, criminal proceedings and penalties (docs/schema.md)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Final, Self

from pydantic import Field, model_validator

from ._common import MAX_ITEMS, Count, Model, Money, Point, Short, Text, UnLocode
from ._terms import AgeBand, Certainty, Sex
from ._terms11 import (
    Aggravation,
    BorderType,
    CountOf,
    DetectionMethod,
    EventKind,
    EventStatus,
    LossKind,
    Offence,
    PersonRelationKind,
    ProceedingStage,
)
from ._types import CountryCode, EpochMillis, Slug

__all__ = [
    "BorderCrossingPoint",
    "DocumentLoss",
    "Event",
    "Penalty",
    "PersonCount",
    "PersonRelation",
    "Proceeding",
    "SerialRange",
]

MAX_COUNTS: Final[int] = 64


class PersonCount(Model):
    """A number of persons involved, by what they were (aboard, rescued, dead, ...), and by sex,
    age band or nationality where known. Aggregate: it names nobody."""

    of: CountOf
    count: Count
    approximate: bool = Field(default=False, description="True for an estimate ('about 40').")
    sex: Sex | None = None
    age_band: AgeBand | None = None
    nationality: CountryCode | None = None


class BorderCrossingPoint(Model):
    """A border crossing point (or a stretch of border between them), by type and place."""

    type: BorderType
    country: CountryCode
    name: Short | None = None
    unlocode: UnLocode | None = None
    between_bcps: bool = Field(
        default=False, description="True for the green or blue border between crossing points."
    )


class Event(Model):
    """Something that happened or is expected to: a departure, a detection, a rescue ...

    The time is either ``at`` (a known instant) or a window (``earliest`` and/or ``latest``, e.g.
    an expected departure "tonight"); ``status`` says whether it was observed, reported,
    expected or planned, and ``certainty`` how sure the originator is.
    """

    ref: Slug | None = None
    kind: EventKind
    status: EventStatus = EventStatus.OBSERVED
    at: EpochMillis | None = None
    earliest: EpochMillis | None = None
    latest: EpochMillis | None = None
    place: Point | None = None
    border_crossing_point: BorderCrossingPoint | None = None
    transport_ref: Slug | None = Field(default=None, description="The transport item involved.")
    person_refs: list[Slug] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        description="Persons involved; each link travels in that person's sealed section.",
    )
    detection_methods: list[DetectionMethod] = Field(default_factory=list, max_length=20)
    counts: list[PersonCount] = Field(default_factory=list, max_length=MAX_COUNTS)
    description: Text | None = None
    certainty: Certainty = Certainty.SUSPECTED

    @model_validator(mode="after")
    def _time(self) -> Self:
        if self.at is not None and (self.earliest is not None or self.latest is not None):
            raise ValueError("give either at, or a window (earliest and/or latest), not both")
        if self.earliest and self.latest and self.latest < self.earliest:
            raise ValueError("latest must not be before earliest")
        return self


class PersonRelation(Model):
    """One person's relation to another. It names two persons, so it travels in the most
    protected of their sealed sections (a witness who identified a driver: protected-persons)."""

    kind: PersonRelationKind
    from_ref: Slug
    to_ref: Slug
    certainty: Certainty = Certainty.SUSPECTED

    @model_validator(mode="after")
    def _two(self) -> Self:
        if self.from_ref == self.to_ref:
            raise ValueError("a relation links two different persons")
        return self


class SerialRange(Model):
    """A run of document serial numbers, first to last (stolen blanks)."""

    first: Short
    last: Short


class DocumentLoss(Model):
    """The theft or loss of documents (blanks, typically): where, when, from whom, how many."""

    kind: LossKind
    occurred_on: date | None = None
    place: Point | None = None
    institution: Short | None = Field(
        default=None, description="Where they were taken from, e.g. a consulate or printer."
    )
    quantity: Count | None = None


class Proceeding(Model):
    """A charge or conviction of a person (000 p.22(b); Protocol art. 6)."""

    stage: ProceedingStage
    on: date | None = Field(default=None, description="Date of the charge or of the judgment.")
    jurisdiction: CountryCode
    court: Short | None = None
    offences: list[Offence] = Field(min_length=1, max_length=20)
    aggravations: list[Aggravation] = Field(default_factory=list, max_length=5)
    sentence: Short | None = None
    sentence_months: Annotated[int, Field(ge=0, le=1200)] | None = Field(
        default=None, description="Imprisonment imposed, in months."
    )
    reference: Short | None = Field(default=None, description="Case or docket number.")


class Penalty(Model):
    """The penalty a law sets for an offence (Protocol art. 6; Convention art. 11)."""

    offence: Offence
    aggravated: bool = Field(default=False, description="The art. 6(3) aggravated form.")
    imprisonment_min_months: Annotated[int, Field(ge=0, le=1200)] | None = None
    imprisonment_max_months: Annotated[int, Field(ge=0, le=1200)] | None = None
    fine_max: Money | None = None
    per_person: bool = Field(default=False, description="Set per person smuggled.")

    @model_validator(mode="after")
    def _range(self) -> Self:
        low, high = self.imprisonment_min_months, self.imprisonment_max_months
        if low is not None and high is not None and high < low:
            raise ValueError("imprisonment_max_months must not be below imprisonment_min_months")
        return self
