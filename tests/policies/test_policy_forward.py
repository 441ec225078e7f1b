"""may_forward() for onward dissemination, and allowed_recipients() for a whole federation."""

from __future__ import annotations

from typing import Any

import pytest

from policies import allowed_recipients, decide, may_forward
from tests.policies._factories import (
    NOW,
    allowed,
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
    ("handling", "target", "release", "expected"),
    [
        (
            {"tlp": "AMBER", "h2": True, "rel_to": ["group:med"]},
            "LBY-DCIM",
            False,
            ["onward-needs-release"],
        ),
        (
            {"tlp": "RED", "rel_to": ["MLT-AFM"]},
            "AUS-ABF",
            False,
            ["onward-needs-release", "red-not-named", "no-agreement"],
        ),
        ({"tlp": "GREEN", "h2": True}, "AUS-ABF", False, ["onward-needs-release"]),
        (
            {"tlp": "AMBER+STRICT", "rel_to": ["group:med"]},
            "LBY-DCIM",
            False,
            ["onward-needs-release"],
        ),
        (
            {"tlp": "RED", "rel_to": ["MLT-AFM", "LBY-DCIM"]},
            "LBY-DCIM",
            False,
            ["onward-needs-release"],
        ),
        ({"tlp": "GREEN", "h2": True}, "AUS-ABF", True, ["allowed"]),
        ({"tlp": "AMBER+STRICT", "rel_to": ["group:med"]}, "LBY-DCIM", True, ["allowed"]),
        ({"tlp": "RED", "rel_to": ["MLT-AFM"]}, "LBY-DCIM", True, ["allowed"]),
        ({"tlp": "RED", "rel_to": ["MLT-AFM"]}, "AUS-ABF", True, ["no-agreement"]),
        ({"tlp": "AMBER", "rel_to": ["group:med"]}, "LBY-DCIM", False, ["allowed"]),
        ({"tlp": "AMBER", "rel_to": ["MLT-AFM"]}, "LBY-DCIM", False, ["not-in-rel-to"]),
        ({"tlp": "GREEN"}, "AUS-ABF", False, ["allowed"]),
        ({"tlp": "GREEN"}, "ITA-GDF", False, ["recipient-is-originator"]),
    ],
)
def test_may_forward(
    handling: dict[str, Any], target: str, release: bool, expected: list[str]
) -> None:
    """H2, AMBER+STRICT and RED need a release; otherwise the target must pass decide()."""
    head = header("ITA-GDF", **handling)
    decision = may_forward(head, "MLT-AFM", target, FED, release, NOW)
    assert expected == codes(decision)


def test_release_is_audited() -> None:
    """A forward under a release carries the release-used flag."""
    head = header("ITA-GDF", tlp="RED", rel_to=["MLT-AFM"])
    decision = may_forward(head, "MLT-AFM", "LBY-DCIM", FED, True, NOW)
    assert ("release-used",) == decision.audit_flags


def test_release_waives_nothing_but_rel_to() -> None:
    """A release does not let personal data go without data protection."""
    head = header("ITA-GDF", tlp="RED", rel_to=["MLT-AFM"], sections=[personal()])
    decision = may_forward(head, "MLT-AFM", "LBY-DCIM", FED, True, NOW)
    assert ["no-data-protection"] == codes(decision)


def test_onward_message() -> None:
    """The reason names the codes, the originator and the request to send."""
    head = header("ITA-GDF", tlp="RED", h2=True, rel_to=["MLT-AFM"])
    decision = may_forward(head, "MLT-AFM", "LBY-DCIM", FED, False, NOW)
    assert (
        "H2 and TLP:RED forbid onward dissemination without the originator's release; MLT-AFM "
        "must send ITA-GDF a release-request for LBY-DCIM" == decision.reasons[0].message
    )


@pytest.mark.parametrize(
    ("holder", "expected"),
    [("NOPE-X", "holder-not-active"), ("MLT-AFM", "recipient-is-originator")],
)
def test_holder_checks(holder: str, expected: str) -> None:
    """The holder must be an active member, and cannot forward to itself."""
    head = header("ITA-GDF", tlp="GREEN")
    decision = may_forward(head, holder, holder, FED, False, NOW)
    assert expected == codes(decision)[0]
    assert not decision.allowed


def test_forward_applies_the_originators_standing_policy() -> None:
    """The originator's standing policy binds onward sharing too."""
    pol = policy("ITA-GDF", {"rule": "deny", "targets": ["AUS-ABF"]})
    head = header("ITA-GDF", tlp="GREEN")
    decision = may_forward(head, "MLT-AFM", "AUS-ABF", FED, False, NOW, agency_policy=pol)
    assert ["policy-deny"] == codes(decision)


def test_allowed_recipients_covers_every_member_in_order() -> None:
    """With no candidates, every member is decided, in id order."""
    decisions = allowed_recipients(header(tlp="AMBER", rel_to=["group:med"]), None, FED, None, NOW)
    assert ["AUS-ABF", "ITA-GDF", "LBY-DCIM", "MLT-AFM"] == list(decisions)
    assert {"LBY-DCIM", "MLT-AFM"} == allowed(decisions)


def test_allowed_recipients_matches_decide() -> None:
    """Each decision in the set is the one decide() gives."""
    head = header(tlp="AMBER", rel_to=["group:med", "AUS-ABF"], sections=[personal("p", "MLT")])
    decisions = allowed_recipients(
        head, ["MLT-AFM", "NOPE-X", "LBY-DCIM", "MLT-AFM"], FED, None, NOW
    )
    assert ["LBY-DCIM", "MLT-AFM", "NOPE-X"] == list(decisions)
    for agency, decision in decisions.items():
        assert decide(head, agency, FED, None, NOW) == decision
    assert ["unknown-recipient"] == codes(decisions["NOPE-X"])


@pytest.mark.parametrize(
    ("originator", "handling", "sections", "expected"),
    [
        (
            "ITA-GDF",
            {"tlp": "AMBER", "rel_to": ["group:med-coastal"]},
            [],
            {"ESP-GC", "GRC-HCG", "LBY-DCIM", "MLT-AFM", "TUR-CG"},
        ),
        (
            "ITA-GDF",
            {"tlp": "AMBER", "rel_to": ["group:med-coastal"]},
            [personal()],
            {"ESP-GC", "GRC-HCG", "MLT-AFM"},
        ),
        ("MLT-AFM", {"tlp": "AMBER", "rel_to": ["LBY-DCIM"]}, [], set()),
        (
            "AUS-ABF",
            {"tlp": "GREEN"},
            [],
            {"ESP-GC", "GRC-HCG", "IDN-IMI", "ITA-GDF", "LBY-DCIM", "MLT-AFM", "SRB-BP", "TUR-CG"},
        ),
        ("AUS-ABF", {"tlp": "AMBER", "rel_to": ["group:bali-process"]}, [], {"IDN-IMI"}),
        ("GRC-HCG", {"tlp": "RED", "rel_to": ["SRB-BP", "TUR-CG"]}, [], {"TUR-CG"}),
    ],
)
def test_example_federation_scenarios(
    originator: str, handling: dict[str, Any], sections: list[Any], expected: set[str]
) -> None:
    """Realistic reports in the example federation reach exactly the expected partners."""
    head = header(originator, sections=sections, **handling)
    fed = example_federation()
    pol = example_policy(originator) if originator in {"ITA-GDF", "AUS-ABF", "GRC-HCG"} else None
    assert expected == allowed(allowed_recipients(head, None, fed, pol, NOW))
