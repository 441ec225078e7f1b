"""The policy engine: a pure function from (header, recipient, federation, standing policy, now)
to a decision with reasons, obligations and the sections to withhold.

Deny by default: an unknown originator, recipient, group or agency, an inactive member, a
missing legal basis — each denies, and each denial says what to change. No I/O and no clock:
``now`` is an argument, so the node, the broker and an auditor replaying the log all reach the
same decision. Every rule is documented in ``docs/handling-codes.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from schemas import ALL_MEMBERS, EnvelopeHeader, Kind, SectionKind, Tlp
from schemas._types import COUNTRY_PREFIX
from schemas.errors import PolicyError

from ._agency_policy import AgencyPolicy
from ._catalogue import TLP_RANK, AuditFlag, ReasonCode
from ._decision import Decision, Obligation, Reason, obligations_for
from ._federation import Agreement, Federation, split_targets
from ._index import FederationIndex, MemberInfo, index_of
from ._messages import (
    no_basis,
    no_data_protection,
    reason,
    unknown_deny_to,
    unknown_rel_to,
    when,
)
from ._sections import withheld_sections
from ._standing import StandingPlan, apply, plan

__all__ = ["allowed_recipients", "decide", "decide_all", "may_forward"]

_AMBER = TLP_RANK[Tlp.AMBER]
_PERSONAL = SectionKind.PERSONAL_DATA
_PROTECTED = SectionKind.PROTECTED_PERSONS
# Kinds an aggregate-only member may receive: statistics, and the tombstones that retract them
# (a retraction carries no intelligence, and a statistics body must be able to purge too).
_AGGREGATE_KINDS = frozenset({Kind.STATISTICS, Kind.RETRACTION})
# An allowed decision's summary when nobody will read its words (decide_all for the broker).
_ALLOWED_UNEXPLAINED = Reason(ReasonCode.ALLOWED, "")


class _Facts:
    """What the engine derives from a header once, whatever the recipient."""

    __slots__ = (
        "_obligations",
        "_standing",
        "class_rank",
        "deny_agencies",
        "deny_countries",
        "deny_groups",
        "header",
        "personal",
        "protected",
        "rel_agencies",
        "rel_all",
        "rel_groups",
        "tlp_rank",
    )

    def __init__(self, header: EnvelopeHeader) -> None:
        handling = header.handling
        self.header = header
        # all-members stands alone (the schema refuses it mixed): every member is inside rel_to.
        self.rel_all = handling.rel_to == [ALL_MEMBERS]
        self.rel_agencies, self.rel_groups = split_targets([] if self.rel_all else handling.rel_to)
        cut = len(COUNTRY_PREFIX)
        countries = [t for t in handling.deny_to if t.startswith(COUNTRY_PREFIX)]
        self.deny_countries = frozenset(t[cut:] for t in countries)
        self.deny_agencies, self.deny_groups = split_targets(
            [t for t in handling.deny_to if not t.startswith(COUNTRY_PREFIX)]
        )
        self.personal = tuple(s.id for s in header.sections if s.kind is _PERSONAL)
        self.protected = tuple(s.id for s in header.sections if s.kind is _PROTECTED)
        self.class_rank = handling.classification.rank
        self.tlp_rank = TLP_RANK[handling.tlp]
        self._obligations: tuple[Obligation, ...] | None = None
        self._standing: StandingPlan | None = None

    def standing(self, policy: AgencyPolicy, index: FederationIndex) -> StandingPlan:
        """The originator's standing policy planned for this header (once per policy)."""
        known = self._standing
        if known is None or known.policy is not policy or known.index is not index:
            known = self._standing = plan(
                self.header, policy, index, bool(self.personal), self.tlp_rank, self.class_rank
            )
        return known

    @property
    def obligations(self) -> tuple[Obligation, ...]:
        # Only an allowed recipient needs them; computed once per header.
        if self._obligations is None:
            self._obligations = obligations_for(self.header.handling)
        return self._obligations


# The broker decides once per recipient on the same header object; remembering the facts of
# the last header spares re-deriving them. Keyed by identity and holding a strong reference,
# so a different header can never be mistaken for it, and the answer never depends on it.
_last_facts: _Facts | None = None


def _facts(header: EnvelopeHeader) -> _Facts:
    global _last_facts
    last = _last_facts
    if last is not None and last.header is header:
        return last
    facts = _last_facts = _Facts(header)
    return facts


