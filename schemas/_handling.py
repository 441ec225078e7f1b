"""The originator's handling block: who may receive a report and how it may be used.

It travels inside the signed envelope header, so every hop (broker, receiving node) enforces
exactly what the originator set; nobody downstream can loosen it without breaking the signature.
The meaning of each code and what the system does with it is in ``docs/handling-codes.md``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Final, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from ._types import ALL_MEMBERS, AgencyId, DenyTarget, EpochMillis, RelToEntry, Slug
from ._vocab import Classification, Tlp

__all__ = [
    "HANDLING_BY_SCHEMA",
    "ActionCode",
    "H3Restriction",
    "Handling",
    "HandlingV11",
    "NonRefoulementOverride",
    "versioned_handling",
]

MAX_REL_TO = 256
MAX_DENY_TO = 64
MAX_H3 = 16


class ActionCode(StrEnum):
    """Action codes as used in UK 3x5x2 practice."""

    A1 = "A1"
    """No direct action without the originator's permission."""
    A2 = "A2"
    """Covert use only: not as evidence, not to support an arrest."""
    A3 = "A3"
    """Overt action as the originator specifies (``action_text``)."""


class H3Restriction(BaseModel):
    """One "other restriction" (SIENA H3): a structured code plus free text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Slug = Field(description="Short machine code, e.g. 'no-contact-with-subject'.")
    text: Annotated[str, StringConstraints(min_length=1, max_length=1000)] = Field(
        description="The restriction in the originator's words."
    )


class NonRefoulementOverride(BaseModel):
    """The originator's deliberate, recorded decision to send personal data of protected
    migrants to agencies of those persons' country of nationality. Audited at every hop."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agencies: list[AgencyId] = Field(min_length=1, max_length=MAX_REL_TO)
    justification: Annotated[str, StringConstraints(min_length=20, max_length=2000)] = Field(
        description="Why the transfer does not expose the person to refoulement (>= 20 chars)."
    )

    @field_validator("agencies")
    @classmethod
    def _canonical(cls, value: list[str]) -> list[str]:
        return sorted(set(value))


class Handling(BaseModel):
    """Dissemination, releasability, use restrictions and action codes set by the originator.

    This class is the handling of an ``iir/1`` report or header, where an absent ``action`` means
    A1 and H0 is always in force. :class:`HandlingV11` is the ``iir/1.1`` handling, where an
    absent ``action`` means none. Defaults are per schema version because the signed header
    leaves default values out (decision 0011): an ``iir/1`` header without ``action`` must keep
    meaning A1 for ever (decision 0019).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: ClassVar[str] = "iir/1"

    tlp: Tlp = Field(description="FIRST TLP 2.0 dissemination label.")
    rel_to: list[RelToEntry] = Field(
        default_factory=list,
        max_length=MAX_REL_TO,
        description="Releasable to: agency ids and group:<id>, or all-members alone (every "
        "member, named explicitly). Every recipient must be inside.",
    )
    deny_to: list[DenyTarget] = Field(
        default_factory=list,
        max_length=MAX_DENY_TO,
        description="Never to: agency ids, group:<id> and country:<ISO alpha-3> (every member "
        "agency of that country). Wins over rel_to, groups, agreements and releases.",
    )
    h0: bool = Field(
        default=True,
        description="SIENA H0: only for preventing and combating crime. Always in force under "
        "iir/1; under iir/1.1 an originator may publish public information (TLP:CLEAR) without it.",
    )
    judicial_use: bool = Field(
        default=False,
        description="True only if the originator permits use in judicial proceedings; "
        "otherwise H1 applies (intelligence is not evidence: formalise through MLA).",
    )
    h2: bool = Field(
        default=False,
        description="SIENA H2: not to be disseminated without the provider's permission.",
    )
    h3: list[H3Restriction] = Field(
        default_factory=list, max_length=MAX_H3, description="SIENA H3: other restrictions."
    )
    action: ActionCode | None = Field(
        default=ActionCode.A1,
        description="Action code (3x5x2 practice). iir/1: absent means A1. iir/1.1: absent means "
        "none, unless the federation policy sets a default, which the sealing node writes in.",
    )
    action_text: Annotated[str, StringConstraints(max_length=1000)] | None = Field(
        default=None, description="What overt action is permitted; required with A3."
    )
    classification: Classification = Field(default=Classification.UNCLASSIFIED)
    not_before: EpochMillis | None = Field(default=None, description="Embargo until this time.")
    expires: EpochMillis | None = Field(
        default=None, description="After this time the broker stops delivering and nodes purge."
    )
    non_refoulement_override: NonRefoulementOverride | None = None
    protected_released_to: list[AgencyId] = Field(
        default_factory=list,
        max_length=MAX_REL_TO,
        description="Agencies to which witnesses and victims in the report are released by name.",
    )

    @field_validator("rel_to", "deny_to", "protected_released_to")
    @classmethod
    def _sorted_unique(cls, value: list[str]) -> list[str]:
        # One canonical order, so the signed header and every decision are order-independent.
        return sorted(set(value))

    @field_validator("h3")
    @classmethod
    def _sorted_h3(cls, value: list[H3Restriction]) -> list[H3Restriction]:
        unique = {(r.code, r.text): r for r in value}
        return [unique[k] for k in sorted(unique)]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.action is ActionCode.A3 and not self.action_text:
            raise ValueError("action A3 needs action_text saying which overt action is permitted")
        if self.not_before and self.expires and self.expires <= self.not_before:
            raise ValueError("expires must be after not_before")
        if ALL_MEMBERS in self.rel_to:
            if len(self.rel_to) > 1:
                raise ValueError(
                    "rel_to: all-members already names every member; it stands alone, so "
                    "remove the other entries (or drop all-members and list them)"
                )
            if self.tlp is Tlp.RED:
                raise ValueError(
                    "rel_to: TLP:RED goes only to agencies named individually; name them "
                    "instead of all-members, or lower the TLP"
                )
        if self.deny_to:
            self._no_contradiction()
        return self

    def _no_contradiction(self) -> None:
        """The same agency or group both allowed and excluded by name is a mistake to fix, not
        something to resolve silently (the engine would exclude it: deny_to wins)."""
        denied = set(self.deny_to)
        named = [
            ("rel_to", sorted(denied.intersection(self.rel_to))),
            ("protected_released_to", sorted(denied.intersection(self.protected_released_to))),
        ]
        if self.non_refoulement_override is not None:
            agencies = self.non_refoulement_override.agencies
            named.append(("non_refoulement_override", sorted(denied.intersection(agencies))))
        for field, both in named:
            if both:
                raise ValueError(
                    f"deny_to excludes {', '.join(both)}, which {field} also names; remove "
                    f"{'it' if len(both) == 1 else 'them'} from one of the two"
                )

    @property
    def h1(self) -> bool:
        """SIENA H1: not to be disclosed in judicial proceedings without permission."""
        return not self.judicial_use

    @property
    def onward_forbidden(self) -> bool:
        """Onward dissemination needs the originator's release (H2, AMBER+STRICT, RED)."""
        return self.h2 or self.tlp in (Tlp.AMBER_STRICT, Tlp.RED)

    def codes(self) -> list[str]:
        """The codes in force, for banners: e.g. ['TLP:AMBER', 'H0', 'H1', 'A1']."""
        out = [f"TLP:{self.tlp.value}"]
        if self.h0:
            out.append("H0")
        if self.h1:
            out.append("H1")
        if self.h2:
            out.append("H2")
        if self.h3:
            out.append("H3")
        if self.action is not None:
            out.append(self.action.value)
        return out


