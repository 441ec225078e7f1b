"""The handling-code catalogue: every code an originator can set, where it comes from, what it
means and what Palermo does with it. The engine takes its obligation texts from here, and the
docs (``docs/handling-codes.md``) and the CLI list it, so the three never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

__all__ = [
    "CATALOGUE",
    "OBLIGATIONS",
    "TLP_RANK",
    "AuditFlag",
    "CodeInfo",
    "ObligationCode",
    "ReasonCode",
    "Source",
]


class Source(StrEnum):
    """The scheme a code comes from."""

    TLP = "FIRST TLP 2.0"
    SIENA = "Europol SIENA"
    UK_3X5X2 = "UK 3x5x2"
    PALERMO = "Palermo federation policy"


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """One handling code: its id as shown in banners, its source, meaning and enforcement."""

    id: str
    source: Source
    meaning: str
    system: str


_CODES: Final[tuple[CodeInfo, ...]] = (
    CodeInfo(
        "TLP:CLEAR",
        Source.TLP,
        "Disclosure is not limited.",
        "Every active member of the federation may receive it; a non-empty rel_to restricts.",
    ),
    CodeInfo(
        "TLP:GREEN",
        Source.TLP,
        "Limited disclosure: the community, not public.",
        "Every active member (the community); a non-empty rel_to restricts; obligation "
        "community-only.",
    ),
    CodeInfo(
        "TLP:AMBER",
        Source.TLP,
        "Limited disclosure: the recipient organisations and their clients, need-to-know.",
        "Only recipients inside rel_to (directly or via a group), under an agreement in force; "
        "obligation need-to-know.",
    ),
    CodeInfo(
        "TLP:AMBER+STRICT",
        Source.TLP,
        "Limited disclosure: the recipient organisation only.",
        "As AMBER, and onward dissemination needs the originator's release.",
    ),
    CodeInfo(
        "TLP:RED",
        Source.TLP,
        "For the eyes and ears of individual recipients only.",
        "Only agencies named individually in rel_to (a group entry does not count), under an "
        "agreement in force; onward dissemination needs a release.",
    ),
    CodeInfo(
        "H0",
        Source.SIENA,
        "Only for the purpose of preventing and combating crime.",
        "Always set; every delivery carries the obligation crime-prevention-only.",
    ),
    CodeInfo(
        "H1",
        Source.SIENA,
        "Not to be disclosed in judicial proceedings without the provider's permission.",
        "Default unless handling.judicial_use is true; obligation no-judicial-disclosure.",
    ),
    CodeInfo(
        "H2",
        Source.SIENA,
        "Not to be disseminated without the provider's permission.",
        "Obligation no-onward-dissemination; may_forward() denies without a release.",
    ),
    CodeInfo(
        "H3",
        Source.SIENA,
        "Other restrictions (structured code and free text).",
        "One obligation other-restriction per entry, shown and enforced by the receiving node.",
    ),
    CodeInfo(
        "deny_to",
        Source.SIENA,
        "Never to the agencies, groups or countries listed: an H3 restriction made "
        "enforceable (originator control, Protocol art. 10(2)).",
        "No listed agency, no member of a listed group and no agency of a listed country "
        "receives it, whatever rel_to, groups, agreements or releases say; obligation never-to.",
    ),
    CodeInfo(
        "A1",
        Source.UK_3X5X2,
        "No direct action without the originator's permission.",
        "Obligation no-action-without-permission (the default action code).",
    ),
    CodeInfo(
        "A2",
        Source.UK_3X5X2,
        "Covert use only: not as evidence, not to support an arrest.",
        "Obligation covert-use-only.",
    ),
    CodeInfo(
        "A3",
        Source.UK_3X5X2,
        "Overt action as the originator specifies.",
        "Obligation overt-action-as-specified carrying handling.action_text.",
    ),
)

CATALOGUE: Final[MappingProxyType[str, CodeInfo]] = MappingProxyType({c.id: c for c in _CODES})
"""Every handling code by id, in banner order."""


class ObligationCode(StrEnum):
    """What a receiving node must enforce and show (travels with the delivery)."""

    CRIME_PREVENTION_ONLY = "crime-prevention-only"
    NO_JUDICIAL_DISCLOSURE = "no-judicial-disclosure"
    NO_ONWARD_DISSEMINATION = "no-onward-dissemination"
    NEED_TO_KNOW = "need-to-know"
    COMMUNITY_ONLY = "community-only"
    OTHER_RESTRICTION = "other-restriction"
    NEVER_TO = "never-to"
    NO_ACTION_WITHOUT_PERMISSION = "no-action-without-permission"
    COVERT_USE_ONLY = "covert-use-only"
    OVERT_ACTION_AS_SPECIFIED = "overt-action-as-specified"
    PROTECTIVE_MARKING = "protective-marking"
    PURGE_AT = "purge-at"


OBLIGATIONS: Final[MappingProxyType[ObligationCode, tuple[Source, str]]] = MappingProxyType(
    {
        ObligationCode.CRIME_PREVENTION_ONLY: (
            Source.SIENA,
            "H0: use only for preventing and combating crime.",
        ),
        ObligationCode.NO_JUDICIAL_DISCLOSURE: (
            Source.SIENA,
            "H1: not to be disclosed in judicial proceedings without the originator's "
            "permission; formalise through mutual legal assistance (Convention art. 18).",
        ),
        ObligationCode.NO_ONWARD_DISSEMINATION: (
            Source.SIENA,
            "Not to be disseminated beyond your organisation without the originator's release "
            "({why}); send a release-request.",
        ),
        ObligationCode.NEED_TO_KNOW: (
            Source.TLP,
            "TLP:AMBER: share only inside your organisation and its clients, on a need-to-know "
            "basis.",
        ),
        ObligationCode.COMMUNITY_ONLY: (
            Source.TLP,
            "TLP:GREEN: share within the federation community only, never publicly.",
        ),
        ObligationCode.OTHER_RESTRICTION: (Source.SIENA, "H3 {h3}: {text}"),
        ObligationCode.NEVER_TO: (
            Source.SIENA,
            "Never to {targets}: the originator excludes them (Protocol art. 10(2)); no release "
            "can reach them.",
        ),
        ObligationCode.NO_ACTION_WITHOUT_PERMISSION: (
            Source.UK_3X5X2,
            "A1: take no direct action on this without the originator's permission.",
        ),
        ObligationCode.COVERT_USE_ONLY: (
            Source.UK_3X5X2,
            "A2: covert use only; not as evidence and not to support an arrest.",
        ),
        ObligationCode.OVERT_ACTION_AS_SPECIFIED: (
            Source.UK_3X5X2,
            "A3: overt action only as the originator specifies: {text}",
        ),
        ObligationCode.PROTECTIVE_MARKING: (
            Source.PALERMO,
            "Marked {marking}: store and handle under your national rules for that marking.",
        ),
        ObligationCode.PURGE_AT: (
            Source.PALERMO,
            "Purge the plaintext at {when}; the report expires then.",
        ),
    }
)
"""Each obligation's source and message template."""