def decide(
    header: EnvelopeHeader,
    recipient: str,
    federation: Federation | FederationIndex,
    agency_policy: AgencyPolicy | None,
    now: datetime,
) -> Decision:
    """May ``recipient`` receive this envelope at ``now``, and under which obligations?"""
    decision = _evaluate(
        header, _facts(header), recipient, index_of(federation), agency_policy, now
    )
    return _as_release(header, decision) if header.kind is Kind.RELEASE else decision


def decide_all(
    header: EnvelopeHeader,
    recipients: Iterable[str],
    federation: Federation | FederationIndex,
    agency_policy: AgencyPolicy | None,
    now: datetime,
    *,
    explain_allowed: bool = True,
) -> dict[str, Decision]:
    """:func:`decide` for every recipient of one envelope, in the order given, in one call.

    What depends only on the header (its facts, the federation index) is derived once. The
    broker passes ``explain_allowed=False``: an allowed decision's summary reason then has an
    empty message (its code is what the audit keeps); a refusal always says what to change.
    Otherwise each decision equals ``decide(header, r, ...)`` (a property test checks it).
    """
    index = index_of(federation)
    facts = _facts(header)
    out = {
        r: _evaluate(header, facts, r, index, agency_policy, now, explain=explain_allowed)
        for r in recipients
    }
    if header.kind is Kind.RELEASE:
        return {r: _as_release(header, d) for r, d in out.items()}
    return out


def _as_release(header: EnvelopeHeader, decision: Decision) -> Decision:
    """A release is one grant: the originator's copy of one report (named in ``refs``) for the
    one agency it granted (decision 0008). More recipients, or no original, is a release wider
    than any grant, refused at every enforcement point; an allowed one is audited as such."""
    if len(header.recipients) != 1 or not header.refs:
        problem = Reason(
            ReasonCode.RELEASE_INVALID,
            f"a release goes to the one agency its grant names and refs the original report "
            f"(it lists {len(header.recipients)} recipients and {len(header.refs)} refs); "
            "releases are sealed by 'palermo release grant'",
        )
        denied = () if decision.allowed else decision.reasons
        return Decision(decision.recipient, False, (problem, *denied))
    if not decision.allowed:
        return decision
    return replace(decision, audit_flags=tuple(sorted({*decision.audit_flags,
                                                      AuditFlag.RELEASE_USED})))  # fmt: skip


def allowed_recipients(
    header: EnvelopeHeader,
    candidates: Iterable[str] | None,
    federation: Federation | FederationIndex,
    agency_policy: AgencyPolicy | None,
    now: datetime,
) -> dict[str, Decision]:
    """A decision for each candidate (every member when ``candidates`` is None), in id order.

    The allowed set is ``{a for a, d in result.items() if d.allowed}``.
    """
    index = index_of(federation)
    facts = _facts(header)
    ids = index.member_ids if candidates is None else sorted(set(candidates))
    decisions = {r: _evaluate(header, facts, r, index, agency_policy, now) for r in ids}
    if header.kind is Kind.RELEASE:
        return {r: _as_release(header, d) for r, d in decisions.items()}
    return decisions


def may_forward(
    header: EnvelopeHeader,
    holder: str,
    target: str,
    federation: Federation | FederationIndex,
    release_granted: bool,
    now: datetime,
    *,
    agency_policy: AgencyPolicy | None = None,
) -> Decision:
    """May ``holder`` pass the report on to ``target``?

    H2, TLP:AMBER+STRICT and TLP:RED forbid it without the originator's release. A release
    stands in for ``target`` being in rel_to (the originator chose it by name); every other rule
    of :func:`decide` still applies to ``target``.
    """
    index = index_of(federation)
    handling = header.handling
    reasons: list[Reason] = []
    info = index.members.get(holder)
    if info is None or not info.active:
        state = "not a member" if info is None else info.status.value
        reasons.append(
            reason(ReasonCode.HOLDER_NOT_ACTIVE, holder=holder, status=state, federation=index.id)
        )
    if handling.onward_forbidden and not release_granted:
        codes = ["H2"] if handling.h2 else []
        if handling.tlp in (Tlp.AMBER_STRICT, Tlp.RED):
            codes.append(f"TLP:{handling.tlp.value}")
        reasons.append(
            reason(
                ReasonCode.ONWARD_NEEDS_RELEASE,
                why=" and ".join(codes),
                holder=holder,
                originator=header.originator,
                agency=target,
            )
        )
    if target == holder:
        reasons.append(Reason(ReasonCode.SELF, f"{target} already holds this report"))
    facts = _facts(header)
    decision = _evaluate(header, facts, target, index, agency_policy, now, release_granted)
    if _excluded_by_originator(decision):
        # Nothing the holder could do (a release-request included) reaches an excluded target.
        return decision
    if reasons:
        return Decision(target, False, (*reasons, *(() if decision.allowed else decision.reasons)))
    if decision.allowed and release_granted:
        flags = tuple(sorted({*decision.audit_flags, AuditFlag.RELEASE_USED}))
        return replace(decision, audit_flags=flags)
    return decision