class HandlingV11(Handling):
    """The handling of an ``iir/1.1`` report: the action code is optional (absent: none), and
    public information (TLP:CLEAR) may go without H0."""

    schema_version: ClassVar[str] = "iir/1.1"

    action: ActionCode | None = Field(
        default=None,
        description="Action code (3x5x2 practice); absent: none, unless the federation policy "
        "sets a default, which the sealing node writes into the signed header.",
    )


HANDLING_BY_SCHEMA: Final[dict[str, type[Handling]]] = {
    Handling.schema_version: Handling,
    HandlingV11.schema_version: HandlingV11,
}


def versioned_handling(schema: str, handling: Handling) -> Handling:
    """``handling`` read under ``schema``'s defaults and rules.

    What the originator did not give takes that version's default: an absent action is A1 under
    iir/1 and none under iir/1.1. Reports and headers validate their ``handling`` field as
    :class:`Handling` and then call this with their ``schema`` (pydantic cannot choose a nested
    model by a sibling field), so the rules below are enforced wherever a handling block is
    part of a report or a header. Raises ValueError naming the field to fix.
    """
    wanted = HANDLING_BY_SCHEMA[schema]
    if type(handling) is not wanted:
        given = {name: getattr(handling, name) for name in handling.model_fields_set}
        if wanted is Handling and isinstance(handling, HandlingV11):
            # No silent A1 for a block that said "no action code": the rule below refuses it.
            given["action"] = handling.action
        handling = wanted.model_validate(given)
    if wanted is Handling:
        if not handling.h0:
            raise ValueError(
                "h0: false (no H0 restriction) needs schema iir/1.1; under iir/1 "
                "every report is for preventing and combating crime only"
            )
        if handling.action is None:
            raise ValueError(
                "action: an iir/1 report always has an action code (A1, A2 or A3); "
                "leave it out for A1, or use schema iir/1.1 for a report without one"
            )
    elif not handling.h0 and handling.tlp is not Tlp.CLEAR:
        raise ValueError(
            "h0: false is for public information (legislation, published practice "
            f"or statistics) and needs TLP:CLEAR, not TLP:{handling.tlp.value}"
        )
    return handling