class ReasonCode(StrEnum):
    """Why a decision went the way it did; stable codes for audit, metrics and dead letters."""

    ALLOWED = "allowed"
    UNKNOWN_ORIGINATOR = "unknown-originator"
    ORIGINATOR_NOT_ACTIVE = "originator-not-active"
    UNKNOWN_RECIPIENT = "unknown-recipient"
    RECIPIENT_NOT_ACTIVE = "recipient-not-active"
    SELF = "recipient-is-originator"
    EMBARGOED = "embargoed"
    EXPIRED = "expired"
    REL_TO_UNKNOWN = "rel-to-unknown"
    REL_TO_EMPTY = "rel-to-empty"
    NOT_IN_REL_TO = "not-in-rel-to"
    RED_NOT_NAMED = "red-not-named"
    DENIED_BY_ORIGINATOR = "denied-by-originator"
    DENY_TO_UNKNOWN = "deny-to-unknown"
    AGGREGATE_ONLY = "aggregate-only"
    SUPPRESSION_BELOW_MIN_K = "suppression-below-min-k"
    ABOVE_ACCREDITATION = "above-accreditation"
    NO_AGREEMENT = "no-agreement"
    NO_DATA_PROTECTION = "no-data-protection"
    POLICY_WRONG_AGENCY = "policy-wrong-agency"
    POLICY_UNKNOWN_GROUP = "policy-unknown-group"
    POLICY_DENY = "policy-deny"
    POLICY_NO_PERSONAL_DATA = "policy-no-personal-data"
    POLICY_RED_ONLY_TO = "policy-red-only-to"
    POLICY_MAX_TLP = "policy-max-tlp"
    POLICY_MAX_CLASSIFICATION = "policy-max-classification"
    ONWARD_NEEDS_RELEASE = "onward-needs-release"
    HOLDER_NOT_ACTIVE = "holder-not-active"
    SECTION_NON_REFOULEMENT = "section-non-refoulement"
    SECTION_PROTECTED_PERSONS = "section-protected-persons"
    SECTION_NO_DATA_PROTECTION = "section-no-data-protection"
    SECTION_POLICY = "section-policy"
    RETRACTION_INVALID = "retraction-invalid"
    RELEASE_INVALID = "release-invalid"
    SUITE_BELOW_POLICY = "suite-below-policy"


class AuditFlag(StrEnum):
    """Facts about an allowed delivery that the audit log must record."""

    NON_REFOULEMENT_OVERRIDE_USED = "non-refoulement-override-used"
    PROTECTED_PERSONS_RELEASED = "protected-persons-released"
    RELEASE_USED = "release-used"


TLP_RANK: Final[MappingProxyType[str, int]] = MappingProxyType(
    {"CLEAR": 0, "GREEN": 1, "AMBER": 2, "AMBER+STRICT": 3, "RED": 4}
)
"""TLP labels from least to most restrictive (``max-tlp`` rules and monotonicity use it)."""
