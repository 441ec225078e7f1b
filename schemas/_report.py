"""The Immigration Intelligence Report, IIR v1 (Smuggling of Migrants Protocol art. 10(1)).

Field groups follow the art. 10(1) categories (a)-(f) and the further fields the seed papers
name (docs/schema.md lists each with its source). Every assertion carries a certainty, known or
suspected. Persons are split off when sealing (:meth:`Report.partition`): the report body keeps
only a role stub per person, descriptive personal data goes to a separately sealed
"personal-data" section, and witnesses and victims go wholly to a "protected-persons" section.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from ._grading import Evaluation
from ._handling import Handling
from ._terms import (
    AgeBand,
    Certainty,
    ConcealmentMethod,
    CrimeAgainstMigrants,
    DeathCause,
    DocumentFraud,
    DocumentType,
    GroupStructure,
    IdentifierKind,
    LegalStatus,
    PaymentMethod,
    PersonRole,
    ProtectionStatus,
    Sex,
    TransportMode,
)
from ._types import AgencyId, CountryCode, EpochMillis, Slug
from ._vocab import Category, Kind, Priority, Route

__all__ = [
    "MAX_ITEMS",
    "PROTECTED_STATUSES",
    "STUB_FIELDS",
    "Attachment",
    "Concealment",
    "Contact",
    "Document",
    "FinancialFlow",
    "Identifier",
    "Incident",
    "Itinerary",
    "Legislation",
    "Money",
    "Narrative",
    "OrganisedGroup",
    "Person",
    "Point",
    "Report",
    "SciTech",
    "Transport",
    "Vessel",
]

MAX_ITEMS: Final[int] = 200
"""At most this many entries in any list of a report (persons, documents, ...)."""
MAX_TEXT: Final[int] = 4000
MAX_NARRATIVE: Final[int] = 20_000
STUB_FIELDS: Final = frozenset({"ref", "role", "legal_status", "certainty", "group_ref"})
"""What of a person stays in the report body; the rest is sealed as personal data."""
PROTECTED_STATUSES: Final[frozenset[ProtectionStatus]] = frozenset(
    {
        ProtectionStatus.MIGRANT,
        ProtectionStatus.ASYLUM_SEEKER,
        ProtectionStatus.REFUGEE,
        ProtectionStatus.UNACCOMPANIED_MINOR,
    }
)

Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT, strip_whitespace=True)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _imo_check(value: str) -> str:
    # IMO numbers: 7 digits, the last a check digit = sum(d_i * (7 - i)) mod 10 over the first six.
    digits = [int(c) for c in value]
    if sum(d * w for d, w in zip(digits[:6], range(7, 1, -1), strict=True)) % 10 != digits[6]:
        raise ValueError(f"IMO {value} fails its check digit; check the number on the hull")
    return value


class Point(_Model):
    """An embarkation, transit or destination point."""

    country: CountryCode
    place: Short | None = None
    unlocode: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}[A-Z2-9]{3}$")] | None = None
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


class Itinerary(_Model):
    """Protocol art. 10(1)(a): embarkation and destination points, and the route between."""

    embarkation: list[Point] = Field(default_factory=list, max_length=16)
    transit: list[Point] = Field(default_factory=list, max_length=64, description="In order.")
    destination: list[Point] = Field(default_factory=list, max_length=16)


class Vessel(_Model):
    name: Short | None = None
    imo: Annotated[str, StringConstraints(pattern=r"^[0-9]{7}$")] | None = None
    mmsi: Annotated[str, StringConstraints(pattern=r"^[0-9]{9}$")] | None = None
    flag: CountryCode | None = None

    @field_validator("imo")
    @classmethod
    def _imo(cls, value: str | None) -> str | None:
        return None if value is None else _imo_check(value)


class Transport(_Model):
    """Carriers and means of transport (art. 10(1)(a)), and sea smuggling (Protocol art. 7)."""

    mode: TransportMode
    vessel: Vessel | None = None
    flight: (
        Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2}[A-Z]?[0-9]{1,4}[A-Z]?$")] | None
    ) = None
    vehicle_plate: Short | None = None
    vehicle_country: CountryCode | None = None
    carrier: Short | None = Field(default=None, description="Operator or company, if any.")
    capacity: Annotated[int, Field(ge=0, le=100_000)] | None = None
    description: Text | None = None
    certainty: Certainty = Certainty.SUSPECTED


class OrganisedGroup(_Model):
    """Art. 10(1)(b): identity and methods of organised criminal groups."""

    ref: Slug
    names: list[Short] = Field(default_factory=list, max_length=20)
    structure: GroupStructure = GroupStructure.UNKNOWN
    estimated_size: Annotated[int, Field(ge=1, le=100_000)] | None = None
    member_refs: list[Slug] = Field(default_factory=list, max_length=MAX_ITEMS)
    methods: list[Text] = Field(default_factory=list, max_length=50)
    convention_group: bool | None = Field(
        default=None,
        description="Meets the Convention art. 2(a) definition: three or more persons, acting "
        "in concert for some time, for a serious crime, for a material benefit.",
    )
    transnational: bool | None = Field(default=None, description="Convention art. 3(2) tests.")
    certainty: Certainty = Certainty.SUSPECTED


class Document(_Model):
    """Art. 10(1)(c)-(d): travel and identity documents, their fraud and how to detect it."""

    type: DocumentType
    issuing_state: CountryCode
    fraud: DocumentFraud
    serial: Short | None = None
    serial_range: tuple[Short, Short] | None = Field(
        default=None, description="First and last serial of stolen blanks."
    )
    security_features: list[Short] = Field(default_factory=list, max_length=50)
    detection_indicators: list[Text] = Field(default_factory=list, max_length=50)
    holder_ref: Slug | None = None
    certainty: Certainty = Certainty.SUSPECTED


class Concealment(_Model):
    """Art. 10(1)(d): means and methods of concealment, and ways of detecting them."""

    method: ConcealmentMethod
    description: Text | None = None
    indicators: list[Text] = Field(default_factory=list, max_length=50)
    certainty: Certainty = Certainty.SUSPECTED


class Identifier(_Model):
    """Digital and financial identifiers (001 p.29; 002 p.17, p.51)."""

    kind: IdentifierKind
    value: Short
    person_ref: Slug | None = None
    certainty: Certainty = Certainty.SUSPECTED


class Person(_Model):
    """A person by role; everything but the stub fields is personal data."""

    ref: Slug = Field(description="Local reference within the report, e.g. 'p1'.")
    role: PersonRole
    legal_status: LegalStatus = LegalStatus.UNKNOWN
    certainty: Certainty = Certainty.SUSPECTED
    group_ref: Slug | None = None
    names: list[Short] = Field(default_factory=list, max_length=10)
    aliases: list[Short] = Field(default_factory=list, max_length=20)
    date_of_birth: date | None = None
    age_band: AgeBand | None = None
    sex: Sex | None = None
    nationality: CountryCode | None = None
    country_of_origin: CountryCode | None = None
    protection_status: ProtectionStatus = ProtectionStatus.NONE
    travelling_alone: bool | None = None
    notes: Text | None = None


class Money(_Model):
    amount: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = Field(
        description="ISO 4217, e.g. EUR, USD, LYD."
    )


class FinancialFlow(_Model):
    """Fees, payments and bribes (000 p.13; 002 p.31)."""

    kind: Literal["fee", "payment", "bribe", "laundering"]
    amount: Money | None = None
    per_person: bool = False
    method: PaymentMethod = PaymentMethod.UNKNOWN
    stage: Short | None = Field(default=None, description="Where in the journey, e.g. 'border'.")
    place: Point | None = None
    description: Text | None = None
    certainty: Certainty = Certainty.SUSPECTED


class Incident(_Model):
    """Deaths and crimes against migrants (000 p.14-15; 002 p.30)."""

    occurred_on: date | None = None
    place: Point | None = None
    deaths: Annotated[int, Field(ge=0, le=100_000)] = 0
    missing: Annotated[int, Field(ge=0, le=100_000)] = 0
    death_causes: list[DeathCause] = Field(default_factory=list, max_length=10)
    crimes: list[CrimeAgainstMigrants] = Field(default_factory=list, max_length=10)
    description: Text | None = None
    certainty: Certainty = Certainty.SUSPECTED


class Legislation(_Model):
    """Art. 10(1)(e): legislative experiences and practices."""

    jurisdiction: CountryCode
    title: Short
    summary: Text
    reference: Short | None = None


class SciTech(_Model):
    """Art. 10(1)(f): scientific and technological information for law enforcement."""

    title: Short
    summary: Text


class Attachment(_Model):
    """Attachments travel out of band; the report carries their hash."""

    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    media_type: Annotated[str, StringConstraints(pattern=r"^[a-z]+/[a-z0-9.+-]+$")]
    size: Annotated[int, Field(ge=0)]
    name: Short | None = None


class Contact(_Model):
    """The originator's point of contact (004 p.12(e)): a unit, not necessarily a person."""

    unit: Short
    channel: Short = Field(description="e.g. 'palermo', 'SIENA', 'I-24/7', a secure phone line.")
    reference: Short | None = None


