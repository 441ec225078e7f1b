"""Which separately sealed sections an allowed recipient must not get a key for.

A report still reaches a partner while the parts that partner may not see are withheld: the
sender simply does not wrap those sections' keys for it (DESIGN.md, "Envelope v1"). Two
federation guards decide this, plus the data-protection rule for protected persons.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import EnvelopeHeader, SectionInfo, SectionKind

from ._catalogue import AuditFlag, ReasonCode
from ._decision import Reason
from ._federation import FederationRules
from ._index import MemberInfo
from ._messages import reason

__all__ = ["SectionOutcome", "withheld_sections"]


@dataclass(frozen=True, slots=True)
class SectionOutcome:
    withheld: tuple[str, ...]
    reasons: tuple[Reason, ...]
    flags: tuple[str, ...]


_NOTHING = SectionOutcome((), (), ())


def withheld_sections(
    header: EnvelopeHeader,
    member: MemberInfo,
    rules: FederationRules,
    data_protection: bool,
    no_personal_policy: bool,
) -> SectionOutcome:
    """The sections withheld from ``member``, why, and what the audit log must record.

    ``data_protection``: an agreement in force with data protection covers the originator and
    ``member``; ``no_personal_policy``: the originator's standing policy sends no personal data
    to ``member``.
    """
    if not header.sections:
        return _NOTHING
    withheld: list[str] = []
    reasons: list[Reason] = []
    flags: set[str] = set()
    for section in header.sections:
        why = None
        if section.kind is SectionKind.PROTECTED_PERSONS:
            why = _protected(section, header, member, rules, data_protection, no_personal_policy)
        if why is None and rules.non_refoulement_guard:
            why = _non_refoulement(section, header, member, flags)
        if why is not None:
            withheld.append(section.id)
            reasons.append(why)
        elif section.kind is SectionKind.PROTECTED_PERSONS and rules.protected_persons_guard:
            flags.add(AuditFlag.PROTECTED_PERSONS_RELEASED)
    return SectionOutcome(tuple(withheld), tuple(reasons), tuple(sorted(flags)))


def _protected(
    section: SectionInfo,
    header: EnvelopeHeader,
    member: MemberInfo,
    rules: FederationRules,
    data_protection: bool,
    no_personal_policy: bool,
) -> Reason | None:
    """Witnesses and victims: released by name only, and only as personal data may go."""
    params = {"section": section.id, "agency": member.id}
    if rules.protected_persons_guard and member.id not in header.handling.protected_released_to:
        return reason(ReasonCode.SECTION_PROTECTED_PERSONS, **params)
    # Identifying a witness is personal data: even released by name, it goes only where
    # personal data may (an aggregate-only member never; otherwise a data-protection agreement).
    if member.aggregate_only:
        why = f"{member.id} is aggregate-only and never receives personal data"
        return reason(ReasonCode.SECTION_POLICY, reason=why, **params)
    if not data_protection:
        return reason(ReasonCode.SECTION_NO_DATA_PROTECTION, **params)
    if no_personal_policy:
        why = f"{header.originator}'s standing policy sends no personal data to {member.id}"
        return reason(ReasonCode.SECTION_POLICY, reason=why, **params)
    return None


def _non_refoulement(
    section: SectionInfo, header: EnvelopeHeader, member: MemberInfo, flags: set[str]
) -> Reason | None:
    """Personal data of protected migrants never goes to their own State's authorities unless
    the originator overrides the guard for that agency, deliberately and on the record."""
    if member.country not in section.protected_nationalities:
        return None
    override = header.handling.non_refoulement_override
    if override is not None and member.id in override.agencies:
        flags.add(AuditFlag.NON_REFOULEMENT_OVERRIDE_USED)
        return None
    return reason(
        ReasonCode.SECTION_NON_REFOULEMENT,
        section=section.id,
        country=member.country,
        agency=member.id,
    )
