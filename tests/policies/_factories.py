"""Builders and hypothesis strategies shared by the policy tests.

Everything is built from plain data (dicts and lists) and validated into the real models, so a
property test can shuffle or restrict the data and rebuild.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from policies import AgencyPolicy, Decision, Federation, allowed_recipients
from schemas import Category, Classification, EnvelopeHeader, Kind, Tlp

EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HEADER_ID = "0190a5e0-0000-7000-8000-000000000000"
JUSTIFICATION = "the persons are nationals returning voluntarily with UNHCR involvement"


def example_federation() -> Federation:
    return Federation.from_toml((EXAMPLES / "federation.toml").read_text())


def example_policy(agency: str) -> AgencyPolicy:
    return AgencyPolicy.from_toml((EXAMPLES / f"{agency}.toml").read_text())


def member(
    agency: str,
    country: str,
    groups: list[str] | None = None,
    accreditation: str = "secret",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": agency,
        "name": agency,
        "country": country,
        "groups": groups or [],
        "accreditation": accreditation,
        **extra,
    }


def agreement(agreement_id: str, parties: list[str], **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": agreement_id,
        "version": 1,
        "name": agreement_id,
        "parties": parties,
        "purposes": ["crime-prevention"],
        "valid_from": NOW - 365 * DAY,
    }
    data.update(extra)
    return data


def federation_data(
    members: list[dict[str, Any]],
    agreements: list[dict[str, Any]] | None = None,
    groups: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    named = groups if groups is not None else sorted({g for m in members for g in m["groups"]})
    return {
        "id": "test-federation",
        "name": "Test federation",
        "version": 1,
        "issued": NOW - 30 * DAY,
        "groups": [{"id": g, "name": g} for g in named],
        "members": members,
        "agreements": agreements or [],
        **extra,
    }


def small_federation(**changes: Any) -> Federation:
    """ITA (eu, med), MLT (eu, med), LBY (med), AUS (bali): EU agreement with data protection,
    ITA–LBY without, nothing with AUS."""
    data = federation_data(
        [
            member("ITA-GDF", "ITA", ["eu", "med"]),
            member("MLT-AFM", "MLT", ["eu", "med"], "confidential"),
            member("LBY-DCIM", "LBY", ["med"], "restricted"),
            member("AUS-ABF", "AUS", ["bali"]),
        ],
        [
            agreement("eu-dp", ["group:eu"], data_protection=True),
            agreement("ita-lby", ["ITA-GDF", "LBY-DCIM"], categories=["routes"]),
        ],
    )
    data.update(changes)
    return Federation.model_validate(data)


def header_data(
    originator: str = "ITA-GDF",
    *,
    kind: str = "report",
    category: str = "routes",
    sections: list[dict[str, Any]] | None = None,
    **handling: Any,
) -> dict[str, Any]:
    handling.setdefault("tlp", "AMBER")
    return {
        "id": HEADER_ID,
        "originator": originator,
        "kid": "0" * 16,
        "created": NOW - DAY,
        "kind": kind,
        "route": "central-med",
        "category": category,
        "handling": handling,
        "recipients": ["ZZ-NOBODY"],
        "sections": sections or [],
    }


def header(originator: str = "ITA-GDF", **kwargs: Any) -> EnvelopeHeader:
    return EnvelopeHeader.model_validate(header_data(originator, **kwargs))


def personal(section_id: str = "persons", *nationalities: str) -> dict[str, Any]:
    return {
        "id": section_id,
        "kind": "personal-data",
        "protected_nationalities": list(nationalities),
    }


def protected(section_id: str = "witnesses", *nationalities: str) -> dict[str, Any]:
    return {
        "id": section_id,
        "kind": "protected-persons",
        "protected_nationalities": list(nationalities),
    }


def policy(agency: str, *rules: dict[str, Any]) -> AgencyPolicy:
    return AgencyPolicy.model_validate(
        {"agency": agency, "version": 1, "issued": NOW - DAY, "rules": list(rules)}
    )


def allowed(decisions: dict[str, Decision]) -> set[str]:
    return {a for a, d in decisions.items() if d.allowed}


def codes(decision: Decision) -> list[str]:
    return [str(r.code) for r in decision.reasons]


# --- hypothesis strategies ------------------------------------------------------------------

AGENCIES = ["ITA-X", "MLT-X", "GRC-X", "LBY-X", "AUS-X", "IDN-X", "TUR-X"]
COUNTRIES = ["ITA", "MLT", "LBY", "AUS", "TUR"]
GROUPS = ["g-a", "g-b", "g-c"]
TARGETS = AGENCIES + [f"group:{g}" for g in GROUPS]
CATEGORIES = [c.value for c in Category]
_OFFSETS = [-400, -30, -1, 1, 30]  # days from NOW: lapsed, current and future windows
_ACCREDITATIONS = ["secret", "secret", "confidential", "restricted", "unclassified"]
_CLASSIFICATIONS = ["unclassified"] * 3 + ["restricted", "confidential", "secret"]


def _subset(items: list[str], min_size: int = 0, max_size: int | None = None) -> Any:
    return st.lists(st.sampled_from(items), min_size=min_size, max_size=max_size, unique=True)


@st.composite
def federations(draw: st.DrawFn) -> dict[str, Any]:
    """Federation data: 2–7 members in up to 3 groups, up to 5 agreements of every shape."""
    ids = draw(_subset(AGENCIES, 2, 7))
    members = [
        {
            "id": a,
            "name": a,
            "country": draw(st.sampled_from(COUNTRIES)),
            "groups": draw(_subset(GROUPS, 1, 3)),
            "accreditation": draw(st.sampled_from(_ACCREDITATIONS)),
            "aggregate_only": draw(st.sampled_from([False] * 7 + [True])),
            "status": draw(st.sampled_from(["active"] * 10 + ["suspended", "withdrawn"])),
        }
        for a in ids
    ]
    parties = ids + [f"group:{g}" for g in GROUPS]
    agreements = []
    for n in range(draw(st.integers(0, 5))):
        start = draw(st.sampled_from([-400, -400, -30, -1, 1]))
        end = draw(st.sampled_from([None, None, None, *[o for o in _OFFSETS if o > start]]))
        agreements.append(
            {
                "id": f"agr-{n}",
                "version": draw(st.integers(1, 3)),
                "name": f"agreement {n}",
                "parties": draw(_subset(parties, 1, 4)),
                "purposes": ["crime-prevention"],
                "data_protection": draw(st.booleans()),
                "categories": draw(st.just([]) | st.just([]) | _subset(CATEGORIES, 1, 3)),
                "valid_from": NOW + start * DAY,
                "valid_until": None if end is None else NOW + end * DAY,
            }
        )
    if draw(st.integers(0, 2)):
        # A community-wide agreement with data protection, as the EU or a regional convention
        # would give, so that personal data and AMBER have somewhere to go.
        agreements.append(
            {
                "id": "wide",
                "version": 1,
                "name": "community-wide",
                "parties": [f"group:{g}" for g in GROUPS],
                "purposes": ["crime-prevention"],
                "data_protection": True,
                "categories": [],
                "valid_from": NOW - 400 * DAY,
                "valid_until": None,
            }
        )
    rules = {
        "non_refoulement_guard": draw(st.sampled_from([True, True, True, False])),
        "protected_persons_guard": draw(st.sampled_from([True, True, True, False])),
    }
    return federation_data(members, agreements, groups=list(GROUPS), rules=rules)


@st.composite
def handlings(draw: st.DrawFn, ids: list[str]) -> dict[str, Any]:
    action = draw(st.sampled_from(["A1", "A2", "A3"]))
    # Weighted towards reports that can go somewhere, so the properties see allowed decisions.
    not_before = draw(st.sampled_from([None] * 6 + [-2, 2]))
    expires = draw(st.sampled_from([None] * 4 + [-1, 3]))
    if not_before is not None and expires is not None and expires <= not_before:
        expires = None
    override = draw(_subset(ids, 0, 3))
    targets = ids + [f"group:{g}" for g in GROUPS]
    return {
        "tlp": draw(st.sampled_from([t.value for t in Tlp])),
        "rel_to": draw(_subset(targets, 1, 5)) if draw(st.integers(0, 3)) else [],
        "judicial_use": draw(st.booleans()),
        "h2": draw(st.booleans()),
        "h3": draw(st.sampled_from([[], [{"code": "no-contact", "text": "do not approach"}]])),
        "action": action,
        "action_text": "intercept at sea" if action == "A3" else None,
        "classification": draw(st.sampled_from(_CLASSIFICATIONS)),
        "not_before": None if not_before is None else NOW + not_before * DAY,
        "expires": None if expires is None else NOW + expires * DAY,
        "non_refoulement_override": (
            {"agencies": override, "justification": JUSTIFICATION} if override else None
        ),
        "protected_released_to": draw(_subset(ids, 0, 3)),
    }


@st.composite
def sections(draw: st.DrawFn) -> list[dict[str, Any]]:
    kinds = draw(st.lists(st.sampled_from(["personal-data", "protected-persons"]), max_size=3))
    return [
        {
            "id": f"s{i}",
            "kind": kind,
            "protected_nationalities": draw(_subset(COUNTRIES, 0, 2)),
        }
        for i, kind in enumerate(kinds)
    ]


@st.composite
def agency_rules(draw: st.DrawFn, ids: list[str]) -> dict[str, Any]:
    rule = draw(
        st.sampled_from(
            ["deny", "no-personal-data", "red-only-to", "max-tlp", "max-classification"]
        )
    )
    data: dict[str, Any] = {
        "rule": rule,
        "targets": draw(_subset(ids + [f"group:{g}" for g in GROUPS], 1, 3)),
    }
    if rule == "max-tlp":
        data["tlp"] = draw(st.sampled_from([t.value for t in Tlp]))
    if rule == "max-classification":
        data["classification"] = draw(st.sampled_from([c.value for c in Classification]))
    return data


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """A whole decision input as data: federation, header and (maybe) a standing policy."""
    fed = draw(federations())
    ids = [m["id"] for m in fed["members"]]
    originator = draw(st.sampled_from(ids))
    if draw(st.integers(0, 9)):
        # An inactive originator denies everything; the table tests cover it.
        next(m for m in fed["members"] if m["id"] == originator)["status"] = "active"
    head = header_data(
        originator,
        kind=draw(st.sampled_from(["report"] * 4 + [k.value for k in Kind])),
        category=draw(st.sampled_from(CATEGORIES)),
        sections=draw(sections()),
        **draw(handlings(ids)),
    )
    rules = draw(st.lists(agency_rules(ids), max_size=2))
    pol = {"agency": originator, "version": 1, "issued": NOW - DAY, "rules": rules}
    return {"federation": fed, "header": head, "policy": pol if rules else None}


def build(scenario: dict[str, Any]) -> tuple[Federation, EnvelopeHeader, AgencyPolicy | None]:
    data = copy.deepcopy(scenario)
    pol = data["policy"]
    return (
        Federation.model_validate(data["federation"]),
        EnvelopeHeader.model_validate(data["header"]),
        None if pol is None else AgencyPolicy.model_validate(pol),
    )


def decide_all(scenario: dict[str, Any]) -> dict[str, Decision]:
    fed, head, pol = build(scenario)
    return allowed_recipients(head, None, fed, pol, NOW)
