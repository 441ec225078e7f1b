"""The Immigration Intelligence Report, IIR v1 (Smuggling of Migrants Protocol art. 10(1)).

Field groups follow the art. 10(1) categories (a)-(f) and the further fields the seed papers
name (docs/schema.md lists each with its source). Every assertion carries a certainty, known or
suspected. Persons are split off when sealing (:meth:`Report.partition`): the report body keeps
only a role stub per person, descriptive personal data goes to a separately sealed
"personal-data" section, and witnesses and victims go wholly to a "protected-persons" section.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ._common import MAX_ITEMS, MAX_NARRATIVE, Model, Money, Point, Short, Text
from ._facts import (
    DocumentLoss,
    Event,
    Penalty,
    PersonCount,
    PersonRelation,
    Proceeding,
    SerialRange,
)
from ._grading import Evaluation
from ._handling import Handling, versioned_handling
from ._links import PERSON_ITEMS, PERSON_LINKS, named_persons
from ._statistics import StatisticalReturn, statistics_report_extras
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
from ._terms11 import DetectionMethod, Offence, PaymentCondition, SourceType
from ._types import AgencyId, CountryCode, EpochMillis, Slug
from ._versions import SCHEMA_V1, SchemaVersion, check_version, strip_empty_v11
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

STUB_FIELDS: Final = frozenset({"ref", "role", "roles", "legal_status", "certainty"})
"""What of a person stays in the report body; the rest (links included) is sealed as personal
data."""
PROTECTED_STATUSES: Final[frozenset[ProtectionStatus]] = frozenset(
    {
        ProtectionStatus.MIGRANT,
        ProtectionStatus.ASYLUM_SEEKER,
        ProtectionStatus.REFUGEE,
        ProtectionStatus.UNACCOMPANIED_MINOR,
    }
)


def _imo_check(value: str) -> str:
    # IMO numbers: 7 digits, the last a check digit = sum(d_i * (7 - i)) mod 10 over the first six.
    digits = [int(c) for c in value]
    if sum(d * w for d, w in zip(digits[:6], range(7, 1, -1), strict=True)) % 10 != digits[6]:
        raise ValueError(f"IMO {value} fails its check digit; check the number on the hull")
    return value


class Itinerary(Model):
    """Protocol art. 10(1)(a): embarkation and destination points, and the route between."""

    embarkation: list[Point] = Field(default_factory=list, max_length=16)
    transit: list[Point] = Field(default_factory=list, max_length=64, description="In order.")
    destination: list[Point] = Field(default_factory=list, max_length=16)


class Vessel(Model):
    name: Short | None = None
    imo: Annotated[str, StringConstraints(pattern=r"^[0-9]{7}$")] | None = None
    mmsi: Annotated[str, StringConstraints(pattern=r"^[0-9]{9}$")] | None = None
    flag: CountryCode | None = None

    @field_validator("imo")
    @classmethod
    def _imo(cls, value: str | None) -> str | None:
        return None if value is None else _imo_check(value)


class Transport(Model):
    """Carriers and means of transport (art. 10(1)(a)), and sea smuggling (Protocol art. 7)."""

    mode: TransportMode
    vessel: Vessel | None = None
    flight: (
        Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2}[A-Z]?[0-9]{1,4}[A-Z]?$")] | None
    ) = None
    vehicle_plate: Short | None = None
    vehicle_country: CountryCode | None = None
    carrier: Short | None = Field(default=None, description="Operator or company, if any.")
    capacity: Annotated[int, Field(ge=0, le=100_000)] | None = Field(
        default=None, description="What it can carry; persons aboard are counted in events."
    )
    description: Text | None = None
    certainty: Certainty = Certainty.SUSPECTED
    ref: Slug | None = Field(default=None, description="iir/1.1: local reference, e.g. 't1'.")
    passenger_refs: list[Slug] = Field(default_factory=list, max_length=MAX_ITEMS)
    driver_refs: list[Slug] = Field(default_factory=list, max_length=MAX_ITEMS)
    pilot_refs: list[Slug] = Field(default_factory=list, max_length=MAX_ITEMS)
    escort_refs: list[Slug] = Field(default_factory=list, max_length=MAX_ITEMS)
    carried_on_ref: Slug | None = Field(
        default=None, description="The transport carrying this one (a lorry on a ferry)."
    )


class OrganisedGroup(Model):
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
    countries: list[CountryCode] = Field(
        default_factory=list, max_length=64, description="iir/1.1: countries of operation."
    )


class Document(Model):
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
    ref: Slug | None = Field(default=None, description="iir/1.1: local reference, e.g. 'd1'.")
    quantity: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    serial_ranges: list[SerialRange] = Field(default_factory=list, max_length=50)
    issuing_authority: Short | None = None
    issuer_ref: Slug | None = Field(default=None, description="The person who issued it.")
    forger_ref: Slug | None = Field(default=None, description="The person who forged it.")
    loss: DocumentLoss | None = Field(default=None, description="Theft or loss (blanks).")


class Concealment(Model):
    """Art. 10(1)(d): means and methods of concealment, and ways of detecting them."""

    method: ConcealmentMethod
    description: Text | None = None
    indicators: list[Text] = Field(default_factory=list, max_length=50)
    certainty: Certainty = Certainty.SUSPECTED
    detection_methods: list[DetectionMethod] = Field(default_factory=list, max_length=20)
    transport_ref: Slug | None = None


class Identifier(Model):
    """Digital and financial identifiers (001 p.29; 002 p.17, p.51)."""

    kind: IdentifierKind
    value: Short
    person_ref: Slug | None = None
    certainty: Certainty = Certainty.SUSPECTED


class Person(Model):
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
    roles: list[PersonRole] = Field(
        default_factory=list,
        max_length=len(PersonRole),
        description="iir/1.1: further roles held at the same time (a migrant who pilots the "
        "boat); a protected role (witness, victim) here protects the person as 'role' does.",
    )
    proceedings: list[Proceeding] = Field(default_factory=list, max_length=50)

    @field_validator("roles")
    @classmethod
    def _unique_roles(cls, value: list[PersonRole]) -> list[PersonRole]:
        if len(value) != len(set(value)):
            raise ValueError("each role once")
        return value

    @property
    def all_roles(self) -> tuple[PersonRole, ...]:
        return (self.role, *self.roles)

    @property
    def protected(self) -> bool:
        """A witness or victim in any of their roles: withheld unless released by name."""
        return any(r.protected for r in self.all_roles)


class FinancialFlow(Model):
    """Fees, payments and bribes (000 p.13; 002 p.31)."""

    kind: Literal["fee", "payment", "bribe", "laundering"]
    amount: Money | None = None
    per_person: bool = False
    method: PaymentMethod = PaymentMethod.UNKNOWN
    stage: Short | None = Field(default=None, description="Where in the journey, e.g. 'border'.")
    place: Point | None = None
    description: Text | None = None
    certainty: Certainty = Certainty.SUSPECTED
    ref: Slug | None = Field(default=None, description="iir/1.1: local reference, e.g. 'f1'.")
    payer_ref: Slug | None = None
    payee_ref: Slug | None = None
    intermediary_refs: list[Slug] = Field(default_factory=list, max_length=20)
    from_country: CountryCode | None = Field(default=None, description="Where the money left.")
    to_country: CountryCode | None = Field(default=None, description="Where it was paid out.")
    previous_ref: Slug | None = Field(
        default=None, description="The flow this one continues (a hawala chain's earlier leg)."
    )
    in_kind: Short | None = Field(default=None, description="What was given instead of money.")
    condition: PaymentCondition | None = Field(default=None, description="When it is paid.")


class Incident(Model):
    """Deaths and crimes against migrants (000 p.14-15; 002 p.30)."""

    occurred_on: date | None = None
    place: Point | None = None
    deaths: Annotated[int, Field(ge=0, le=100_000)] = 0
    missing: Annotated[int, Field(ge=0, le=100_000)] = 0
    death_causes: list[DeathCause] = Field(default_factory=list, max_length=10)
    crimes: list[CrimeAgainstMigrants] = Field(default_factory=list, max_length=10)
    description: Text | None = None
    certainty: Certainty = Certainty.SUSPECTED
    counts: list[PersonCount] = Field(default_factory=list, max_length=64)
    transport_ref: Slug | None = None


class Legislation(Model):
    """Art. 10(1)(e): legislative experiences and practices."""

    jurisdiction: CountryCode
    title: Short
    summary: Text
    reference: Short | None = None
    offences_defined: list[Offence] = Field(default_factory=list, max_length=20)
    material_benefit_element: bool | None = Field(
        default=None,
        description="The offence requires a 'financial or other material benefit' (Protocol "
        "art. 6(1)).",
    )
    humanitarian_exemption: bool | None = Field(
        default=None, description="Assistance for humanitarian reasons is exempt."
    )
    penalties: list[Penalty] = Field(default_factory=list, max_length=20)
    adopted: date | None = None
    in_force: date | None = None


class SciTech(Model):
    """Art. 10(1)(f): scientific and technological information for law enforcement."""

    title: Short
    summary: Text


class Attachment(Model):
    """Attachments travel out of band; the report carries their hash."""

    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    media_type: Annotated[str, StringConstraints(pattern=r"^[a-z]+/[a-z0-9.+-]+$")]
    size: Annotated[int, Field(ge=0)]
    name: Short | None = None


class Contact(Model):
    """The originator's point of contact (004 p.12(e)): a unit, not necessarily a person."""

    unit: Short
    channel: Short = Field(description="e.g. 'palermo', 'SIENA', 'I-24/7', a secure phone line.")
    reference: Short | None = None


