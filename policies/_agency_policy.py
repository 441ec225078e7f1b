"""An agency's standing policy: rules it applies to everything it originates.

Signed by the agency's own signing key. Every rule can only restrict what the federation policy
and the report's handling block already allow; there is no rule that widens, so a standing
policy can never be used to reach someone the originator's handling excludes.

    [[rules]]
    rule = "no-personal-data"        # deny | no-personal-data | red-only-to | max-tlp |
    targets = ["group:western-balkans"]  #   max-classification
    note = "pending an adequacy assessment"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from schemas import AgencyId, Classification, EpochMillis, Tlp
from schemas._types import ReleaseTarget

from ._federation import PolicyDocument, canonical_json, split_targets

__all__ = [
    "AgencyPolicy",
    "CompiledPolicy",
    "CompiledRule",
    "DenyRule",
    "MaxClassificationRule",
    "MaxTlpRule",
    "NoPersonalDataRule",
    "RedOnlyToRule",
    "Rule",
    "compile_policy",
]

MAX_RULES: Final[int] = 256


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    targets: list[ReleaseTarget] = Field(
        min_length=1, max_length=1024, description="Agency ids and group:<id>."
    )
    note: Annotated[str, StringConstraints(max_length=500)] | None = Field(
        default=None, description="Why the rule exists; quoted in denial reasons."
    )

    @field_validator("targets")
    @classmethod
    def _sorted(cls, value: list[str]) -> list[str]:
        return sorted(set(value))


class DenyRule(_Rule):
    """Never send anything to the targets."""

    rule: Literal["deny"]


class NoPersonalDataRule(_Rule):
    """Never send personal data (or protected persons) to the targets."""

    rule: Literal["no-personal-data"]


class RedOnlyToRule(_Rule):
    """TLP:RED goes only to the targets (they must still be named in rel_to)."""

    rule: Literal["red-only-to"]


class MaxTlpRule(_Rule):
    """Nothing above ``tlp`` goes to the targets (e.g. GREEN: no AMBER, AMBER+STRICT, RED)."""

    rule: Literal["max-tlp"]
    tlp: Tlp


class MaxClassificationRule(_Rule):
    """Nothing marked above ``classification`` goes to the targets, whatever they are accredited
    for."""

    rule: Literal["max-classification"]
    classification: Classification


Rule = Annotated[
    DenyRule | NoPersonalDataRule | RedOnlyToRule | MaxTlpRule | MaxClassificationRule,
    Field(discriminator="rule"),
]

CompiledRule = tuple[
    DenyRule | NoPersonalDataRule | RedOnlyToRule | MaxTlpRule | MaxClassificationRule,
    frozenset[str],
    frozenset[str],
]
"""A rule with its targets split into agency ids and group ids, ready for set look-ups."""


class AgencyPolicy(PolicyDocument):
    """An agency's signed standing policy."""

    what: ClassVar[str] = "agency policy"

    kind: Literal["agency-policy"] = "agency-policy"
    agency: AgencyId
    version: int = Field(ge=1)
    issued: EpochMillis
    rules: list[Rule] = Field(default_factory=list, max_length=MAX_RULES)

    @field_validator("rules")
    @classmethod
    def _canonical_order(cls, value: list[Any]) -> list[Any]:
        # Rules only ever restrict, so their order carries no meaning; one order makes the
        # signed bytes independent of how the file was written.
        unique = {canonical_json(r.model_dump(mode="json", exclude_none=True)): r for r in value}
        return [unique[k] for k in sorted(unique)]


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """A standing policy ready for set look-ups."""

    source: AgencyPolicy
    rules: tuple[CompiledRule, ...]
    groups_named: frozenset[str]
    """Every group the rules name, so the engine can refuse a policy naming unknown ones."""


_CACHE_KEY: Final[str] = "_palermo_compiled"


def compile_policy(policy: AgencyPolicy) -> CompiledPolicy:
    """Split every rule's targets once; the result is cached on the policy object."""
    # Cached in the instance __dict__ outside the fields (pydantic's dump, equality and
    # validation ignore it): a pydantic private attribute would cost a __getattr__ round trip
    # on every decision. The identity check catches a copy made with model_copy(update=...),
    # which copies __dict__ and so the cache of the original.
    cached = policy.__dict__.get(_CACHE_KEY)
    if isinstance(cached, CompiledPolicy) and cached.source is policy:
        return cached
    rules = tuple((r, *split_targets(r.targets)) for r in policy.rules)
    groups = frozenset(g for _, _, named in rules for g in named)
    compiled = CompiledPolicy(policy, rules, groups)
    policy.__dict__[_CACHE_KEY] = compiled
    return compiled
