"""The federation rule that requires suite 2 (post-quantum hybrid) by TLP or classification."""

from __future__ import annotations

import pytest

from policies import (
    SUITE_BELOW_POLICY,
    SUITE_HYBRID,
    Federation,
    FederationRules,
    ReasonCode,
    required_suite,
    suite_refusal,
)
from schemas import Handling

RULES = FederationRules(suite_2_for_tlp=["RED"], suite_2_for_classification=["secret"])
RED = Handling(tlp="RED", rel_to=["MLT-AFM"])
AMBER = Handling(tlp="AMBER", rel_to=["MLT-AFM"])
AMBER_SECRET = Handling(tlp="AMBER", rel_to=["MLT-AFM"], classification="secret")


@pytest.mark.parametrize(
    ("handling", "least", "why"),
    [(RED, 2, "TLP:RED"), (AMBER_SECRET, 2, "classification secret"), (AMBER, 1, "")],
    ids=["red", "secret", "amber"],
)
def test_required_suite(handling: Handling, least: int, why: str) -> None:
    got, reason = required_suite(RULES, handling)
    assert least == got
    assert why in reason
    assert bool(why) == bool(reason)


def test_no_rule_requires_nothing() -> None:
    assert (1, "") == required_suite(FederationRules(), RED)


def test_suite_1_for_red_is_refused_with_a_reason_that_says_what_to_do() -> None:
    reason = suite_refusal(RULES, RED, 1)
    assert reason is not None
    assert SUITE_BELOW_POLICY == reason.code == ReasonCode.SUITE_BELOW_POLICY
    assert "suite 1" in reason.message
    assert "TLP:RED" in reason.message
    assert "keys rotate --pq" in reason.message
    assert suite_refusal(RULES, RED, SUITE_HYBRID) is None
    assert suite_refusal(RULES, AMBER, 1) is None


def test_rules_parse_from_the_federation_toml_and_stay_out_when_unset() -> None:
    base = """
id = "med"
name = "Med"
version = 1
issued = 1795392000000
[[members]]
id = "MLT-AFM"
name = "Malta"
country = "MLT"
accreditation = "secret"
"""
    fed = Federation.from_toml(base + '[rules]\nsuite_2_for_tlp = ["RED"]\n')
    assert ["RED"] == [t.value for t in fed.rules.suite_2_for_tlp or []]
    plain = Federation.from_toml(base)
    assert b"suite_2" not in plain.canonical_bytes()
