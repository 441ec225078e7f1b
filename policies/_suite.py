"""Which envelope suite a report must be sealed with: a federation rule (decision 0035).

Reports whose secrecy must outlive X25519 ("harvest now, decrypt later") can be required to
travel under suite 2, the hybrid ML-KEM-768 + X25519 suite. The rule reads only the signed
header's handling, so the broker can apply it before any key is used; the sealing node applies
the same rule so that it never sends what the broker will refuse.
"""

from __future__ import annotations

from typing import Final

from schemas import Handling, HandlingV11

from ._catalogue import ReasonCode
from ._decision import Reason
from ._federation import FederationRules

__all__ = ["SUITE_BELOW_POLICY", "SUITE_HYBRID", "required_suite", "suite_refusal"]

SUITE_HYBRID: Final[int] = 2
"""Envelope suite 2 (protocol.envelope.SUITE_MLKEM768_X25519; policies imports no protocol)."""
SUITE_BELOW_POLICY: Final[str] = ReasonCode.SUITE_BELOW_POLICY.value


def required_suite(rules: FederationRules, handling: Handling | HandlingV11) -> tuple[int, str]:
    """The least suite the federation allows for this handling, and the rule that says so
    (suite 1 and an empty reason when no rule applies)."""
    if rules.suite_2_for_tlp and handling.tlp in rules.suite_2_for_tlp:
        return SUITE_HYBRID, f"the federation requires suite 2 for TLP:{handling.tlp.value}"
    if rules.suite_2_for_classification and (
        handling.classification in rules.suite_2_for_classification
    ):
        return SUITE_HYBRID, (
            f"the federation requires suite 2 for classification {handling.classification.value}"
        )
    return 1, ""


def suite_refusal(
    rules: FederationRules, handling: Handling | HandlingV11, suite: int
) -> Reason | None:
    """Why an envelope sealed with ``suite`` may not be delivered, or None if it may."""
    least, why = required_suite(rules, handling)
    if suite >= least:
        return None
    return Reason(
        SUITE_BELOW_POLICY,
        f"sealed with suite {suite}, but {why} (post-quantum hybrid ML-KEM-768 + X25519); the "
        "originator must seal it again with suite 2, after every recipient has published a "
        "hybrid key (palermo keys rotate --pq)",
    )
