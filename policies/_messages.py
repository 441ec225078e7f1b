"""Denial messages that say what to change. Only built on the deny path, so they cost nothing
when a report goes through."""

from __future__ import annotations

from datetime import datetime
from types import MappingProxyType
from typing import Final

from schemas import Category, Tlp

from ._agency_policy import AgencyPolicy, Rule
from ._catalogue import ReasonCode
from ._decision import Reason
from ._federation import Agreement
from ._index import FederationIndex, MemberInfo

__all__ = [
    "TEMPLATES",
    "no_basis",
    "no_data_protection",
    "policy_rule",
    "reason",
    "unknown_deny_to",
    "unknown_rel_to",
    "when",
]


TEMPLATES: Final[MappingProxyType[ReasonCode, str]] = MappingProxyType(
    {
        ReasonCode.ALLOWED: "{agency} may receive this TLP:{tlp} {kind} from {originator} "
        "{grounds}",
        ReasonCode.UNKNOWN_ORIGINATOR: "{originator} is not a member of federation {federation}; "
        "its reports cannot be delivered",
        ReasonCode.ORIGINATOR_NOT_ACTIVE: "{originator} is {status} in federation {federation}; "
        "nothing it sends is delivered until the operator reinstates it",
        ReasonCode.UNKNOWN_RECIPIENT: "{agency} is not a member of federation {federation}; "
        "remove it from the recipients or ask the federation operator to admit it",
        ReasonCode.RECIPIENT_NOT_ACTIVE: "{agency} is {status} in federation {federation}; "
        "remove it from the recipients",
        ReasonCode.SELF: "{agency} is the originator; it never receives its own {kind}",
        ReasonCode.EMBARGOED: "embargoed until {until}; it is delivered from then on",
        ReasonCode.EXPIRED: "expired at {at}; it is no longer delivered: send a new report if "
        "the intelligence still holds",
        ReasonCode.RED_NOT_NAMED: "TLP:RED goes only to agencies named individually in rel_to; "
        "{agency} {how}: add {agency} to rel_to",
        ReasonCode.REL_TO_EMPTY: "TLP:{tlp} needs rel_to to name its recipients; add {agency}"
        "{alternatives}",
        ReasonCode.NOT_IN_REL_TO: "{agency} is not in rel_to; add it{alternatives}",
        ReasonCode.DENIED_BY_ORIGINATOR: "{originator} excludes {agency} from this {kind} "
        "(deny_to: {matched}); no rel_to entry, group, agreement or release can reach it: only "
        "{originator} can, with a new report that does not exclude it",
        ReasonCode.AGGREGATE_ONLY: "{agency} is an aggregate-only member (statistics body): it "
        "receives only statistics, never {what}; send it aggregated figures",
        ReasonCode.SUPPRESSION_BELOW_MIN_K: "{agency} is an aggregate-only member and the "
        "federation requires statistics suppressed at k >= {min_k}, but the header declares "
        "{declared}; publish the return again from a node that suppresses at k >= {min_k}",
        ReasonCode.ABOVE_ACCREDITATION: "the report is marked {marking} but {agency} is "
        "accredited only to {accreditation}; sanitise and downgrade it, or leave {agency} out",
        ReasonCode.POLICY_WRONG_AGENCY: "the standing policy given is {owner}'s, but the report "
        "is {originator}'s; pass the originator's own policy",
        ReasonCode.POLICY_UNKNOWN_GROUP: "{owner}'s standing policy v{version} names {groups}, "
        "which federation {federation} does not define; correct the policy",
        ReasonCode.HOLDER_NOT_ACTIVE: "{holder} is {status} of federation {federation}; it "
        "cannot pass reports on",
        ReasonCode.ONWARD_NEEDS_RELEASE: "{why} forbid onward dissemination without the "
        "originator's release; {holder} must send {originator} a release-request for {agency}",
        ReasonCode.SECTION_NON_REFOULEMENT: "section {section} withheld: it holds personal data "
        "of protected nationals of {country} and {agency} is an authority of that country "
        "(non-refoulement guard); to send it anyway set handling.non_refoulement_override with "
        "a justification",
        ReasonCode.SECTION_PROTECTED_PERSONS: "section {section} withheld: it identifies "
        "protected persons (witnesses, victims); release it to {agency} by name in "
        "handling.protected_released_to",
        ReasonCode.SECTION_NO_DATA_PROTECTION: "section {section} withheld: it identifies "
        "protected persons and no agreement in force with data protection covers {agency}",
        ReasonCode.SECTION_POLICY: "section {section} withheld: it identifies protected "
        "persons and {reason}",
    }
)
"""Message templates for the reasons that need no diagnosis beyond their parameters."""


