"""The originator's standing policy: rules that only restrict, and obligations."""

from __future__ import annotations

from typing import Any

import pytest

from policies import decide, obligations_for
from schemas import Handling
from tests.policies._factories import (
    NOW,
    codes,
    example_federation,
    example_policy,
    header,
    personal,
    policy,
    small_federation,
)

FED = small_federation()


@pytest.mark.parametrize(
    ("rule", "handling", "recipient", "expected"),
    [
        ({"rule": "deny", "targets": ["MLT-AFM"]}, {"tlp": "GREEN"}, "MLT-AFM", ["policy-deny"]),
        ({"rule": "deny", "targets": ["group:eu"]}, {"tlp": "GREEN"}, "MLT-AFM", ["policy-deny"]),
        ({"rule": "deny", "targets": ["group:eu"]}, {"tlp": "GREEN"}, "AUS-ABF", ["allowed"]),
        (
            {"rule": "no-personal-data", "targets": ["MLT-AFM"]},
            {"tlp": "GREEN"},
            "MLT-AFM",
            ["allowed"],
        ),
        (
            {"rule": "no-personal-data", "targets": ["MLT-AFM"]},
            {"tlp": "GREEN", "sections": [personal()]},
            "MLT-AFM",
            ["policy-no-personal-data"],
        ),
        (
            {"rule": "red-only-to", "targets": ["AUS-ABF"]},
            {"tlp": "RED", "rel_to": ["MLT-AFM"]},
            "MLT-AFM",
            ["policy-red-only-to"],
        ),
        (
            {"rule": "red-only-to", "targets": ["group:eu"]},
            {"tlp": "RED", "rel_to": ["MLT-AFM"]},
            "MLT-AFM",
            ["allowed"],
        ),
        (
            {"rule": "red-only-to", "targets": ["AUS-ABF"]},
            {"tlp": "AMBER", "rel_to": ["MLT-AFM"]},
            "MLT-AFM",
            ["allowed"],
        ),
        (
            {"rule": "max-tlp", "targets": ["group:med"], "tlp": "GREEN"},
            {"tlp": "AMBER", "rel_to": ["MLT-AFM"]},
            "MLT-AFM",
            ["policy-max-tlp"],
        ),
        (
            {"rule": "max-tlp", "targets": ["group:med"], "tlp": "AMBER"},
            {"tlp": "AMBER", "rel_to": ["MLT-AFM"]},
            "MLT-AFM",
            ["allowed"],
        ),
        (
            {"rule": "max-tlp", "targets": ["group:med"], "tlp": "AMBER+STRICT"},
            {"tlp": "RED", "rel_to": ["MLT-AFM"]},
            "MLT-AFM",
            ["policy-max-tlp"],
        ),
        (
            {"rule": "max-classification", "targets": ["MLT-AFM"], "classification": "restricted"},
            {"tlp": "GREEN", "classification": "confidential"},
            "MLT-AFM",
            ["policy-max-classification"],
        ),
        (
            {"rule": "max-classification", "targets": ["MLT-AFM"], "classification": "restricted"},
            {"tlp": "GREEN", "classification": "restricted"},
            "MLT-AFM",
            ["allowed"],
        ),
        (
            {"rule": "deny", "targets": ["group:nowhere"]},
            {"tlp": "GREEN"},
            "MLT-AFM",
            ["policy-unknown-group"],
        ),
    ],
)
def test_standing_policy_rules(
    rule: dict[str, Any], handling: dict[str, Any], recipient: str, expected: list[str]
) -> None:
    """Each standing-policy rule restricts exactly its targets."""
    pol = policy("ITA-GDF", rule)
    assert expected == codes(decide(header(**handling), recipient, FED, pol, NOW))


def test_policy_of_another_agency_denies() -> None:
    """Passing a standing policy that is not the originator's is refused, not ignored."""
    decision = decide(header(tlp="GREEN"), "MLT-AFM", FED, policy("AUS-ABF"), NOW)
    assert ["policy-wrong-agency"] == codes(decision)
    assert (
        "the standing policy given is AUS-ABF's, but the report is ITA-GDF's; pass the "
        "originator's own policy" == decision.reasons[0].message
    )


def test_policy_message_quotes_the_note() -> None:
    """A policy denial names the policy, the target matched and the rule's note."""
    pol = policy("ITA-GDF", {"rule": "deny", "targets": ["group:med"], "note": "under review"})
    decision = decide(header(tlp="GREEN"), "LBY-DCIM", FED, pol, NOW)
    assert (
        "ITA-GDF's standing policy v1 sends nothing to group:med (under review); leave "
        "LBY-DCIM out or ask ITA-GDF's policy owner" == decision.reasons[0].message
    )


def test_example_policy_keeps_personal_data_from_lby() -> None:
    """ITA-GDF's example policy refuses personal data to LBY-DCIM on top of the federation."""
    fed = example_federation()
    head = header(tlp="AMBER", rel_to=["LBY-DCIM"], sections=[personal()])
    decision = decide(head, "LBY-DCIM", fed, example_policy("ITA-GDF"), NOW)
    assert ["no-data-protection", "policy-no-personal-data"] == codes(decision)


def test_policy_copy_with_new_rules_is_recompiled() -> None:
    """A model_copy with other rules is not served the original's compiled rules."""
    pol = policy("ITA-GDF", {"rule": "deny", "targets": ["MLT-AFM"]})
    assert not decide(header(tlp="GREEN"), "MLT-AFM", FED, pol, NOW).allowed
    copied = pol.model_copy(update={"rules": []})
    assert decide(header(tlp="GREEN"), "MLT-AFM", FED, copied, NOW).allowed