def _evaluate(
    header: EnvelopeHeader,
    facts: _Facts,
    recipient: str,
    index: FederationIndex,
    policy: AgencyPolicy | None,
    now: datetime,
    released: bool = False,
    *,
    explain: bool = True,
) -> Decision:
    if now.tzinfo is None:
        # A naive time would compare wrongly against UTC embargoes; that is a caller bug.
        raise PolicyError("decide() needs a timezone-aware 'now', e.g. datetime.now(UTC)")
    handling = header.handling
    federation = index.label
    origin = index.members.get(header.originator)
    if origin is None:
        return _deny(
            recipient,
            ReasonCode.UNKNOWN_ORIGINATOR,
            originator=header.originator,
            federation=federation,
        )
    member = index.members.get(recipient)
    if member is None:
        return _deny(
            recipient, ReasonCode.UNKNOWN_RECIPIENT, agency=recipient, federation=federation
        )
    if facts.deny_agencies or facts.deny_groups or facts.deny_countries:
        # Before every other rule, and alone: an exclusion wins over rel_to, groups, agreements
        # and releases, so no other reason's advice ("add it to rel_to") may suggest otherwise.
        excluded = _exclusion(header, facts, member, index)
        if excluded is not None:
            return Decision(recipient, False, (excluded,))
    reasons: list[Reason] = []
    add = reasons.append
    if not origin.active:
        add(
            reason(
                ReasonCode.ORIGINATOR_NOT_ACTIVE,
                originator=origin.id,
                status=origin.status.value,
                federation=federation,
            )
        )
    if not member.active:
        add(
            reason(
                ReasonCode.RECIPIENT_NOT_ACTIVE,
                agency=recipient,
                status=member.status.value,
                federation=federation,
            )
        )
    if recipient == header.originator:
        add(reason(ReasonCode.SELF, agency=recipient, kind=header.kind.value))
    if handling.not_before is not None and now < handling.not_before:
        add(reason(ReasonCode.EMBARGOED, until=when(handling.not_before)))
    if handling.expires is not None and now >= handling.expires:
        add(reason(ReasonCode.EXPIRED, at=when(handling.expires)))
    unknown_groups = facts.rel_groups - index.group_ids
    if unknown_groups or not facts.rel_agencies <= index.members.keys():
        add(unknown_rel_to(facts.rel_agencies, unknown_groups, index))
    if not released:
        _releasability(handling.tlp, facts, member, reasons)
    if member.aggregate_only:
        if header.kind not in _AGGREGATE_KINDS:
            add(reason(ReasonCode.AGGREGATE_ONLY, agency=recipient, what=f"a {header.kind.value}"))
        if facts.personal:
            add(reason(ReasonCode.AGGREGATE_ONLY, agency=recipient, what="personal data"))
        min_k = index.federation.rules.statistics_min_k
        declared = header.suppression_k
        if header.kind is Kind.STATISTICS and min_k is not None and (declared or 0) < min_k:
            add(reason(ReasonCode.SUPPRESSION_BELOW_MIN_K, agency=recipient, min_k=min_k,
                       declared="none" if declared is None else f"k={declared}"))  # fmt: skip
    if facts.class_rank > member.rank:
        add(
            reason(
                ReasonCode.ABOVE_ACCREDITATION,
                marking=handling.classification.value,
                agency=recipient,
                accreditation=member.accreditation.value,
            )
        )
    basis: tuple[Agreement, ...] = ()
    dp_basis: tuple[Agreement, ...] = ()
    if facts.tlp_rank >= _AMBER or facts.personal or facts.protected:
        between = index.agreements_between(origin.id, recipient)
        category = header.category
        usable = tuple(
            a for a in between if a.in_force(now) and (not a.categories or category in a.categories)
        )
        dp_basis = tuple(a for a in usable if a.data_protection)
        basis = usable if facts.tlp_rank >= _AMBER else ()
        if facts.tlp_rank >= _AMBER and not usable:
            add(no_basis(handling.tlp, origin.id, recipient, category, between, now))
        if facts.personal and not dp_basis:
            add(no_data_protection(facts.personal, origin.id, recipient, usable))
    no_personal_policy = False
    if policy is not None:
        no_personal_policy = apply(facts.standing(policy, index), member, reasons)
    if reasons:
        return Decision(recipient, False, tuple(reasons))
    sections = withheld_sections(
        header, member, index.federation.rules, bool(dp_basis), no_personal_policy
    )
    # The legal basis relied on: data protection wherever personal data goes (the personal-data
    # sections, or protected persons released by name), any agreement for AMBER and above, and
    # none below AMBER (a voluntary basis, 004 p.11).
    if facts.personal or any(i not in sections.withheld for i in facts.protected):
        basis = dp_basis
    refs = tuple(a.ref for a in basis)
    summary = (
        reason(
            ReasonCode.ALLOWED,
            agency=recipient,
            tlp=handling.tlp.value,
            kind=header.kind.value,
            originator=origin.id,
            grounds=f"under {', '.join(refs)}" if refs else "on a voluntary basis",
        )
        if explain
        else _ALLOWED_UNEXPLAINED
    )
    return Decision(
        recipient,
        True,
        (summary, *sections.reasons),
        facts.obligations,
        sections.withheld,
        sections.flags,
        refs,
    )


