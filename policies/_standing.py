"""The originator's standing policy applied to one header, planned once for all its recipients.

The engine decides per recipient, but which of the originator's rules can deny anyone depends
only on the header (its TLP, marking and personal-data sections) and the policy: a RED-only
rule is idle for an AMBER report, a maximum-TLP rule for a report below it. :func:`plan` keeps
the rules that can bite and :func:`apply` matches only those against each recipient: the
broker decides five recipients an envelope, and the per-rule dispatch was ~15% of its
decisions (issue 19).
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import EnvelopeHeader, Tlp

from ._agency_policy import (
    AgencyPolicy,
    DenyRule,
    MaxTlpRule,
    NoPersonalDataRule,
    RedOnlyToRule,
    Rule,
    compile_policy,
)
from ._catalogue import TLP_RANK, ReasonCode
from ._decision import Reason
from ._index import FederationIndex, MemberInfo
from ._messages import policy_rule, reason

__all__ = ["StandingPlan", "apply", "plan"]

# (reason code, rule, its agencies, its groups, denies when the recipient is named (True) or
# when it is not (False: a RED-only-to rule)).
_Check = tuple[ReasonCode, Rule, frozenset[str], frozenset[str], bool]


@dataclass(frozen=True, slots=True)
class StandingPlan:
    """What one standing policy means for one header, whoever the recipient."""

    policy: AgencyPolicy
    index: FederationIndex
    header: EnvelopeHeader
    # A reason every recipient gets, in the order the rules would have given them; when
    # ``final`` it is the only one (a policy filed under the wrong agency decides nothing).
    fixed: tuple[Reason, ...]
    final: bool
    checks: tuple[_Check, ...]
    # Targets of the no-personal-data rules: a recipient they name gets no personal sections.
    no_personal: tuple[tuple[frozenset[str], frozenset[str]], ...]


def plan(
    header: EnvelopeHeader,
    policy: AgencyPolicy,
    index: FederationIndex,
    personal: bool,
    tlp_rank: int,
    class_rank: int,
) -> StandingPlan:
    """The rules of ``policy`` that can deny some recipient of ``header``, in their order."""
    if policy.agency != header.originator:
        wrong = reason(
            ReasonCode.POLICY_WRONG_AGENCY, owner=policy.agency, originator=header.originator
        )
        return StandingPlan(policy, index, header, (wrong,), True, (), ())
    compiled = compile_policy(policy)
    fixed: tuple[Reason, ...] = ()
    unknown = sorted(compiled.groups_named - index.group_ids)
    if unknown:
        fixed = (
            reason(
                ReasonCode.POLICY_UNKNOWN_GROUP,
                owner=policy.agency,
                version=policy.version,
                groups=", ".join(f"group:{g}" for g in unknown),
                federation=index.id,
            ),
        )
    is_red = header.handling.tlp is Tlp.RED
    checks: list[_Check] = []
    no_personal = []
    for rule, agencies, groups in compiled.rules:
        if isinstance(rule, DenyRule):
            checks.append((ReasonCode.POLICY_DENY, rule, agencies, groups, True))
        elif isinstance(rule, NoPersonalDataRule):
            no_personal.append((agencies, groups))
            if personal:
                checks.append((ReasonCode.POLICY_NO_PERSONAL_DATA, rule, agencies, groups, True))
        elif isinstance(rule, RedOnlyToRule):
            if is_red:
                checks.append((ReasonCode.POLICY_RED_ONLY_TO, rule, agencies, groups, False))
        elif isinstance(rule, MaxTlpRule):
            if tlp_rank > TLP_RANK[rule.tlp]:
                checks.append((ReasonCode.POLICY_MAX_TLP, rule, agencies, groups, True))
        elif class_rank > rule.classification.rank:
            checks.append((ReasonCode.POLICY_MAX_CLASSIFICATION, rule, agencies, groups, True))
    return StandingPlan(policy, index, header, fixed, False, tuple(checks), tuple(no_personal))


def apply(standing: StandingPlan, member: MemberInfo, reasons: list[Reason]) -> bool:
    """Add the plan's reasons for ``member``; returns whether no-personal-data applies to it."""
    reasons.extend(standing.fixed)
    if standing.final:
        return False
    who, groups_of = member.id, member.groups
    for code, rule, agencies, groups, on_hit in standing.checks:
        if (who in agencies or not groups.isdisjoint(groups_of)) is on_hit:
            reasons.append(policy_rule(code, standing.policy, rule, member, agencies, groups))
    return any(who in a or not g.isdisjoint(groups_of) for a, g in standing.no_personal)
