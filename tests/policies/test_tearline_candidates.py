"""tear_line_candidates(): who a version without personal data is sealed for, and a property:
taking the sections out never admits a partner refused for anything else."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from policies import TEAR_LINE_REASONS, Decision, Reason, ReasonCode, tear_line_candidates
from tests.policies._factories import decide_all, scenarios

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _refused(agency: str, *codes: str) -> Decision:
    return Decision(agency, False, tuple(Reason(c, "why") for c in codes))


def test_only_refusals_entirely_about_personal_data_are_candidates() -> None:
    """One reason outside TEAR_LINE_REASONS, or an allowed decision, is never a candidate."""
    decisions = {
        "A": _refused("A", ReasonCode.NO_DATA_PROTECTION),
        "B": _refused("B", ReasonCode.NO_DATA_PROTECTION, ReasonCode.POLICY_NO_PERSONAL_DATA),
        "C": _refused("C", ReasonCode.AGGREGATE_ONLY, ReasonCode.AGGREGATE_ONLY),
        "D": _refused("D", ReasonCode.NO_DATA_PROTECTION, ReasonCode.NOT_IN_REL_TO),
        "E": _refused("E", ReasonCode.POLICY_DENY),
        "F": Decision("F", True, (Reason(ReasonCode.ALLOWED, "ok"),)),
        "G": _refused("G"),
    }
    assert ["A", "B", "C"] == tear_line_candidates(decisions)


@SETTINGS
@given(scenarios())
def test_without_sections_only_candidates_can_become_allowed(scenario: dict[str, Any]) -> None:
    """Deciding the same header without its sections admits no partner that is not a
    candidate, and refuses a candidate only as aggregate-only (a kind other than statistics)."""
    before = decide_all(scenario)
    scenario["header"]["sections"] = []
    after = decide_all(scenario)
    candidates = set(tear_line_candidates(before))
    for agency, decision in after.items():
        if decision.allowed and not before[agency].allowed:
            assert agency in candidates
        if agency in candidates and not decision.allowed:
            assert {ReasonCode.AGGREGATE_ONLY} == {r.code for r in decision.reasons}
    assert {ReasonCode.NO_DATA_PROTECTION, ReasonCode.POLICY_NO_PERSONAL_DATA} < TEAR_LINE_REASONS