def test_standing_plan_follows_the_policy_and_federation_for_one_header() -> None:
    """The same header object decided under another policy, or another federation, is judged
    by that one: the per-header plan of the standing policy is never reused across them."""
    head = header(tlp="GREEN")
    deny = policy("ITA-GDF", {"rule": "deny", "targets": ["MLT-AFM"]})
    assert ["policy-deny"] == codes(decide(head, "MLT-AFM", FED, deny, NOW))
    assert ["allowed"] == codes(decide(head, "MLT-AFM", FED, policy("ITA-GDF"), NOW))
    assert ["policy-deny"] == codes(decide(head, "MLT-AFM", FED, deny, NOW))
    unknown = policy("ITA-GDF", {"rule": "deny", "targets": ["group:nowhere"]})
    assert ["policy-unknown-group"] == codes(decide(head, "MLT-AFM", FED, unknown, NOW))
    assert ["policy-wrong-agency"] == codes(decide(head, "MLT-AFM", FED, policy("AUS-ABF"), NOW))
    # A rule that cannot bite this header (RED-only for a GREEN report) is left out of the plan.
    red_only = policy("ITA-GDF", {"rule": "red-only-to", "targets": ["AUS-ABF"]})
    assert ["allowed"] == codes(decide(head, "MLT-AFM", FED, red_only, NOW))


@pytest.mark.parametrize(
    ("handling", "expected"),
    [
        (
            {"tlp": "CLEAR"},
            ["crime-prevention-only", "no-judicial-disclosure", "no-action-without-permission"],
        ),
        (
            {"tlp": "CLEAR", "judicial_use": True},
            ["crime-prevention-only", "no-action-without-permission"],
        ),
        (
            {"tlp": "GREEN"},
            [
                "crime-prevention-only",
                "no-judicial-disclosure",
                "community-only",
                "no-action-without-permission",
            ],
        ),
        (
            {"tlp": "AMBER"},
            [
                "crime-prevention-only",
                "no-judicial-disclosure",
                "need-to-know",
                "no-action-without-permission",
            ],
        ),
        (
            {"tlp": "AMBER+STRICT"},
            [
                "crime-prevention-only",
                "no-judicial-disclosure",
                "no-onward-dissemination",
                "no-action-without-permission",
            ],
        ),
        (
            {"tlp": "RED"},
            [
                "crime-prevention-only",
                "no-judicial-disclosure",
                "no-onward-dissemination",
                "no-action-without-permission",
            ],
        ),
        (
            {"tlp": "CLEAR", "h2": True},
            [
                "crime-prevention-only",
                "no-judicial-disclosure",
                "no-onward-dissemination",
                "no-action-without-permission",
            ],
        ),
        (
            {"tlp": "CLEAR", "action": "A2"},
            ["crime-prevention-only", "no-judicial-disclosure", "covert-use-only"],
        ),
        (
            {"tlp": "CLEAR", "action": "A3", "action_text": "board the vessel"},
            ["crime-prevention-only", "no-judicial-disclosure", "overt-action-as-specified"],
        ),
        (
            {"tlp": "CLEAR", "h3": [{"code": "b", "text": "B"}, {"code": "a", "text": "A"}]},
            [
                "crime-prevention-only",
                "no-judicial-disclosure",
                "other-restriction",
                "other-restriction",
                "no-action-without-permission",
            ],
        ),
        (
            {"tlp": "CLEAR", "classification": "restricted"},
            [
                "crime-prevention-only",
                "no-judicial-disclosure",
                "no-action-without-permission",
                "protective-marking",
            ],
        ),
        (
            {"tlp": "CLEAR", "expires": NOW},
            [
                "crime-prevention-only",
                "no-judicial-disclosure",
                "no-action-without-permission",
                "purge-at",
            ],
        ),
    ],
)
def test_obligations(handling: dict[str, Any], expected: list[str]) -> None:
    """Each handling code puts its obligation on the recipient, in a fixed order."""
    assert expected == [o.code for o in obligations_for(Handling.model_validate(handling))]


def test_obligation_values_and_messages() -> None:
    """Parametrised obligations carry their value and show it in the message."""
    handling = Handling(
        tlp="RED",
        h2=True,
        h3=[{"code": "no-contact", "text": "do not approach the master"}],
        action="A3",
        action_text="board the vessel",
        classification="confidential",
        expires=NOW,
    )
    by_code = {o.code: o for o in obligations_for(handling)}
    assert (
        "H1: not to be disclosed in judicial proceedings without the originator's "
        "permission; formalise through mutual legal assistance (Convention art. 18)."
        == (by_code["no-judicial-disclosure"].message)
    )
    assert (
        "Not to be disseminated beyond your organisation without the originator's "
        "release (H2, TLP:RED); send a release-request."
        == (by_code["no-onward-dissemination"].message)
    )
    assert ("no-contact", "H3 no-contact: do not approach the master") == (
        by_code["other-restriction"].value,
        by_code["other-restriction"].message,
    )
    assert "board the vessel" == by_code["overt-action-as-specified"].value
    assert "confidential" == by_code["protective-marking"].value
    assert "2026-03-01T12:00:00Z" == by_code["purge-at"].value
    assert {
        "code": "purge-at",
        "source": "Palermo federation policy",
        "message": "Purge the plaintext at 2026-03-01T12:00:00Z; the report expires then.",
        "value": "2026-03-01T12:00:00Z",
    } == by_code["purge-at"].to_dict()
