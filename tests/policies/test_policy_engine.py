"""decide(): TLP and rel_to, legal basis, personal data, membership, time, accreditation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from policies import Federation, ReasonCode, compile_federation, decide
from schemas.errors import PolicyError
from tests.policies._factories import (
    DAY,
    NOW,
    agreement,
    codes,
    federation_data,
    header,
    member,
    personal,
    small_federation,
)

FED = small_federation()


@pytest.mark.parametrize(
    ("tlp", "rel_to", "recipient", "expected"),
    [
        ("CLEAR", [], "AUS-ABF", []),
        ("GREEN", [], "AUS-ABF", []),
        ("GREEN", [], "LBY-DCIM", []),
        ("CLEAR", ["MLT-AFM"], "AUS-ABF", ["not-in-rel-to"]),
        ("GREEN", ["MLT-AFM"], "AUS-ABF", ["not-in-rel-to"]),
        ("GREEN", ["group:bali"], "AUS-ABF", []),
        ("GREEN", ["group:eu"], "MLT-AFM", []),
        ("AMBER", [], "MLT-AFM", ["rel-to-empty"]),
        ("AMBER", ["group:eu"], "MLT-AFM", []),
        ("AMBER", ["MLT-AFM"], "MLT-AFM", []),
        ("AMBER", ["group:med"], "LBY-DCIM", []),
        ("AMBER", ["group:eu"], "LBY-DCIM", ["not-in-rel-to"]),
        ("AMBER", ["AUS-ABF"], "AUS-ABF", ["no-agreement"]),
        ("AMBER", ["group:med"], "AUS-ABF", ["not-in-rel-to", "no-agreement"]),
        ("AMBER+STRICT", [], "MLT-AFM", ["rel-to-empty"]),
        ("AMBER+STRICT", ["group:eu"], "MLT-AFM", []),
        ("AMBER+STRICT", ["MLT-AFM"], "LBY-DCIM", ["not-in-rel-to"]),
        ("RED", [], "MLT-AFM", ["red-not-named"]),
        ("RED", ["group:eu"], "MLT-AFM", ["red-not-named"]),
        ("RED", ["MLT-AFM"], "MLT-AFM", []),
        ("RED", ["MLT-AFM", "group:med"], "LBY-DCIM", ["red-not-named"]),
        ("RED", ["AUS-ABF"], "AUS-ABF", ["no-agreement"]),
    ],
)
def test_tlp_and_rel_to(tlp: str, rel_to: list[str], recipient: str, expected: list[str]) -> None:
    """Each TLP label admits exactly the recipients FIRST TLP 2.0 and rel_to allow."""
    decision = decide(header(tlp=tlp, rel_to=rel_to), recipient, FED, None, NOW)
    assert (expected or ["allowed"]) == codes(decision)
    assert (not expected) == decision.allowed


@pytest.mark.parametrize("rel_to", [["group:nowhere"], ["NOPE-X"], ["MLT-AFM", "group:nowhere"]])
@pytest.mark.parametrize("tlp", ["CLEAR", "GREEN", "AMBER", "RED"])
def test_unknown_rel_to_entry_denies_everyone(tlp: str, rel_to: list[str]) -> None:
    """A rel_to entry the federation does not know denies every recipient (deny by default)."""
    decision = decide(header(tlp=tlp, rel_to=rel_to), "MLT-AFM", FED, None, NOW)
    assert not decision.allowed
    assert "rel-to-unknown" in codes(decision)


def test_not_in_rel_to_message_suggests_the_groups() -> None:
    """The reason names the recipient and the groups that would reach it."""
    decision = decide(header(tlp="AMBER", rel_to=["MLT-AFM"]), "LBY-DCIM", FED, None, NOW)
    assert "LBY-DCIM is not in rel_to; add it or use group:med" == decision.reasons[0].message


def test_red_message_explains_group_entries_do_not_count() -> None:
    """RED through a group says the agency must be named."""
    decision = decide(header(tlp="RED", rel_to=["group:eu"]), "MLT-AFM", FED, None, NOW)
    assert (
        "TLP:RED goes only to agencies named individually in rel_to; MLT-AFM is reached only "
        "through group:eu: add MLT-AFM to rel_to"
    ) == decision.reasons[0].message


def _fed_with(*agreements: dict[str, Any]) -> Federation:
    return Federation.model_validate(
        federation_data(
            [member("ITA-GDF", "ITA", ["med"]), member("LBY-DCIM", "LBY", ["med"])],
            list(agreements),
        )
    )


@pytest.mark.parametrize(
    ("agreements", "category", "expected", "basis"),
    [
        ([], "routes", "no-agreement", ()),
        ([agreement("m", ["ITA-GDF", "LBY-DCIM"])], "groups", "allowed", ("m@v1",)),
        ([agreement("m", ["group:med"])], "routes", "allowed", ("m@v1",)),
        (
            [agreement("m", ["ITA-GDF", "LBY-DCIM"], categories=["routes"])],
            "routes",
            "allowed",
            ("m@v1",),
        ),
        (
            [agreement("m", ["ITA-GDF", "LBY-DCIM"], categories=["routes"])],
            "groups",
            "no-agreement",
            (),
        ),
        ([agreement("m", ["ITA-GDF", "LBY-DCIM"], valid_until=NOW)], "routes", "no-agreement", ()),
        (
            [agreement("m", ["ITA-GDF", "LBY-DCIM"], valid_from=NOW + DAY)],
            "routes",
            "no-agreement",
            (),
        ),
        ([agreement("m", ["ITA-GDF", "LBY-DCIM"], valid_from=NOW)], "routes", "allowed", ("m@v1",)),
        ([agreement("m", ["ITA-GDF"]), agreement("n", ["LBY-DCIM"])], "routes", "no-agreement", ()),
        (
            [agreement("b", ["group:med"]), agreement("a", ["ITA-GDF", "LBY-DCIM"], version=2)],
            "routes",
            "allowed",
            ("a@v2", "b@v1"),
        ),
    ],
)
def test_amber_needs_an_agreement_in_force(
    agreements: list[dict[str, Any]], category: str, expected: str, basis: tuple[str, ...]
) -> None:
    """AMBER and above need an agreement in force at now, covering both parties and the category."""
    head = header(tlp="AMBER", rel_to=["LBY-DCIM"], category=category)
    decision = decide(head, "LBY-DCIM", _fed_with(*agreements), None, NOW)
    assert [expected] == codes(decision)
    assert basis == decision.agreements


@pytest.mark.parametrize(
    ("agreements", "message"),
    [
        (
            [],
            "TLP:AMBER needs an agreement in force between ITA-GDF and LBY-DCIM covering "
            "category groups, and there is none: lower the TLP to GREEN, or ask the federation "
            "operator to record the agreement",
        ),
        (
            [agreement("m", ["ITA-GDF", "LBY-DCIM"], categories=["routes", "documents"])],
            "TLP:AMBER needs an agreement in force between ITA-GDF and LBY-DCIM covering category "
            "groups: m@v1 covers only documents, routes",
        ),
        (
            [
                agreement(
                    "m", ["ITA-GDF", "LBY-DCIM"], valid_from=NOW - 10 * DAY, valid_until=NOW - DAY
                )
            ],
            "TLP:AMBER needs an agreement in force between ITA-GDF and LBY-DCIM covering category "
            "groups: m@v1 is not in force (2026-02-19T12:00:00Z to 2026-02-28T12:00:00Z)",
        ),
    ],
)
def test_no_agreement_message_diagnoses(agreements: list[dict[str, Any]], message: str) -> None:
    """The no-agreement reason says which agreement failed and why."""
    head = header(tlp="AMBER", rel_to=["LBY-DCIM"], category="groups")
    decision = decide(head, "LBY-DCIM", _fed_with(*agreements), None, NOW)
    assert [message] == [r.message for r in decision.reasons]


@pytest.mark.parametrize("tlp", ["CLEAR", "GREEN"])
def test_clear_and_green_need_no_agreement(tlp: str) -> None:
    """Below AMBER the exchange is voluntary: no agreement, none cited."""
    decision = decide(header(tlp=tlp), "AUS-ABF", FED, None, NOW)
    assert decision.allowed
    assert () == decision.agreements
    assert decision.reasons[0].message.endswith("on a voluntary basis")


@pytest.mark.parametrize(
    ("tlp", "recipient", "expected", "basis"),
    [
        ("AMBER", "MLT-AFM", ["allowed"], ("eu-dp@v1",)),
        ("GREEN", "MLT-AFM", ["allowed"], ("eu-dp@v1",)),
        ("AMBER", "LBY-DCIM", ["no-data-protection"], ()),
        ("GREEN", "LBY-DCIM", ["no-data-protection"], ()),
        ("GREEN", "AUS-ABF", ["no-data-protection"], ()),
        ("AMBER", "AUS-ABF", ["no-agreement", "no-data-protection"], ()),
    ],
)
def test_personal_data_needs_data_protection(
    tlp: str, recipient: str, expected: list[str], basis: tuple[str, ...]
) -> None:
    """A personal-data report goes only under an agreement with data protection, at any TLP."""
    head = header(tlp=tlp, rel_to=["group:med", "AUS-ABF"], sections=[personal()])
    decision = decide(head, recipient, FED, None, NOW)
    assert expected == codes(decision)
    assert basis == decision.agreements


def test_no_data_protection_message() -> None:
    """The reason names the sections, the agreement without data protection, and the fix."""
    head = header(tlp="AMBER", rel_to=["LBY-DCIM"], sections=[personal("persons")])
    decision = decide(head, "LBY-DCIM", FED, None, NOW)
    assert (
        "the report holds personal data (section persons) and no agreement in force between "
        "ITA-GDF and LBY-DCIM provides for data protection (ita-lby@v1 does not); send "
        "LBY-DCIM a version without the personal-data sections"
    ) == decision.reasons[0].message


@pytest.mark.parametrize(
    ("classification", "recipient", "allowed"),
    [
        ("unclassified", "LBY-DCIM", True),
        ("restricted", "LBY-DCIM", True),
        ("confidential", "LBY-DCIM", False),
        ("confidential", "MLT-AFM", True),
        ("secret", "MLT-AFM", False),
        ("secret", "AUS-ABF", True),
    ],
)
def test_classification_against_accreditation(
    classification: str, recipient: str, allowed: bool
) -> None:
    """A recipient receives markings up to its accreditation only."""
    head = header(tlp="GREEN", classification=classification)
    decision = decide(head, recipient, FED, None, NOW)
    assert allowed == decision.allowed
    assert (["allowed"] if allowed else ["above-accreditation"]) == codes(decision)


def test_above_accreditation_message() -> None:
    """The reason gives both levels and what to do."""
    decision = decide(header(tlp="GREEN", classification="secret"), "MLT-AFM", FED, None, NOW)
    assert (
        "the report is marked secret but MLT-AFM is accredited only to confidential; sanitise "
        "and downgrade it, or leave MLT-AFM out"
    ) == decision.reasons[0].message


@pytest.mark.parametrize(
    ("not_before", "expires", "expected"),
    [
        (NOW + DAY, None, ["embargoed"]),
        (NOW, None, ["allowed"]),
        (NOW - DAY, None, ["allowed"]),
        (None, NOW, ["expired"]),
        (None, NOW - DAY, ["expired"]),
        (None, NOW + DAY, ["allowed"]),
        (NOW + DAY, NOW + 2 * DAY, ["embargoed"]),
    ],
)
def test_embargo_and_expiry(
    not_before: datetime | None, expires: datetime | None, expected: list[str]
) -> None:
    """Nothing is delivered before not_before, nor at or after expires."""
    head = header(tlp="GREEN", not_before=not_before, expires=expires)
    assert expected == codes(decide(head, "MLT-AFM", FED, None, NOW))


def test_embargo_and_expiry_messages() -> None:
    """The reasons give the time in UTC."""
    embargoed = header(tlp="GREEN", not_before=NOW + DAY)
    expired = header(tlp="GREEN", expires=NOW - DAY)
    assert (
        "embargoed until 2026-03-02T12:00:00Z; it is delivered from then on"
        == decide(embargoed, "MLT-AFM", FED, None, NOW).reasons[0].message
    )
    assert (
        "expired at 2026-02-28T12:00:00Z; it is no longer delivered: send a new report if the "
        "intelligence still holds" == decide(expired, "MLT-AFM", FED, None, NOW).reasons[0].message
    )


def _with_status(agency: str, status: str) -> Federation:
    data = FED.model_dump(mode="json")
    for m in data["members"]:
        if m["id"] == agency:
            m["status"] = status
    return Federation.model_validate(data)


@pytest.mark.parametrize(
    ("fed", "originator", "recipient", "expected"),
    [
        (FED, "ITA-GDF", "NOPE-X", ["unknown-recipient"]),
        (FED, "NOPE-X", "MLT-AFM", ["unknown-originator"]),
        (FED, "ITA-GDF", "ITA-GDF", ["recipient-is-originator"]),
        (_with_status("MLT-AFM", "suspended"), "ITA-GDF", "MLT-AFM", ["recipient-not-active"]),
        (_with_status("MLT-AFM", "withdrawn"), "ITA-GDF", "MLT-AFM", ["recipient-not-active"]),
        (_with_status("ITA-GDF", "suspended"), "ITA-GDF", "MLT-AFM", ["originator-not-active"]),
    ],
)
def test_membership(fed: Federation, originator: str, recipient: str, expected: list[str]) -> None:
    """Only active members send and receive; nobody receives its own report."""
    decision = decide(header(originator, tlp="GREEN"), recipient, fed, None, NOW)
    assert expected == codes(decision)


def test_unknown_recipient_message() -> None:
    """The reason says how to fix it."""
    decision = decide(header(tlp="GREEN"), "NOPE-X", FED, None, NOW)
    assert (
        "NOPE-X is not a member of federation test-federation v1; remove it from the recipients "
        "or ask the federation operator to admit it"
    ) == decision.reasons[0].message


def _stats_fed() -> Federation:
    data = FED.model_dump(mode="json")
    data["members"].append(member("UN-STATS", "AUT", ["eu"], aggregate_only=True))
    return Federation.model_validate(data)


@pytest.mark.parametrize(
    ("kind", "sections", "expected"),
    [
        ("statistics", [], ["allowed"]),
        ("retraction", [], ["allowed"]),
        ("report", [], ["aggregate-only"]),
        ("alert", [], ["aggregate-only"]),
        ("statistics", [personal()], ["aggregate-only"]),
        ("report", [personal()], ["aggregate-only", "aggregate-only"]),
    ],
)
def test_aggregate_only_member(kind: str, sections: list[Any], expected: list[str]) -> None:
    """A statistics body receives statistics (and retractions) only, never personal data."""
    head = header(tlp="AMBER", rel_to=["group:eu"], kind=kind, sections=sections)
    assert expected == codes(decide(head, "UN-STATS", _stats_fed(), None, NOW))


def test_aggregate_only_message() -> None:
    """The reason says what the member accepts."""
    head = header(tlp="GREEN", kind="report")
    assert (
        "UN-STATS is an aggregate-only member (statistics body): it receives only statistics, "
        "never a report; send it aggregated figures"
        == decide(head, "UN-STATS", _stats_fed(), None, NOW).reasons[0].message
    )


def test_every_failing_rule_is_reported() -> None:
    """A denial lists all failing rules, so one round trip fixes the report."""
    head = header(
        tlp="RED", rel_to=["MLT-AFM"], classification="secret", expires=NOW, sections=[personal()]
    )
    decision = decide(head, "LBY-DCIM", FED, None, NOW)
    assert [
        "expired",
        "red-not-named",
        "above-accreditation",
        "no-data-protection",
    ] == codes(decision)


def test_naive_now_is_a_caller_error() -> None:
    """A timezone-naive now raises PolicyError instead of comparing wrongly."""
    with pytest.raises(PolicyError):
        decide(header(tlp="GREEN"), "MLT-AFM", FED, None, NOW.replace(tzinfo=None))


def test_to_dict() -> None:
    """to_dict gives the decision as plain data."""
    decision = decide(header(tlp="AMBER", rel_to=["MLT-AFM"]), "MLT-AFM", FED, None, NOW)
    data = decision.to_dict()
    assert "allow" == data["decision"]
    assert [
        {
            "code": "allowed",
            "message": "MLT-AFM may receive this TLP:AMBER report from ITA-GDF under eu-dp@v1",
        }
    ] == data["reasons"]
    assert [
        "crime-prevention-only",
        "no-judicial-disclosure",
        "need-to-know",
        "no-action-without-permission",
    ] == [o["code"] for o in data["obligations"]]
    assert [] == data["withheld_sections"]
    assert ["eu-dp@v1"] == data["agreements"]
    assert "deny" == decide(header(tlp="RED"), "MLT-AFM", FED, None, NOW).to_dict()["decision"]


def test_decide_accepts_the_compiled_index() -> None:
    """The federation and its compiled index give the same decision."""
    head = header(tlp="AMBER", rel_to=["group:med"])
    assert decide(head, "LBY-DCIM", FED, None, NOW) == decide(
        head, "LBY-DCIM", compile_federation(FED), None, NOW
    )


def test_reason_codes_are_catalogued() -> None:
    """Every code a decision can carry is a ReasonCode."""
    decision = decide(header(tlp="RED"), "MLT-AFM", FED, None, NOW)
    assert ReasonCode.RED_NOT_NAMED == decision.reasons[0].code
