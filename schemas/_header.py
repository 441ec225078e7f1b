"""The envelope header: signed, cleartext to the broker, the only thing the broker reads.

The broker routes and enforces policy on this model alone (it never holds a content key), so
everything policy needs is here: handling, recipients, and which sealed sections carry personal
data of which nationalities (for the non-refoulement guard) or protected persons.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ._handling import Handling, versioned_handling
from ._types import AgencyId, CountryCode, EpochMillis, KeyId, Slug, UUIDv7
from ._versions import SCHEMA_V1, SchemaVersion
from ._vocab import Category, Kind, Priority, Route

__all__ = [
    "MAX_RECIPIENTS",
    "MAX_REFS",
    "MAX_SECTIONS",
    "EnvelopeHeader",
    "SectionInfo",
    "SectionKind",
]

MAX_RECIPIENTS: Final[int] = 256
MAX_REFS: Final[int] = 32
MAX_SECTIONS: Final[int] = 8
SCHEMA_IIR_V1: Final = SCHEMA_V1


class SectionKind(StrEnum):
    PERSONAL_DATA = "personal-data"
    """Personal data of persons (smugglers, facilitators, migrants)."""
    PROTECTED_PERSONS = "protected-persons"
    """Witnesses and victims: withheld unless released by name."""


class SectionInfo(BaseModel):
    """What the broker may know about a separately sealed part of the report."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Slug
    kind: SectionKind
    protected_nationalities: list[CountryCode] = Field(
        default_factory=list,
        max_length=64,
        description="Nationalities of smuggled migrants, refugees or asylum-seekers whose "
        "personal data the section holds (the non-refoulement guard uses this).",
    )

    @field_validator("protected_nationalities")
    @classmethod
    def _sorted(cls, value: list[str]) -> list[str]:
        return sorted(set(value))


RefId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[ -~]+$")]


class EnvelopeHeader(BaseModel):
    """The signed header of envelope v1."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: SchemaVersion = Field(default=SCHEMA_IIR_V1, alias="schema")
    """First, so that ``handling`` is validated under it (the wire form sorts keys anyway)."""
    id: UUIDv7
    originator: AgencyId
    kid: KeyId = Field(description="Id of the originator's signing key.")
    created: EpochMillis
    kind: Kind
    priority: Priority = Priority.ROUTINE
    route: Route
    category: Category
    handling: Handling
    recipients: list[AgencyId] = Field(min_length=1, max_length=MAX_RECIPIENTS)
    refs: list[RefId] = Field(default_factory=list, max_length=MAX_REFS)
    sections: list[SectionInfo] = Field(default_factory=list, max_length=MAX_SECTIONS)
    suppression_k: int | None = Field(
        default=None,
        ge=2,
        le=1000,
        description="kind statistics: the return was suppressed at the source with this k "
        "(small cells and their complements withheld; decision 0024). Left out when absent.",
    )

    @field_validator("handling")
    @classmethod
    def _versioned_handling(cls, value: Handling, info: ValidationInfo) -> Handling:
        # Defaults are per schema version: an iir/1 header without "action" means A1, an
        # iir/1.1 header without it means none (decision 0019).
        schema = info.data.get("schema_")
        return value if schema is None else versioned_handling(schema, value)

    @field_validator("recipients", "refs")
    @classmethod
    def _sorted_unique(cls, value: list[str]) -> list[str]:
        return sorted(set(value))

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.originator in self.recipients:
            raise ValueError("the originator cannot be one of its own recipients")

        if self.suppression_k is not None and self.kind is not Kind.STATISTICS:
            raise ValueError("suppression_k belongs to a header of kind statistics")
        ids = [s.id for s in self.sections]
        if len(ids) != len(set(ids)):
            raise ValueError("section ids must be unique")
        if list(self.sections) != sorted(self.sections, key=lambda s: s.id):
            object.__setattr__(self, "sections", sorted(self.sections, key=lambda s: s.id))
        return self

    @property
    def contains_personal_data(self) -> bool:
        return any(s.kind is SectionKind.PERSONAL_DATA for s in self.sections)

    def to_wire(self) -> dict[str, Any]:
        """The header as plain msgpack-able data (times as epoch ms, enums as strings).

        A field (at any depth) that holds its default value is left out, as DER leaves out
        DEFAULT components: one canonical form, and ≈ 130 fewer bytes in a typical envelope.
        Decoding fills the defaults back in (docs/decisions/0011).
        """
        data = self.model_dump(
            mode="json", by_alias=True, exclude_defaults=True, exclude={"handling"}
        )
        # The handling block is dumped as its own class, so a field is left out at *its*
        # version's default: an iir/1.1 block without an action code has nothing to write,
        # not a "null" measured against iir/1's A1. (The canonical encoding sorts keys.)
        data["handling"] = self.handling.model_dump(
            mode="json", by_alias=True, exclude_defaults=True
        )
        return data

    def subject_tokens(self) -> tuple[str, str, str, str]:
        """(originator, kind, route, category): the tail of plm.pub.* and plm.dlv.* subjects."""
        return (self.originator, self.kind.value, self.route.value, self.category.value)
