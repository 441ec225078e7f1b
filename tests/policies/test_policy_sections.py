"""Withheld sections: the non-refoulement and protected-persons guards."""

from __future__ import annotations

from typing import Any

import pytest

from policies import Federation, decide
from tests.policies._factories import (
    JUSTIFICATION,
    NOW,
    agreement,
    codes,
    federation_data,
    member,
    personal,
    policy,
    protected,
    small_federation,
)
from tests.policies._factories import header as make_header

FED = small_federation()
GUARDS_OFF = small_federation(
    rules={"non_refoulement_guard": False, "protected_persons_guard": False}
)


def _decide(
    recipient: str, sections: list[dict[str, Any]], fed: Federation = FED, **handling: Any
) -> Any:
    handling.setdefault("tlp", "GREEN")
    pol = handling.pop("policy", None)
    return decide(make_header(sections=sections, **handling), recipient, fed, pol, NOW)


def test_non_refoulement_withholds_the_section_only() -> None:
    """Personal data of protected MLT nationals is withheld from MLT-AFM; the report still goes."""
    decision = _decide("MLT-AFM", [personal("persons", "MLT"), personal("crew")])
    assert decision.allowed
    assert ("persons",) == decision.withheld_sections
    assert ["allowed", "section-non-refoulement"] == codes(decision)
    assert (
        "section persons withheld: it holds personal data of protected nationals of MLT and "
        "MLT-AFM is an authority of that country (non-refoulement guard); to send it anyway set "
        "handling.non_refoulement_override with a justification" == decision.reasons[1].message
    )


def test_non_refoulement_override_is_audited() -> None:
    """An override for the recipient delivers the section and flags the audit log."""
    override = {"agencies": ["MLT-AFM"], "justification": JUSTIFICATION}
    decision = _decide("MLT-AFM", [personal("persons", "MLT")], non_refoulement_override=override)
    assert () == decision.withheld_sections
    assert ("non-refoulement-override-used",) == decision.audit_flags


def test_override_for_another_agency_does_not_help() -> None:
    """The override names agencies; any other stays guarded."""
    override = {"agencies": ["ITA-GDF"], "justification": JUSTIFICATION}
    decision = _decide("MLT-AFM", [personal("persons", "MLT")], non_refoulement_override=override)
    assert ("persons",) == decision.withheld_sections
    assert () == decision.audit_flags


def test_override_not_needed_is_not_flagged() -> None:
    """An override for an agency of another nationality changes nothing and is not flagged."""
    override = {"agencies": ["MLT-AFM"], "justification": JUSTIFICATION}
    decision = _decide("MLT-AFM", [personal("persons", "LBY")], non_refoulement_override=override)
    assert ((), ()) == (decision.withheld_sections, decision.audit_flags)


def test_non_refoulement_guard_can_be_switched_off() -> None:
    """With the federation guard off, nothing is withheld for nationality."""
    decision = _decide("MLT-AFM", [personal("persons", "MLT")], fed=GUARDS_OFF)
    assert () == decision.withheld_sections


@pytest.mark.parametrize(
    ("recipient", "released", "extra", "withheld", "flags", "code"),
    [
        ("MLT-AFM", [], {}, ("witnesses",), (), "section-protected-persons"),
        ("MLT-AFM", ["MLT-AFM"], {}, (), ("protected-persons-released",), None),
        ("LBY-DCIM", ["LBY-DCIM"], {}, ("witnesses",), (), "section-no-data-protection"),
        (
            "MLT-AFM",
            ["MLT-AFM"],
            {"policy": policy("ITA-GDF", {"rule": "no-personal-data", "targets": ["MLT-AFM"]})},
            ("witnesses",),
            (),
            "section-policy",
        ),
    ],
)
def test_protected_persons(
    recipient: str,
    released: list[str],
    extra: dict[str, Any],
    withheld: tuple[str, ...],
    flags: tuple[str, ...],
    code: str | None,
) -> None:
    """Witnesses and victims go only to agencies released by name, and only as personal data may."""
    decision = _decide(recipient, [protected()], protected_released_to=released, **extra)
    assert decision.allowed
    assert withheld == decision.withheld_sections
    assert flags == decision.audit_flags
    assert (["allowed"] + ([code] if code else [])) == codes(decision)


def test_protected_persons_message() -> None:
    """The reason says how to release the section."""
    decision = _decide("MLT-AFM", [protected("victims")])
    assert (
        "section victims withheld: it identifies protected persons (witnesses, victims); "
        "release it to MLT-AFM by name in handling.protected_released_to"
        == decision.reasons[1].message
    )


def test_released_protected_persons_cite_the_data_protection_basis() -> None:
    """A GREEN report whose witnesses go to MLT-AFM cites the data-protection agreement."""
    decision = _decide("MLT-AFM", [protected()], protected_released_to=["MLT-AFM"])
    assert ("eu-dp@v1",) == decision.agreements


def test_protected_persons_guard_off_still_needs_data_protection() -> None:
    """Guard off: witnesses go unreleased, but never without data protection."""
    assert () == _decide("MLT-AFM", [protected()], fed=GUARDS_OFF).withheld_sections
    assert ("witnesses",) == _decide("LBY-DCIM", [protected()], fed=GUARDS_OFF).withheld_sections
    assert () == _decide("MLT-AFM", [protected()], fed=GUARDS_OFF).audit_flags


def test_released_protected_persons_still_face_non_refoulement() -> None:
    """A released witness section with MLT nationals is still withheld from MLT-AFM."""
    decision = _decide(
        "MLT-AFM", [protected("witnesses", "MLT")], protected_released_to=["MLT-AFM"]
    )
    assert ("witnesses",) == decision.withheld_sections
    assert () == decision.audit_flags
    assert ["allowed", "section-non-refoulement"] == codes(decision)


def test_sections_are_withheld_in_id_order() -> None:
    """Withheld sections come in section-id order, whatever order the header lists them in."""
    decision = _decide("MLT-AFM", [protected("zeta"), personal("alpha", "MLT")])
    assert ("alpha", "zeta") == decision.withheld_sections


def test_denied_recipient_gets_no_withheld_list() -> None:
    """A denial withholds everything, so it lists no sections."""
    decision = _decide("LBY-DCIM", [personal("persons", "LBY")])
    assert not decision.allowed
    assert () == decision.withheld_sections


def test_aggregate_only_never_gets_protected_persons() -> None:
    """Even released by name, witnesses never go to a statistics body."""
    fed = Federation.model_validate(
        federation_data(
            [
                member("ITA-GDF", "ITA", ["eu"]),
                member("UN-STATS", "AUT", ["eu"], aggregate_only=True),
            ],
            [agreement("eu-dp", ["group:eu"], data_protection=True)],
        )
    )
    decision = _decide(
        "UN-STATS", [protected()], fed=fed, kind="statistics", protected_released_to=["UN-STATS"]
    )
    assert ("witnesses",) == decision.withheld_sections
    assert (
        "section witnesses withheld: it identifies protected persons and UN-STATS is "
        "aggregate-only and never receives personal data" == decision.reasons[1].message
    )
