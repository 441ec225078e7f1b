"""Properties of the engine over random federations, handling blocks and standing policies."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import TLP_RANK, ReasonCode, decide, may_forward
from schemas import Classification, Tlp
from tests.policies._factories import (
    COUNTRIES,
    DAY,
    GROUPS,
    NOW,
    agency_rules,
    allowed,
    build,
    decide_all,
    scenarios,
)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TLPS = [t.value for t in Tlp]
CLASSES = [c.value for c in Classification]


def _ids(s: dict[str, Any]) -> list[str]:
    return [m["id"] for m in s["federation"]["members"]]


def _handling(s: dict[str, Any]) -> dict[str, Any]:
    handling: dict[str, Any] = s["header"]["handling"]
    return handling


# --- restrictions: each returns True if it changed the scenario ------------------------------


def _raise_tlp(s: dict[str, Any], data: st.DataObject) -> bool:
    h = _handling(s)
    rank = TLPS.index(h["tlp"])
    if rank == len(TLPS) - 1:
        return False
    h["tlp"] = TLPS[rank + 1]
    return True


def _narrow_rel_to(s: dict[str, Any], data: st.DataObject) -> bool:
    h = _handling(s)
    if len(h["rel_to"]) >= 2:
        h["rel_to"].remove(data.draw(st.sampled_from(h["rel_to"])))
        return True
    if not h["rel_to"] and TLP_RANK[h["tlp"]] < TLP_RANK["AMBER"]:
        h["rel_to"] = [data.draw(st.sampled_from(_ids(s) + [f"group:{g}" for g in GROUPS]))]
        return True
    return False


def _raise_classification(s: dict[str, Any], data: st.DataObject) -> bool:
    h = _handling(s)
    rank = CLASSES.index(h["classification"])
    if rank == len(CLASSES) - 1:
        return False
    h["classification"] = CLASSES[rank + 1]
    return True


def _add_personal_section(s: dict[str, Any], data: st.DataObject) -> bool:
    nationalities = data.draw(st.lists(st.sampled_from(COUNTRIES), max_size=2, unique=True))
    s["header"]["sections"].append(
        {"id": "zz-added", "kind": "personal-data", "protected_nationalities": nationalities}
    )
    return True


def _add_nationality(s: dict[str, Any], data: st.DataObject) -> bool:
    if not s["header"]["sections"]:
        return False
    section = data.draw(st.sampled_from(s["header"]["sections"]))
    country = data.draw(st.sampled_from(COUNTRIES))
    section["protected_nationalities"] = sorted({*section["protected_nationalities"], country})
    return True


def _shrink_list(s: dict[str, Any], data: st.DataObject, key: str) -> bool:
    h = _handling(s)
    if key == "override":
        override = h["non_refoulement_override"]
        if override is None:
            return False
        override["agencies"].remove(data.draw(st.sampled_from(override["agencies"])))
        if not override["agencies"]:
            h["non_refoulement_override"] = None
        return True
    if not h[key]:
        return False
    h[key].remove(data.draw(st.sampled_from(h[key])))
    return True


def _later_embargo(s: dict[str, Any], data: st.DataObject) -> bool:
    h = _handling(s)
    candidate = NOW + data.draw(st.sampled_from([-1, 1, 2])) * DAY
    new = candidate if h["not_before"] is None else max(h["not_before"], candidate)
    if h["expires"] is not None and h["expires"] <= new:
        return False
    h["not_before"] = new
    return True


def _earlier_expiry(s: dict[str, Any], data: st.DataObject) -> bool:
    h = _handling(s)
    candidate = NOW + data.draw(st.sampled_from([-1, 0, 1])) * DAY
    new = candidate if h["expires"] is None else min(h["expires"], candidate)
    if h["not_before"] is not None and new <= h["not_before"]:
        return False
    h["expires"] = new
    return True


def _add_rule(s: dict[str, Any], data: st.DataObject) -> bool:
    rule = data.draw(agency_rules(_ids(s)))
    originator = s["header"]["originator"]
    if s["policy"] is None:
        s["policy"] = {"agency": originator, "version": 1, "issued": NOW - DAY, "rules": []}
    s["policy"]["rules"].append(rule)
    return True


def _pick_agreement(s: dict[str, Any], data: st.DataObject) -> dict[str, Any] | None:
    agreements = s["federation"]["agreements"]
    return data.draw(st.sampled_from(agreements)) if agreements else None


def _drop_agreement(s: dict[str, Any], data: st.DataObject) -> bool:
    a = _pick_agreement(s, data)
    if a is None:
        return False
    s["federation"]["agreements"].remove(a)
    return True


def _agreement_without_dp(s: dict[str, Any], data: st.DataObject) -> bool:
    a = _pick_agreement(s, data)
    if a is None:
        return False
    a["data_protection"] = False
    return True


def _narrow_categories(s: dict[str, Any], data: st.DataObject) -> bool:
    a = _pick_agreement(s, data)
    if a is None:
        return False
    if not a["categories"]:
        a["categories"] = [data.draw(st.sampled_from(["routes", "groups", "documents"]))]
    elif len(a["categories"]) >= 2:
        a["categories"].remove(data.draw(st.sampled_from(a["categories"])))
    return True


def _shorten_agreement(s: dict[str, Any], data: st.DataObject) -> bool:
    a = _pick_agreement(s, data)
    if a is None:
        return False
    end = a["valid_from"] + DAY
    a["valid_until"] = end if a["valid_until"] is None else min(a["valid_until"], end)
    return True


def _member_change(s: dict[str, Any], data: st.DataObject) -> bool:
    m = data.draw(st.sampled_from(s["federation"]["members"]))
    change = data.draw(st.sampled_from(["suspend", "aggregate", "accreditation"]))
    if change == "suspend":
        m["status"] = "suspended"
    elif change == "aggregate":
        m["aggregate_only"] = True
    else:
        m["accreditation"] = CLASSES[max(0, CLASSES.index(m["accreditation"]) - 1)]
    return True


def _guard_on(s: dict[str, Any], data: st.DataObject) -> bool:
    s["federation"]["rules"] = {"non_refoulement_guard": True, "protected_persons_guard": True}
    return True


RESTRICTIONS: dict[str, Callable[[dict[str, Any], st.DataObject], bool]] = {
    "raise TLP": _raise_tlp,
    "narrow rel_to": _narrow_rel_to,
    "raise classification": _raise_classification,
    "add personal data": _add_personal_section,
    "add protected nationality": _add_nationality,
    "shrink override": lambda s, d: _shrink_list(s, d, "override"),
    "shrink protected release": lambda s, d: _shrink_list(s, d, "protected_released_to"),
    "later embargo": _later_embargo,
    "earlier expiry": _earlier_expiry,
    "add standing rule": _add_rule,
    "drop agreement": _drop_agreement,
    "agreement without data protection": _agreement_without_dp,
    "narrow agreement categories": _narrow_categories,
    "shorten agreement": _shorten_agreement,
    "member restricted": _member_change,
    "guards on": _guard_on,
}


@SETTINGS
@given(scenario=scenarios(), name=st.sampled_from(sorted(RESTRICTIONS)), data=st.data())
def test_a_restriction_never_widens(scenario: dict[str, Any], name: str, data: Any) -> None:
    """(a) Adding any restriction never widens the allowed set nor un-withholds a section."""
    before = decide_all(scenario)
    restricted = copy.deepcopy(scenario)
    if not RESTRICTIONS[name](restricted, data):
        return
    after = decide_all(restricted)
    assert set() == allowed(after) - allowed(before)
    for agency in allowed(after):
        assert set() == set(before[agency].withheld_sections) - set(after[agency].withheld_sections)


@SETTINGS
@given(scenario=scenarios())
def test_b_red_reaches_only_named_agencies(scenario: dict[str, Any]) -> None:
    """(b) TLP:RED never reaches anyone not named individually in rel_to."""
    _handling(scenario)["tlp"] = "RED"
    named = {t for t in _handling(scenario)["rel_to"] if not t.startswith("group:")}
    assert set() == allowed(decide_all(scenario)) - named


@SETTINGS
@given(scenario=scenarios(), why=st.sampled_from(["H2", "AMBER+STRICT", "RED"]))
def test_c_no_onward_sharing_without_release(scenario: dict[str, Any], why: str) -> None:
    """(c) H2, AMBER+STRICT and RED never allow onward sharing without a release."""
    if why == "H2":
        _handling(scenario)["h2"] = True
    else:
        _handling(scenario)["tlp"] = why
    fed, head, pol = build(scenario)
    for holder in _ids(scenario):
        for target in _ids(scenario):
            decision = may_forward(head, holder, target, fed, False, NOW, agency_policy=pol)
            assert not decision.allowed
            assert ReasonCode.ONWARD_NEEDS_RELEASE in [r.code for r in decision.reasons]


def _parties(fed: dict[str, Any], agreement: dict[str, Any]) -> set[str]:
    out = set()
    for party in agreement["parties"]:
        if party.startswith("group:"):
            out |= {m["id"] for m in fed["members"] if party[6:] in m["groups"]}
        else:
            out.add(party)
    return out


def _data_protection(scenario: dict[str, Any], recipient: str) -> bool:
    """Independent oracle: an agreement with data protection in force covers the pair."""
    fed, head = scenario["federation"], scenario["header"]
    return any(
        a["data_protection"]
        and a["valid_from"] <= NOW
        and (a["valid_until"] is None or NOW < a["valid_until"])
        and (not a["categories"] or head["category"] in a["categories"])
        and {head["originator"], recipient} <= _parties(fed, a)
        for a in fed["agreements"]
    )


@SETTINGS
@given(scenario=scenarios())
def test_d_personal_data_only_under_data_protection(scenario: dict[str, Any]) -> None:
    """(d) Personal data (and released protected persons) go only under data protection."""
    decisions = decide_all(scenario)
    sections = scenario["header"]["sections"]
    for agency in allowed(decisions):
        sent = [s for s in sections if s["id"] not in decisions[agency].withheld_sections]
        if sent:
            assert _data_protection(scenario, agency)


@SETTINGS
@given(scenario=scenarios(), embargo=st.booleans())
def test_e_embargoed_or_expired_is_denied(scenario: dict[str, Any], embargo: bool) -> None:
    """(e) An embargoed or expired report is denied to everyone."""
    h = _handling(scenario)
    if embargo:
        h["not_before"], h["expires"] = NOW + DAY, None
    else:
        h["not_before"], h["expires"] = None, NOW
    assert set() == allowed(decide_all(scenario))


@SETTINGS
@given(scenario=scenarios(), kind=st.sampled_from(["personal-data", "protected-persons"]))
def test_e2_non_refoulement_guard_holds(scenario: dict[str, Any], kind: str) -> None:
    """(e2) Unless overridden, no recipient gets personal data of its own protected nationals."""
    scenario["federation"]["rules"]["non_refoulement_guard"] = True
    # A section with every member's nationality, so that the guard always has work to do.
    nationalities = sorted({m["country"] for m in scenario["federation"]["members"]})
    scenario["header"]["sections"].append(
        {"id": "zz-guarded", "kind": kind, "protected_nationalities": nationalities}
    )
    decisions = decide_all(scenario)
    countries = {m["id"]: m["country"] for m in scenario["federation"]["members"]}
    override = _handling(scenario)["non_refoulement_override"]
    overridden = set(override["agencies"]) if override else set()
    for agency in allowed(decisions):
        decision = decisions[agency]
        delivered = [
            section["id"]
            for section in scenario["header"]["sections"]
            if countries[agency] in section["protected_nationalities"]
            and section["id"] not in decision.withheld_sections
        ]
        if agency in overridden:
            assert bool(delivered) == ("non-refoulement-override-used" in decision.audit_flags)
        else:
            assert [] == delivered


def _shuffle(scenario: dict[str, Any], rnd: Any) -> dict[str, Any]:
    s = copy.deepcopy(scenario)
    fed = s["federation"]
    for key in ("members", "groups", "agreements"):
        rnd.shuffle(fed[key])
    for m in fed["members"]:
        rnd.shuffle(m["groups"])
    for a in fed["agreements"]:
        rnd.shuffle(a["parties"])
        rnd.shuffle(a["categories"])
    h = _handling(s)
    rnd.shuffle(h["rel_to"])
    rnd.shuffle(h["protected_released_to"])
    if h["non_refoulement_override"]:
        rnd.shuffle(h["non_refoulement_override"]["agencies"])
    rnd.shuffle(s["header"]["sections"])
    for section in s["header"]["sections"]:
        rnd.shuffle(section["protected_nationalities"])
    if s["policy"]:
        rnd.shuffle(s["policy"]["rules"])
        for rule in s["policy"]["rules"]:
            rnd.shuffle(rule["targets"])
    return s


@SETTINGS
@given(scenario=scenarios(), rnd=st.randoms(use_true_random=False))
def test_f_order_of_lists_does_not_matter(scenario: dict[str, Any], rnd: Any) -> None:
    """(f) The same inputs in any list order give the same decisions."""
    expected = {a: d.to_dict() for a, d in decide_all(scenario).items()}
    actual = {a: d.to_dict() for a, d in decide_all(_shuffle(scenario, rnd)).items()}
    assert expected == actual


@SETTINGS
@given(scenario=scenarios())
def test_every_decision_is_explained_and_consistent(scenario: dict[str, Any]) -> None:
    """Every decision has reasons; a denial has no obligations; decide() agrees with the set."""
    fed, head, pol = build(scenario)
    for agency, decision in decide_all(scenario).items():
        assert decision.reasons
        assert all(r.message for r in decision.reasons)
        assert {str(c) for c in ReasonCode} >= {str(r.code) for r in decision.reasons}
        if decision.allowed:
            assert "allowed" == decision.reasons[0].code
            assert "crime-prevention-only" == decision.obligations[0].code
        else:
            assert ((), ()) == (decision.obligations, decision.withheld_sections)
        assert decision == decide(head, agency, fed, pol, NOW)
