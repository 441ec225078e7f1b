"""Tear-lines: which refusals a version without the personal-data and protected-persons
sections can cure.

A partner refused only because the report holds personal data (no data-protection agreement,
the originator's ``no-personal-data`` rule, an aggregate-only member) could receive the report
below the tear-line: the body as every recipient already gets it (persons reduced to role
stubs, no identifiers), without the sealed sections. A partner refused for anything else
(rel_to, TLP, accreditation, a ``deny`` rule, membership) is not a candidate: taking personal
data out changes nothing for it, and the tear-line must never become a way round those rules.

Being a candidate is not being allowed: the derivative is decided like any report, on its own
header, at all three enforcement points. An aggregate-only member refused for personal data is
a candidate, and is still refused the derivative unless its kind is ``statistics``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ._catalogue import ReasonCode
from ._decision import Decision

__all__ = ["TEAR_LINE_REASONS", "tear_line_candidates"]

TEAR_LINE_REASONS: Final[frozenset[str]] = frozenset(
    {
        ReasonCode.NO_DATA_PROTECTION,
        ReasonCode.POLICY_NO_PERSONAL_DATA,
        ReasonCode.AGGREGATE_ONLY,
    }
)
"""Reason codes of refusals that a version without personal data may cure."""


def tear_line_candidates(decisions: Mapping[str, Decision]) -> list[str]:
    """The refused recipients whose every reason is one of :data:`TEAR_LINE_REASONS`, in id
    order: the partners a tear-line version is sealed for (and decided again)."""
    return sorted(
        agency
        for agency, decision in decisions.items()
        if not decision.allowed
        and decision.reasons
        and all(r.code in TEAR_LINE_REASONS for r in decision.reasons)
    )