def _exclusion(
    header: EnvelopeHeader, facts: _Facts, member: MemberInfo, index: FederationIndex
) -> Reason | None:
    """The originator's deny_to: why ``member`` is excluded, or None if it is not."""
    unknown_groups = facts.deny_groups - index.group_ids
    if unknown_groups or not facts.deny_agencies <= index.members.keys():
        # A typo in an exclusion would let the agency meant receive: deny everyone instead.
        return unknown_deny_to(facts.deny_agencies, unknown_groups, index)
    if member.id in facts.deny_agencies:
        matched = member.id
    elif groups := sorted(facts.deny_groups & member.groups):
        matched = ", ".join(f"group:{g}" for g in groups)
    elif member.country in facts.deny_countries:
        matched = f"{COUNTRY_PREFIX}{member.country}"
    else:
        return None
    return reason(
        ReasonCode.DENIED_BY_ORIGINATOR,
        originator=header.originator,
        agency=member.id,
        kind=header.kind.value,
        matched=matched,
    )


def _excluded_by_originator(decision: Decision) -> bool:
    codes = {r.code for r in decision.reasons}
    return not decision.allowed and bool(
        codes & {ReasonCode.DENIED_BY_ORIGINATOR, ReasonCode.DENY_TO_UNKNOWN}
    )


def _releasability(tlp: Tlp, facts: _Facts, member: MemberInfo, reasons: list[Reason]) -> None:
    """TLP 2.0 and rel_to: who may receive at all."""
    if facts.rel_all:
        # all-members names every member (the schema refuses it with RED): nobody is outside.
        return
    named = member.id in facts.rel_agencies
    if tlp is Tlp.RED:
        if not named:
            via = sorted(facts.rel_groups & member.groups)
            how = f"is reached only through group:{via[0]}" if via else "is not named"
            reasons.append(reason(ReasonCode.RED_NOT_NAMED, agency=member.id, how=how))
    elif not facts.rel_agencies and not facts.rel_groups:
        # CLEAR and GREEN with no rel_to mean the whole federation; AMBER needs named recipients.
        if facts.tlp_rank >= _AMBER:
            reasons.append(
                reason(
                    ReasonCode.REL_TO_EMPTY,
                    tlp=tlp.value,
                    agency=member.id,
                    alternatives=_alternatives(member),
                )
            )
    elif not named and facts.rel_groups.isdisjoint(member.groups):
        reasons.append(
            reason(ReasonCode.NOT_IN_REL_TO, agency=member.id, alternatives=_alternatives(member))
        )


def _alternatives(member: MemberInfo) -> str:
    """The groups through which rel_to could reach ``member``, for a denial message."""
    return "".join(f" or use group:{g}" for g in sorted(member.groups))


def _deny(recipient: str, code: ReasonCode, **params: object) -> Decision:
    return Decision(recipient, False, (reason(code, **params),))
