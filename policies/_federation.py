"""The federation policy document: members, groups, agreements and federation-wide rules.

The federation operator writes it in TOML and signs it with the federation root key
(``protocol.trust.sign_document``). Lists are put in one canonical order when the document is
validated, so :meth:`PolicyDocument.canonical_bytes` — what a signature covers — does not depend
on the order in which the operator wrote members, groups or agreements, and neither does any
decision taken on it.
"""

from __future__ import annotations

import json
import tomllib
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Final, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas import AgencyId, Category, Classification, CountryCode, EpochMillis, Tlp
from schemas._types import GROUP_PREFIX, ReleaseTarget, Slug
from schemas._validation import field_errors
from schemas.errors import ConfigError

__all__ = [
    "Agreement",
    "Federation",
    "FederationRules",
    "Group",
    "Member",
    "MemberStatus",
    "PolicyDocument",
    "canonical_json",
    "split_targets",
]

MAX_MEMBERS: Final[int] = 10_000
MAX_GROUPS: Final[int] = 1_000
MAX_AGREEMENTS: Final[int] = 10_000
MAX_PARTIES: Final[int] = 1_024

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]


def canonical_json(data: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: byte-identical to ``protocol.trust.canonical_json``."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def split_targets(targets: list[str]) -> tuple[frozenset[str], frozenset[str]]:
    """Agency ids and group ids (without the ``group:`` prefix) from a list of release targets."""
    agencies: list[str] = []
    groups: list[str] = []
    cut = len(GROUP_PREFIX)
    for t in targets:
        if t.startswith(GROUP_PREFIX):
            groups.append(t[cut:])
        else:
            agencies.append(t)
    return frozenset(agencies), frozenset(groups)


class PolicyDocument(BaseModel):
    """A signable policy document: strict, immutable, with canonical bytes for a signature."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    what: ClassVar[str] = "policy document"
    """How error messages name the document."""

    def canonical_bytes(self) -> bytes:
        """What a signer signs: the same bytes ``protocol.trust.sign_document`` covers."""
        return canonical_json(self.model_dump(mode="json", exclude_none=True))

    @classmethod
    def from_toml(cls, text: str | bytes) -> Self:
        """Parse and validate a TOML document; errors name the field to fix."""
        try:
            data = tomllib.loads(text.decode() if isinstance(text, bytes) else text)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{cls.what} is not valid TOML: {exc}") from exc
        return cls.from_data(data)

    @classmethod
    def from_data(cls, data: Any) -> Self:
        """Validate already-parsed data (a signed document's ``document`` part, say)."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            errors = field_errors(exc)
            listed = "; ".join(_describe(e) for e in errors[:5])
            more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
            raise ConfigError(f"{cls.what} is invalid: {listed}{more}") from exc


def _describe(error: dict[str, Any]) -> str:
    # Cross-reference checks run on the whole document and already name their field
    # ("members.ITA-GDF.groups: ..."); pydantic would prefix "(document): Value error, ".
    message = str(error["message"]).removeprefix("Value error, ")
    return message if error["field"] == "(document)" else f"{error['field']}: {message}"


class MemberStatus(StrEnum):
    ACTIVE = "active"
    """Sends and receives."""
    SUSPENDED = "suspended"
    """Temporarily receives nothing and its reports are not delivered (e.g. under inquiry)."""
    WITHDRAWN = "withdrawn"
    """Left the federation; kept listed so old reports still name a known agency."""


class Member(BaseModel):
    """An agency admitted to the federation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: AgencyId
    name: Name
    country: CountryCode = Field(
        description="ISO 3166-1 alpha-3; the non-refoulement guard uses it."
    )
    groups: list[Slug] = Field(default_factory=list, max_length=64)
    accreditation: Classification = Field(
        description="Highest protective marking the agency may receive."
    )
    aggregate_only: bool = Field(
        default=False,
        description="A statistics or research body: receives only kind=statistics (and the "
        "retractions of them), never personal data (000 p.23).",
    )
    status: MemberStatus = MemberStatus.ACTIVE

    @field_validator("groups")
    @classmethod
    def _sorted(cls, value: list[str]) -> list[str]:
        return sorted(set(value))


class Group(BaseModel):
    """A community of members, e.g. ``bali-process``; rel_to and agreements name it group:<id>."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Slug
    name: Name
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None


class Agreement(BaseModel):
    """A bilateral or multilateral agreement: the legal basis for AMBER and above.

    It binds every party to every other: a group entry makes each member of the group a party.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Slug
    version: int = Field(ge=1, description="Bumped when the text changes; audited with decisions.")
    name: Name
    parties: list[ReleaseTarget] = Field(min_length=1, max_length=MAX_PARTIES)
    purposes: list[Slug] = Field(min_length=1, max_length=32)
    data_protection: bool = Field(
        default=False,
        description="True only if the agreement provides for the protection of personal data; "
        "personal data flows only under such an agreement.",
    )
    categories: list[Category] = Field(
        default_factory=list, description="Art. 10 categories covered; empty means all."
    )
    valid_from: EpochMillis
    valid_until: EpochMillis | None = None

    @field_validator("parties", "purposes")
    @classmethod
    def _sorted(cls, value: list[str]) -> list[str]:
        return sorted(set(value))

    @field_validator("categories")
    @classmethod
    def _sorted_categories(cls, value: list[Category]) -> list[Category]:
        return sorted(set(value))

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError(f"agreement {self.id}: valid_until must be after valid_from")
        return self

    @property
    def ref(self) -> str:
        """``id@vN``: how decisions and audit records cite the agreement."""
        return f"{self.id}@v{self.version}"

    def in_force(self, now: datetime) -> bool:
        return self.valid_from <= now and (self.valid_until is None or now < self.valid_until)


class FederationRules(BaseModel):
    """Federation-wide guards; both are on unless the operator turns them off explicitly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    non_refoulement_guard: bool = True
    protected_persons_guard: bool = True
    default_action: Literal["A1", "A2"] | None = Field(
        default=None,
        description="The action code an iir/1.1 report gets when its originator set none; the "
        "sealing node writes it into the signed header (decision 0019). A3 needs the "
        "originator's own text, so it cannot be a default.",
    )
    statistics_min_k: int | None = Field(
        default=None,
        ge=2,
        le=1000,
        description="The least disclosure-control threshold k of a statistical return: a "
        "publishing node suppresses at this k if its own setting is lower, and an "
        "aggregate-only member receives a statistics envelope only if its signed header "
        "declares suppression_k at or above it (decision 0024).",
    )
    # None, not []: canonical_bytes drops None, so policies signed before this field existed
    # keep their bytes and their signatures (decision 0026).
    console_totp_required_for: (
        list[Literal["reader", "officer", "release-authority", "administrator"]] | None
    ) = Field(
        default=None,
        description="Officer-console roles whose accounts must log in with a TOTP second "
        'factor on every node (e.g. ["release-authority", "administrator"]); an account '
        "holding one of them without TOTP cannot log in (decision 0026).",
    )
    # None (not an empty list) when unset, so that policies signed before these rules
    # existed encode, and verify, exactly as before.
    suite_2_for_tlp: list[Tlp] | None = Field(
        default=None,
        max_length=5,
        description="TLP labels whose envelopes must be sealed with suite 2 (post-quantum "
        'hybrid ML-KEM-768 + X25519), e.g. ["RED"]; the broker refuses them under suite 1 '
        "(decision 0035).",
    )
    suite_2_for_classification: list[Classification] | None = Field(
        default=None,
        max_length=4,
        description="Classification levels whose envelopes must be sealed with suite 2.",
    )


class Federation(PolicyDocument):
    """The signed federation policy."""

    what: ClassVar[str] = "federation policy"

    kind: Literal["federation-policy"] = "federation-policy"
    id: Slug
    name: Name
    version: int = Field(ge=1)
    issued: EpochMillis
    rules: FederationRules = Field(default_factory=FederationRules)
    groups: list[Group] = Field(default_factory=list, max_length=MAX_GROUPS)
    members: list[Member] = Field(min_length=1, max_length=MAX_MEMBERS)
    agreements: list[Agreement] = Field(default_factory=list, max_length=MAX_AGREEMENTS)

    @field_validator("groups")
    @classmethod
    def _sorted_groups(cls, value: list[Group]) -> list[Group]:
        return sorted(value, key=lambda g: g.id)

    @field_validator("members")
    @classmethod
    def _sorted_members(cls, value: list[Member]) -> list[Member]:
        return sorted(value, key=lambda m: m.id)

    @field_validator("agreements")
    @classmethod
    def _sorted_agreements(cls, value: list[Agreement]) -> list[Agreement]:
        return sorted(value, key=lambda a: (a.id, a.version))

    @model_validator(mode="after")
    def _references(self) -> Self:
        # A dangling reference would silently change who is covered, so it is refused at load.
        group_ids = _unique("groups", [g.id for g in self.groups])
        member_ids = _unique("members", [m.id for m in self.members])
        _unique("agreements", [a.ref for a in self.agreements])
        for m in self.members:
            unknown = sorted(set(m.groups) - group_ids)
            if unknown:
                raise ValueError(
                    f"members.{m.id}.groups: {', '.join(unknown)} not defined in [[groups]]"
                )
        for a in self.agreements:
            agencies, groups = split_targets(a.parties)
            missing = sorted(agencies - member_ids) + [
                GROUP_PREFIX + g for g in sorted(groups - group_ids)
            ]
            if missing:
                raise ValueError(
                    f"agreements.{a.id}.parties: {', '.join(missing)} not a member or group "
                    "of this federation"
                )
        return self

    def member(self, agency: str) -> Member | None:
        return next((m for m in self.members if m.id == agency), None)


def _unique(field: str, ids: list[str]) -> set[str]:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"{field}: {i} is listed twice")
        seen.add(i)
    return seen