def reason(code: ReasonCode, **params: object) -> Reason:
    return Reason(code, TEMPLATES[code].format(**params))


def when(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _window(a: Agreement) -> str:
    until = when(a.valid_until) if a.valid_until is not None else "open-ended"
    return f"{when(a.valid_from)} to {until}"


def unknown_rel_to(
    agencies: frozenset[str], unknown_groups: frozenset[str], index: FederationIndex
) -> Reason:
    names = sorted(agencies - index.members.keys()) + [f"group:{g}" for g in sorted(unknown_groups)]
    return Reason(
        ReasonCode.REL_TO_UNKNOWN,
        f"rel_to names {', '.join(names)}, unknown to federation {index.id} v{index.version}; "
        "correct the id (a typo must not silently change who may read the report)",
    )


def unknown_deny_to(
    agencies: frozenset[str], unknown_groups: frozenset[str], index: FederationIndex
) -> Reason:
    names = sorted(agencies - index.members.keys()) + [f"group:{g}" for g in sorted(unknown_groups)]
    return Reason(
        ReasonCode.DENY_TO_UNKNOWN,
        f"deny_to names {', '.join(names)}, unknown to federation {index.id} v{index.version}; "
        "correct the id (a typo must not silently let the agency meant receive the report)",
    )


def no_basis(
    tlp: Tlp,
    originator: str,
    recipient: str,
    category: Category,
    between: tuple[Agreement, ...],
    now: datetime,
) -> Reason:
    head = (
        f"TLP:{tlp.value} needs an agreement in force between {originator} and {recipient} "
        f"covering category {category.value}"
    )
    if not between:
        return Reason(
            ReasonCode.NO_AGREEMENT,
            f"{head}, and there is none: lower the TLP to GREEN, or ask the federation operator "
            "to record the agreement",
        )
    details = []
    for a in between:
        if not a.in_force(now):
            details.append(f"{a.ref} is not in force ({_window(a)})")
        else:
            covered = ", ".join(c.value for c in a.categories)
            details.append(f"{a.ref} covers only {covered}")
    return Reason(ReasonCode.NO_AGREEMENT, f"{head}: {'; '.join(details)}")


def no_data_protection(
    sections: tuple[str, ...], originator: str, recipient: str, usable: tuple[Agreement, ...]
) -> Reason:
    verb = "does" if len(usable) == 1 else "do"
    lacking = f" ({', '.join(a.ref for a in usable)} {verb} not)" if usable else ""
    return Reason(
        ReasonCode.NO_DATA_PROTECTION,
        f"the report holds personal data (section {', '.join(sections)}) and no agreement in "
        f"force between {originator} and {recipient} provides for data protection{lacking}; "
        f"send {recipient} a version without the personal-data sections",
    )


def policy_rule(
    code: ReasonCode,
    policy: AgencyPolicy,
    rule: Rule,
    member: MemberInfo,
    agencies: frozenset[str],
    groups: frozenset[str],
) -> Reason:
    matched = (
        member.id
        if member.id in agencies
        else ", ".join(f"group:{g}" for g in sorted(groups & member.groups))
    )
    what = {
        "deny": f"sends nothing to {matched}",
        "no-personal-data": f"sends no personal data to {matched}",
        "red-only-to": f"sends TLP:RED only to {', '.join(rule.targets)}",
        "max-tlp": f"sends nothing above TLP:{getattr(rule, 'tlp', '')} to {matched}",
        "max-classification": f"sends nothing marked above "
        f"{getattr(rule, 'classification', '')} to {matched}",
    }[rule.rule]
    note = f" ({rule.note})" if rule.note else ""
    return Reason(
        code,
        f"{policy.agency}'s standing policy v{policy.version} {what}{note}; leave "
        f"{member.id} out or ask {policy.agency}'s policy owner",
    )
