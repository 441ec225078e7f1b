"""decide_all (issue 19): one call for all of an envelope's recipients, equal to decide() per
recipient; the broker's variant only leaves out the words of an allowance."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from policies import Decision, ReasonCode, decide, decide_all
from tests.policies._factories import AGENCIES, NOW, build, scenarios


def _unexplained(decision: Decision) -> Decision:
    """What the broker's decide_all gives: an allowance's summary reason without its words."""
    if not decision.allowed:
        return decision
    reasons = tuple(
        replace(r, message="") if r.code == ReasonCode.ALLOWED else r for r in decision.reasons
    )
    return replace(decision, reasons=reasons)


@given(scenarios(), st.lists(st.sampled_from(AGENCIES), min_size=1, max_size=7, unique=True))
def test_decide_all_equals_decide_per_recipient(
    scenario: dict[str, Any], wanted: list[str]
) -> None:
    """Same decisions, reasons, obligations and order as one decide() per recipient, including
    recipients the federation does not know and the originator itself."""
    fed, head, pol = build(scenario)
    one_by_one = {r: decide(head, r, fed, pol, NOW) for r in wanted}
    together = decide_all(head, wanted, fed, pol, NOW)
    assert list(together) == wanted
    assert together == one_by_one
    terse = decide_all(head, wanted, fed, pol, NOW, explain_allowed=False)
    assert terse == {r: _unexplained(d) for r, d in one_by_one.items()}
    for decision in terse.values():
        # A refusal always says what to change; only an allowance may come without words.
        assert decision.allowed or all(r.message for r in decision.reasons)