class Narrative(Model):
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")] = (
        Field(description="BCP 47 tag, e.g. 'en', 'it', 'ar-LY'.")
    )
    text: Annotated[str, StringConstraints(min_length=1, max_length=MAX_NARRATIVE)]


def _unique_refs(what: str, refs: list[str]) -> set[str]:
    if len(refs) != len(set(refs)):
        raise ValueError(f"{what} refs must be unique within a report")
    return set(refs)


class Report(Model):
    """An Immigration Intelligence Report, ``iir/1`` or ``iir/1.1`` (additive)."""

    schema_: SchemaVersion = Field(default=SCHEMA_V1, alias="schema")
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
    events: list[Event] = Field(default_factory=list, max_length=MAX_ITEMS)
    relations: list[PersonRelation] = Field(default_factory=list, max_length=MAX_ITEMS)
    statistics: StatisticalReturn | None = Field(
        default=None, description="iir/1.1, kind statistics: the aggregate figures (no persons)."
    )
    sources: list[SourceType] = Field(
        default_factory=list, max_length=len(SourceType), description="Source types."
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("handling")
    @classmethod
    def _versioned_handling(cls, value: Handling, info: ValidationInfo) -> Handling:
        # The handling block's defaults and rules are those of this report's schema version
        # ("schema" is declared, so validated, first; absent from info.data if it was invalid).
        schema = info.data.get("schema_")
        return value if schema is None else versioned_handling(schema, value)

    @model_validator(mode="after")
    def _versioned(self) -> Self:
        check_version(self, self.schema_)
        return self

    @model_validator(mode="after")
    def _statistics(self) -> Self:
        # Aggregate-only consumers must never receive personal data (000 p.23): a return holds
        # figures, and nothing that names or describes a person.
        extra = statistics_report_extras(self) if self.kind is Kind.STATISTICS else []
        if extra:
            raise ValueError(f"a statistics report holds figures only: remove {', '.join(extra)}")
        if self.statistics is None:
            if self.kind is Kind.STATISTICS and self.schema_ != SCHEMA_V1:
                raise ValueError("an iir/1.1 report of kind statistics needs a statistics block")
            return self
        if self.kind is not Kind.STATISTICS:
            raise ValueError("a statistics block belongs to a report of kind statistics")
        if self.statistics.reporting_agency != self.originator:
            raise ValueError("statistics.reporting_agency must be the report's originator")
        return self

    @model_validator(mode="after")
    def _references(self) -> Self:
        persons = _unique_refs("person", [p.ref for p in self.persons])
        groups = _unique_refs("group", [g.ref for g in self.groups])
        transport = _unique_refs("transport", [t.ref for t in self.transport if t.ref])
        finance = _unique_refs("finance", [f.ref for f in self.finance if f.ref])
        _unique_refs("document", [d.ref for d in self.documents if d.ref])
        _unique_refs("event", [e.ref for e in self.events if e.ref])
        data = self.model_dump(include=set(PERSON_LINKS) | set(PERSON_ITEMS))
        for name, fields in (PERSON_LINKS | PERSON_ITEMS).items():
            for index, item in enumerate(data.get(name, [])):
                for ref in named_persons(item, fields):
                    if ref not in persons:
                        raise ValueError(
                            f"{name}.{index} names person {ref!r}, who is not in persons"
                        )
        for p in self.persons:
            if p.group_ref is not None and p.group_ref not in groups:
                raise ValueError(f"persons {p.ref}: group_ref {p.group_ref!r} is not in groups")
        named: list[tuple[str, str | None]] = [
            (f"events.{i}.transport_ref", e.transport_ref) for i, e in enumerate(self.events)
        ]
        named += [
            (f"concealment.{i}.transport_ref", c.transport_ref)
            for i, c in enumerate(self.concealment)
        ]
        named += [
            (f"incidents.{i}.transport_ref", x.transport_ref) for i, x in enumerate(self.incidents)
        ]
        named += [
            (f"transport.{i}.carried_on_ref", t.carried_on_ref)
            for i, t in enumerate(self.transport)
        ]
        for i, t in enumerate(self.transport):
            if t.ref is not None and t.carried_on_ref == t.ref:
                raise ValueError(f"transport.{i}: a transport is not carried on itself")
        for where, target in named:
            if target is not None and target not in transport:
                raise ValueError(f"{where}: {target!r} is not a transport ref")
        for i, f in enumerate(self.finance):
            if f.previous_ref is not None and f.previous_ref not in finance - {f.ref}:
                raise ValueError(f"finance.{i}: previous_ref {f.previous_ref!r} is not in finance")
        return self

    def to_wire(self) -> dict[str, Any]:
        """Plain JSON-compatible data (the sealed body is its msgpack encoding).

        Fields IIR 1.1 added are left out while empty, so an ``iir/1`` report reads exactly as
        before to a partner that knows only ``iir/1``.
        """
        return strip_empty_v11(self.model_dump(mode="json", by_alias=True, exclude_none=True))

    @classmethod
    def from_wire(cls, data: Any) -> Report:
        return cls.model_validate(data)