class Narrative(_Model):
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")] = (
        Field(description="BCP 47 tag, e.g. 'en', 'it', 'ar-LY'.")
    )
    text: Annotated[str, StringConstraints(min_length=1, max_length=MAX_NARRATIVE)]


class Report(_Model):
    """An Immigration Intelligence Report, version 1."""

    schema_: Literal["iir/1"] = Field(default="iir/1", alias="schema")
    originator: AgencyId
    kind: Kind = Kind.REPORT
    category: Category
    priority: Priority = Priority.ROUTINE
    route: Route
    title: Short
    observed: EpochMillis | None = Field(default=None, description="When it was observed.")
    handling: Handling
    narrative: Narrative
    contact: Contact
    evaluation: Evaluation | None = None
    itinerary: Itinerary | None = None
    transport: list[Transport] = Field(default_factory=list, max_length=MAX_ITEMS)
    groups: list[OrganisedGroup] = Field(default_factory=list, max_length=MAX_ITEMS)
    documents: list[Document] = Field(default_factory=list, max_length=MAX_ITEMS)
    concealment: list[Concealment] = Field(default_factory=list, max_length=MAX_ITEMS)
    persons: list[Person] = Field(default_factory=list, max_length=MAX_ITEMS)
    identifiers: list[Identifier] = Field(default_factory=list, max_length=MAX_ITEMS)
    finance: list[FinancialFlow] = Field(default_factory=list, max_length=MAX_ITEMS)
    incidents: list[Incident] = Field(default_factory=list, max_length=MAX_ITEMS)
    legislation: list[Legislation] = Field(default_factory=list, max_length=MAX_ITEMS)
    scitech: list[SciTech] = Field(default_factory=list, max_length=MAX_ITEMS)
    attachments: list[Attachment] = Field(default_factory=list, max_length=MAX_ITEMS)
    refs: list[Annotated[str, StringConstraints(pattern=r"^[ -~]{1,128}$")]] = Field(
        default_factory=list, max_length=32, description="Related report or case ids."
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _references(self) -> Self:
        refs = [p.ref for p in self.persons]
        if len(refs) != len(set(refs)):
            raise ValueError("person refs must be unique within a report")
        known, groups = set(refs), {g.ref for g in self.groups}
        if len(groups) != len(self.groups):
            raise ValueError("group refs must be unique within a report")
        for where, ref in self._person_refs():
            if ref not in known:
                raise ValueError(f"{where} names person {ref!r}, who is not in persons")
        for p in self.persons:
            if p.group_ref is not None and p.group_ref not in groups:
                raise ValueError(f"persons {p.ref}: group_ref {p.group_ref!r} is not in groups")
        return self

    def _person_refs(self) -> list[tuple[str, str]]:
        out = [(f"groups {g.ref}", r) for g in self.groups for r in g.member_refs]
        out += [("documents", d.holder_ref) for d in self.documents if d.holder_ref]
        out += [("identifiers", i.person_ref) for i in self.identifiers if i.person_ref]
        return out

    def to_wire(self) -> dict[str, Any]:
        """Plain JSON-compatible data (the sealed body is its msgpack encoding)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @classmethod
    def from_wire(cls, data: Any) -> Report:
        return cls.model_validate(data)
