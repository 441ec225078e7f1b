"""deny_to (the originator's machine-enforced exclusions) and rel_to all-members (issue 15
items 4 and 5): the schema's rules, the engine's decision, may_forward, and monotonicity."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from policies import Federation, allowed_recipients, decide, may_forward
from schemas import EnvelopeHeader, Handling, HandlingV11
from tests.policies._factories import (
    AGENCIES,
    COUNTRIES,
    GROUPS,
    JUSTIFICATION,
    NOW,
    agreement,
    allowed,
    codes,
    decide_all,
    federation_data,
    header,
    header_data,
    member,
    scenarios,
    small_federation,
)

FED = small_federation()


def two_libyan_agencies() -> Federation:
    """small_federation plus a second Libyan agency (LBY-CG, med), party to the EU agreement."""
    return Federation.model_validate(
        federation_data(
            [
                member("ITA-GDF", "ITA", ["eu", "med"]),
                member("MLT-AFM", "MLT", ["eu", "med"]),
                member("LBY-DCIM", "LBY", ["med"]),
                member("LBY-CG", "LBY", ["med"]),
                member("AUS-ABF", "AUS", ["bali"]),
            ],
            [agreement("wide", ["group:eu", "group:med", "group:bali"], data_protection=True)],
        )
    )


# --- the schema -------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [Handling, HandlingV11])
def test_deny_to_is_sorted_unique_under_both_versions(cls: type[Handling]) -> None:
    """iir/1 and iir/1.1 blocks both take deny_to, in one canonical order like rel_to."""
    block = cls(tlp="GREEN", deny_to=["country:LBY", "group:med", "AUS-ABF", "country:LBY"])
    assert ["AUS-ABF", "country:LBY", "group:med"] == block.deny_to


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ("country:XXX", "country:<ISO 3166-1 alpha-3 code>"),
        ("country:lby", "country:<ISO 3166-1 alpha-3 code>"),
        ("libya", "neither an agency id"),
        ("group:Med", "group:<id>"),
    ],
)
def test_deny_to_refuses_what_it_cannot_read(entry: str, fragment: str) -> None:
    """An entry that is no agency, group or country is refused, saying how to write one."""
    with pytest.raises(ValidationError, match=fragment):
        Handling(tlp="GREEN", deny_to=[entry])


@pytest.mark.parametrize(
    ("handling", "fragment"),
    [
        ({"rel_to": ["MLT-AFM"], "deny_to": ["MLT-AFM"]}, "which rel_to also names"),
        ({"rel_to": ["group:med"], "deny_to": ["group:med"]}, "which rel_to also names"),
        (
            {"protected_released_to": ["MLT-AFM"], "deny_to": ["MLT-AFM"]},
            "which protected_released_to also names",
        ),
        (
            {
                "deny_to": ["MLT-AFM"],
                "non_refoulement_override": {
                    "agencies": ["MLT-AFM"],
                    "justification": JUSTIFICATION,
                },
            },
            "which non_refoulement_override also names",
        ),
    ],
)
def test_the_same_entry_allowed_and_excluded_is_refused(
    handling: dict[str, Any], fragment: str
) -> None:
    """Naming one agency or group in both rel_to (or a by-name release) and deny_to is a
    mistake the originator fixes, not something resolved in silence."""
    with pytest.raises(ValidationError, match=fragment):
        Handling(tlp="AMBER", **handling)


def test_all_members_stands_alone_and_never_with_red() -> None:
    """rel_to all-members cannot be mixed with other entries, nor used with TLP:RED."""
    with pytest.raises(ValidationError, match="all-members already names every member"):
        Handling(tlp="AMBER", rel_to=["all-members", "MLT-AFM"])
    with pytest.raises(ValidationError, match="TLP:RED goes only to agencies named"):
        Handling(tlp="RED", rel_to=["all-members"])
    assert ["all-members"] == Handling(tlp="AMBER", rel_to=["all-members"]).rel_to


def test_deny_to_travels_in_the_wire_header_and_back() -> None:
    """The signed header carries deny_to, and decodes to the same block."""
    head = header(tlp="GREEN", deny_to=["country:LBY"])
    wire = head.to_wire()
    assert ["country:LBY"] == wire["handling"]["deny_to"]
    assert head == EnvelopeHeader.model_validate(wire)
    assert "deny_to" not in header(tlp="GREEN").to_wire()["handling"]


# --- the engine -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel_to", "deny_to", "matched"),
    [
        (["group:med"], ["LBY-DCIM"], "deny_to: LBY-DCIM"),
        (["LBY-DCIM"], ["group:med"], "deny_to: group:med"),
        (["LBY-DCIM"], ["country:LBY"], "deny_to: country:LBY"),
        (["all-members"], ["country:LBY"], "deny_to: country:LBY"),
    ],
)
def test_an_exclusion_wins_over_rel_to_groups_and_agreements(
    rel_to: list[str], deny_to: list[str], matched: str
) -> None:
    """LBY-DCIM is inside rel_to (by name, group or all-members) under an agreement in force,
    and excluded by name, group or country: denied with denied-by-originator alone."""
    head = header(tlp="AMBER", rel_to=rel_to, deny_to=deny_to)
    decision = decide(head, "LBY-DCIM", FED, None, NOW)
    assert ["denied-by-originator"] == codes(decision)
    assert matched in decision.reasons[0].message


def test_a_country_excludes_every_member_agency_of_that_country() -> None:
    """country:LBY denies both Libyan agencies and nobody else."""
    head = header(tlp="GREEN", deny_to=["country:LBY"])
    decisions = allowed_recipients(head, None, two_libyan_agencies(), None, NOW)
    assert {"MLT-AFM", "AUS-ABF"} == allowed(decisions)
    assert ["denied-by-originator"] == codes(decisions["LBY-CG"])
    assert ["denied-by-originator"] == codes(decisions["LBY-DCIM"])


def test_an_unknown_agency_or_group_in_deny_to_denies_everyone() -> None:
    """A typo in an exclusion (LBY-DCMI) must not let the agency meant receive: deny-to-unknown
    for every recipient, naming the entry to correct."""
    head = header(tlp="GREEN", deny_to=["LBY-DCMI", "group:nowhere"])
    decisions = allowed_recipients(head, None, FED, None, NOW)
    assert set() == allowed(decisions)
    assert {"deny-to-unknown"} == {c for d in decisions.values() for c in codes(d)} - {
        "recipient-is-originator"
    }
    assert "LBY-DCMI, group:nowhere" in decisions["MLT-AFM"].reasons[0].message


def test_an_allowed_recipient_carries_the_never_to_obligation() -> None:
    """Everyone who does receive is told whom the originator excludes."""
    decision = decide(header(tlp="GREEN", deny_to=["country:LBY"]), "MLT-AFM", FED, None, NOW)
    [never] = [o for o in decision.obligations if o.code == "never-to"]
    assert "country:LBY" == never.value


def test_a_release_never_reaches_an_excluded_agency() -> None:
    """may_forward with the originator's release granted still denies an excluded target, and
    says only that (a release-request could not help)."""
    head = header(tlp="RED", rel_to=["MLT-AFM"], deny_to=["country:LBY"])
    decision = may_forward(head, "MLT-AFM", "LBY-DCIM", FED, True, NOW)
    assert (False, ["denied-by-originator"]) == (decision.allowed, codes(decision))
    without = may_forward(head, "MLT-AFM", "LBY-DCIM", FED, False, NOW)
    assert ["denied-by-originator"] == codes(without)


# --- all-members ------------------------------------------------------------------------------


def test_all_members_puts_every_member_inside_rel_to() -> None:
    """AMBER to all-members: every member is inside rel_to; an agreement is still needed
    (AUS-ABF has none with ITA-GDF)."""
    decisions = allowed_recipients(
        header(tlp="AMBER", rel_to=["all-members"]), None, FED, None, NOW
    )
    assert {"MLT-AFM", "LBY-DCIM"} == allowed(decisions)
    assert ["no-agreement"] == codes(decisions["AUS-ABF"])


def test_all_members_with_an_exclusion() -> None:
    """all-members and deny_to together: everyone but the excluded."""
    head = header(tlp="GREEN", rel_to=["all-members"], deny_to=["group:bali"])
    assert {"MLT-AFM", "LBY-DCIM"} == allowed(allowed_recipients(head, None, FED, None, NOW))


# --- properties -------------------------------------------------------------------------------

TARGETS = AGENCIES + [f"group:{g}" for g in GROUPS] + [f"country:{c}" for c in COUNTRIES]


@settings(max_examples=150, deadline=None)
@given(scenarios(), st.lists(st.sampled_from(TARGETS), min_size=1, max_size=3, unique=True))
def test_adding_deny_to_only_ever_narrows(scenario: dict[str, Any], deny_to: list[str]) -> None:
    """Adding exclusions never allows anyone new, and no excluded member is ever allowed."""
    before = allowed(decide_all(scenario))
    fed = scenario["federation"]
    handling = scenario["header"]["handling"]
    known = {m["id"] for m in fed["members"]}
    named = set(handling["rel_to"]) | set(handling["protected_released_to"])
    override = handling["non_refoulement_override"]
    named |= set(override["agencies"]) if override else set()
    # Keep to exclusions the schema accepts and the federation knows (an unknown one denies all).
    deny_to = [t for t in deny_to if t not in named and (":" in t or t in known)]
    changed = copy.deepcopy(scenario)
    changed["header"]["handling"]["deny_to"] = deny_to
    after = allowed(decide_all(changed))
    excluded = {
        m["id"]
        for m in fed["members"]
        if m["id"] in deny_to
        or f"country:{m['country']}" in deny_to
        or any(f"group:{g}" in deny_to for g in m["groups"])
    }
    assert after <= before
    assert set() == after & excluded
    assert before - excluded == after


def test_deny_to_from_header_data() -> None:
    """The factories' header data takes deny_to like any handling field."""
    data = header_data(tlp="GREEN", deny_to=["AUS-ABF"])
    assert ["AUS-ABF"] == EnvelopeHeader.model_validate(data).handling.deny_to


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_all_members_is_the_widest_rel_to(scenario: dict[str, Any]) -> None:
    """For any TLP but RED, rel_to all-members allows everyone the original rel_to allowed, and
    differs only in rel_to's own reasons (never an agreement, accreditation or guard)."""
    if scenario["header"]["handling"]["tlp"] == "RED":
        return
    before = decide_all(scenario)
    changed = copy.deepcopy(scenario)
    changed["header"]["handling"]["rel_to"] = ["all-members"]
    after = decide_all(changed)
    assert allowed(before) <= allowed(after)
    rel_to_codes = {"not-in-rel-to", "rel-to-empty", "rel-to-unknown"}
    for agency, decision in after.items():
        assert set(codes(decision)) - rel_to_codes == set(codes(decision))
        if not decision.allowed:
            assert set(codes(before[agency])) - rel_to_codes == set(codes(decision))
