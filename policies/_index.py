"""A compiled, immutable view of a federation policy for fast decisions.

Built once per federation policy version: member facts in a dict, group membership as frozen
sets, and for each agency the set of agreements it is a party to (directly or through a group),
so the agreements between two agencies are one set intersection. ``decide()`` then costs a
handful of dict and set look-ups, whatever the size of the federation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from schemas import Classification

from ._federation import Agreement, Federation, MemberStatus, split_targets

__all__ = ["FederationIndex", "MemberInfo", "compile_federation", "index_of"]

_CACHE_KEY: Final[str] = "_palermo_index"


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """What the engine needs to know about one member."""

    id: str
    name: str
    country: str
    groups: frozenset[str]
    accreditation: Classification
    rank: int
    aggregate_only: bool
    status: MemberStatus

    @property
    def active(self) -> bool:
        return self.status is MemberStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class FederationIndex:
    """The compiled federation; build it with :func:`compile_federation`."""

    federation: Federation
    members: Mapping[str, MemberInfo]
    group_ids: frozenset[str]
    group_members: Mapping[str, frozenset[str]]
    agreements: tuple[Agreement, ...]
    agreements_of: Mapping[str, frozenset[int]]
    member_ids: tuple[str, ...]
    label: str
    """``<id> v<version>``, as denial messages name the federation."""

    @property
    def id(self) -> str:
        return self.federation.id

    @property
    def version(self) -> int:
        return self.federation.version

    def agreements_between(self, a: str, b: str) -> tuple[Agreement, ...]:
        """Every agreement (in force or not) to which both agencies are parties, in id order."""
        empty: frozenset[int] = frozenset()
        common = self.agreements_of.get(a, empty) & self.agreements_of.get(b, empty)
        return tuple(self.agreements[i] for i in sorted(common))


def compile_federation(federation: Federation) -> FederationIndex:
    """Compile a federation policy (pure; the result is cached on the federation object)."""
    # Cached in the instance __dict__ outside the fields, which pydantic's dump, equality and
    # validation ignore (a private attribute would cost a __getattr__ round trip per call). The
    # identity check catches a copy made with model_copy(update=...), which copies __dict__.
    cached = federation.__dict__.get(_CACHE_KEY)
    if isinstance(cached, FederationIndex) and cached.federation is federation:
        return cached
    group_members: dict[str, set[str]] = {g.id: set() for g in federation.groups}
    members: dict[str, MemberInfo] = {}
    for m in federation.members:
        members[m.id] = MemberInfo(
            id=m.id,
            name=m.name,
            country=m.country,
            groups=frozenset(m.groups),
            accreditation=m.accreditation,
            rank=m.accreditation.rank,
            aggregate_only=m.aggregate_only,
            status=m.status,
        )
        for g in m.groups:
            group_members[g].add(m.id)
    frozen_groups = {g: frozenset(ids) for g, ids in group_members.items()}
    agreements_of: dict[str, set[int]] = {}
    for i, agreement in enumerate(federation.agreements):
        agencies, groups = split_targets(agreement.parties)
        covered = set(agencies)
        for g in groups:
            covered |= frozen_groups[g]
        for agency in covered:
            agreements_of.setdefault(agency, set()).add(i)
    index = FederationIndex(
        federation=federation,
        members=MappingProxyType(members),
        group_ids=frozenset(frozen_groups),
        group_members=MappingProxyType(frozen_groups),
        agreements=tuple(federation.agreements),
        agreements_of=MappingProxyType({a: frozenset(s) for a, s in agreements_of.items()}),
        member_ids=tuple(sorted(members)),
        label=f"{federation.id} v{federation.version}",
    )
    federation.__dict__[_CACHE_KEY] = index
    return index


def index_of(federation: Federation | FederationIndex) -> FederationIndex:
    """The compiled index, whichever of the two the caller holds."""
    if isinstance(federation, FederationIndex):
        return federation
    return compile_federation(federation)
