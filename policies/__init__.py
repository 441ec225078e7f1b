"""Palermo policies: the handling-code catalogue, the federation policy and agencies' standing
policies (signed TOML documents), and the policy engine — a pure function from
(header, recipient, federation, standing policy, now) to a decision with reasons, obligations
and the sections to withhold. No I/O.

Trust documents (certificates, key bundles, revocations, signatures) are in
:mod:`protocol.trust`, which is not imported here so that the engine stays free of crypto.
"""

from ._agency_policy import (
    AgencyPolicy,
    DenyRule,
    MaxClassificationRule,
    MaxTlpRule,
    NoPersonalDataRule,
    RedOnlyToRule,
    Rule,
)
from ._catalogue import (
    CATALOGUE,
    OBLIGATIONS,
    TLP_RANK,
    AuditFlag,
    CodeInfo,
    ObligationCode,
    ReasonCode,
    Source,
)
from ._decision import Decision, Obligation, Reason, obligations_for
from ._disclosure import DEFAULT_SUPPRESSION_K, check_disclosure, suppress
from ._disclosure_linked import LinkedReturnsDisclose, suppress_linked
from ._embargo import embargo_ahead, envelope_age, release_time
from ._engine import allowed_recipients, decide, decide_all, may_forward
from ._federation import (
    Agreement,
    Federation,
    FederationRules,
    Group,
    Member,
    MemberStatus,
    PolicyDocument,
    canonical_json,
)
from ._index import FederationIndex, MemberInfo, compile_federation
from ._retraction import decide_retraction
from ._suite import SUITE_BELOW_POLICY, SUITE_HYBRID, required_suite, suite_refusal
from ._tearline import TEAR_LINE_REASONS, tear_line_candidates

__all__ = [
    "CATALOGUE",
    "DEFAULT_SUPPRESSION_K",
    "OBLIGATIONS",
    "SUITE_BELOW_POLICY",
    "SUITE_HYBRID",
    "TEAR_LINE_REASONS",
    "TLP_RANK",
    "AgencyPolicy",
    "Agreement",
    "AuditFlag",
    "CodeInfo",
    "Decision",
    "DenyRule",
    "Federation",
    "FederationIndex",
    "FederationRules",
    "Group",
    "LinkedReturnsDisclose",
    "MaxClassificationRule",
    "MaxTlpRule",
    "Member",
    "MemberInfo",
    "MemberStatus",
    "NoPersonalDataRule",
    "Obligation",
    "ObligationCode",
    "PolicyDocument",
    "Reason",
    "ReasonCode",
    "RedOnlyToRule",
    "Rule",
    "Source",
    "allowed_recipients",
    "canonical_json",
    "check_disclosure",
    "compile_federation",
    "decide",
    "decide_all",
    "decide_retraction",
    "embargo_ahead",
    "envelope_age",
    "may_forward",
    "obligations_for",
    "release_time",
    "required_suite",
    "suite_refusal",
    "suppress",
    "suppress_linked",
    "tear_line_candidates",
]
