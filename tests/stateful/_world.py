"""A random federation as plain data, written as the TOML an operator would sign, and the
invariants every delivery must satisfy, stated from that data without the policy engine.

The engine (``policies.decide``) is the oracle for *exactly which* agencies receive an envelope;
the checks here are the independent statements a reviewer would write down from DESIGN.md
("Handling codes and policy"), so a bug shared by the engine and its oracle use still shows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from hypothesis import strategies as st

from schemas import ALL_MEMBERS, Classification, EnvelopeHeader, Report, SectionKind

# Real ISO 3166 codes: the non-refoulement guard compares them with persons' nationalities.
POOL: Final[tuple[tuple[str, str], ...]] = (
    ("ITA-GDF", "ITA"),
    ("MLT-AFM", "MLT"),
    ("GRC-HCG", "GRC"),
    ("LBY-DCIM", "LBY"),
    ("TUR-CG", "TUR"),
    ("ESP-GC", "ESP"),
)
GROUPS: Final[tuple[str, ...]] = ("north", "south")
ROUTES: Final[tuple[str, ...]] = ("central-med", "eastern-med")
CATEGORIES: Final[tuple[str, ...]] = ("routes", "groups", "documents")
ACCREDITATIONS: Final[tuple[str, ...]] = ("restricted", "confidential", "secret")
AMBER_AND_ABOVE: Final[frozenset[str]] = frozenset({"AMBER", "AMBER+STRICT", "RED"})
GUARDED_ROLES: Final[frozenset[str]] = frozenset({"smuggled-migrant"})
PROTECTED_ROLES: Final[frozenset[str]] = frozenset({"witness", "victim"})


@dataclass(frozen=True)
class MemberSpec:
    id: str
    country: str
    groups: tuple[str, ...]
    accreditation: str
    status: str


@dataclass(frozen=True)
class AgreementSpec:
    id: str
    parties: tuple[str, ...]
    data_protection: bool
    categories: tuple[str, ...]
    in_force: bool


@dataclass(frozen=True)
class StandingSpec:
    deny: tuple[str, ...] = ()
    no_personal_data: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorldSpec:
    members: tuple[MemberSpec, ...]
    agreements: tuple[AgreementSpec, ...]
    standing: Mapping[str, StandingSpec]
    subscriptions: Mapping[str, tuple[str, ...]]

    @property
    def ids(self) -> list[str]:
        return [m.id for m in self.members]

    def member(self, agency: str) -> MemberSpec:
        return next(m for m in self.members if m.id == agency)

    def parties(self, agreement: AgreementSpec) -> set[str]:
        out: set[str] = set()
        for party in agreement.parties:
            if party.startswith("group:"):
                out |= {m.id for m in self.members if party[6:] in m.groups}
            else:
                out.add(party)
        return out

    def basis(self, a: str, b: str, category: str, *, data_protection: bool) -> bool:
        """An agreement in force binds both and covers the category (with data protection)."""
        return any(
            ag.in_force
            and {a, b} <= self.parties(ag)
            and (not ag.categories or category in ag.categories)
            and (ag.data_protection or not data_protection)
            for ag in self.agreements
        )


@st.composite
def worlds(draw: st.DrawFn) -> WorldSpec:
    n = draw(st.integers(min_value=4, max_value=5))
    picked = draw(st.permutations(POOL))[:n]
    members = tuple(
        MemberSpec(
            agency,
            country,
            tuple(sorted(draw(st.sets(st.sampled_from(GROUPS))))),
            draw(st.sampled_from(ACCREDITATIONS)),
            draw(st.sampled_from(("active", "active", "active", "active", "suspended"))),
        )
        for agency, country in picked
    )
    ids = [m.id for m in members]
    targets = ids + [f"group:{g}" for g in GROUPS]
    agreements = tuple(
        AgreementSpec(
            f"agreement-{i}",
            tuple(sorted(draw(st.sets(st.sampled_from(targets), min_size=2, max_size=3)))),
            draw(st.booleans()),
            tuple(sorted(draw(st.sets(st.sampled_from(CATEGORIES), max_size=2)))),
            draw(st.sampled_from((True, True, True, False))),
        )
        for i in range(draw(st.integers(min_value=1, max_value=4)))
    )
    standing = {}
    for agency in ids:
        others = st.sampled_from([a for a in ids if a != agency])
        standing[agency] = StandingSpec(
            tuple(draw(st.lists(others, max_size=1))), tuple(draw(st.lists(others, max_size=1)))
        )
    subscriptions = {
        agency: tuple(sorted(draw(st.sets(st.sampled_from(ROUTES), min_size=1)))) for agency in ids
    }
    return WorldSpec(members, agreements, standing, subscriptions)


# --- the documents an operator would sign ------------------------------------------------------


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def _table(name: str, items: Mapping[str, Any]) -> str:
    rows = "".join(f"{k} = {_toml(v)}\n" for k, v in items.items() if v is not None)
    return f"\n[[{name}]]\n{rows}"


def write_documents(spec: WorldSpec, directory: Path, now: datetime) -> Path:
    """federation.toml and one standing policy per agency; returns the federation file."""
    directory.mkdir(parents=True, exist_ok=True)
    year = timedelta(days=365)
    text = (
        'kind = "federation-policy"\nid = "stateful"\nname = "Random federation"\nversion = 1\n'
        f"issued = {_toml(now - year)}\n"
    )
    text += "".join(_table("groups", {"id": g, "name": g}) for g in GROUPS)
    for m in spec.members:
        text += _table("members", {"id": m.id, "name": m.id, "country": m.country,
                                   "groups": m.groups, "accreditation": m.accreditation,
                                   "status": m.status})  # fmt: skip
    for a in spec.agreements:
        start = now - year if a.in_force else now - 3 * year
        text += _table(
            "agreements",
            {"id": a.id, "version": 1, "name": a.id, "parties": a.parties,
             "purposes": ["crime-prevention"], "data_protection": a.data_protection,
             "categories": a.categories, "valid_from": start,
             "valid_until": None if a.in_force else now - year},
        )  # fmt: skip
    path = directory / "federation.toml"
    path.write_text(text)
    for agency, rules in spec.standing.items():
        (directory / f"{agency}.toml").write_text(standing_toml(agency, rules, 1, now - year))
    return path


def standing_toml(agency: str, rules: StandingSpec, version: int, issued: datetime) -> str:
    """An agency's standing policy as the TOML its operator signs."""
    policy = f'kind = "agency-policy"\nagency = "{agency}"\nversion = {version}\n'
    policy += f"issued = {_toml(issued)}\n"
    if rules.deny:
        policy += _table("rules", {"rule": "deny", "targets": rules.deny})
    if rules.no_personal_data:
        policy += _table("rules", {"rule": "no-personal-data", "targets": rules.no_personal_data})
    return policy


# --- independent invariants --------------------------------------------------------------------


@dataclass
class Sent:
    """One envelope the test put on the wire, and what the model expects of it."""

    header: EnvelopeHeader
    data: bytes
    expected: frozenset[str]
    """Who must receive it: the engine's verdict at send time (the oracle)."""
    revoked_then: frozenset[str]
    granted: frozenset[str] = field(default_factory=frozenset)
    standing: Mapping[str, StandingSpec] = field(default_factory=dict)
    """The standing policies in force when it was sent (they tighten during a run)."""
    careless: bool = False
    """Sealed and published by the test itself, so the originator's node has no record of it."""


def header_violations(spec: WorldSpec, sent: Sent, holder: str) -> list[str]:
    """Rules any delivered envelope obeys, stated from the federation data alone."""
    h = sent.header
    handling = h.handling
    origin, to = spec.member(h.originator), spec.member(holder)
    rel_agencies = {t for t in handling.rel_to if not t.startswith("group:")}
    rel_groups = {t[6:] for t in handling.rel_to if t.startswith("group:")}
    tlp = handling.tlp.value
    personal = any(s.kind is SectionKind.PERSONAL_DATA for s in h.sections)
    category = h.category.value
    out: list[str] = []

    def bad(condition: bool, what: str) -> None:
        if condition:
            out.append(f"{holder} holds {h.kind.value} {h.id} from {h.originator}: {what}")

    bad(holder == h.originator, "its own envelope came back to it")
    bad(holder not in h.recipients, "it is not among the signed recipients")
    bad(origin.status != "active", f"the originator is {origin.status}")
    bad(to.status != "active", f"the recipient is {to.status}")
    bad(holder in sent.revoked_then, "the recipient was revoked before it was sent")
    bad(h.originator in sent.revoked_then, "the originator was revoked before it was sent")
    bad(tlp == "RED" and holder not in rel_agencies, "RED, but the recipient is not named")
    # rel_to ["all-members"] (issue 15 item 5) reaches every member; deny_to wins over it.
    everyone = handling.rel_to == [ALL_MEMBERS]
    reachable = everyone or holder in rel_agencies or bool(rel_groups & set(to.groups))
    bad(tlp != "RED" and bool(handling.rel_to) and not reachable, "outside rel_to")
    excluded = {t for t in handling.deny_to if not t.startswith(("group:", "country:"))}
    excluded_groups = {t[6:] for t in handling.deny_to if t.startswith("group:")}
    excluded_countries = {t[8:] for t in handling.deny_to if t.startswith("country:")}
    bad(
        holder in excluded
        or bool(excluded_groups & set(to.groups))
        or to.country in excluded_countries,
        "the originator excluded it (deny_to)",
    )
    bad(tlp in AMBER_AND_ABOVE and not handling.rel_to, f"{tlp} with an empty rel_to")
    bad(
        tlp in AMBER_AND_ABOVE
        and not spec.basis(h.originator, holder, category, data_protection=False),
        f"{tlp} without an agreement in force for {category}",
    )
    bad(
        personal and not spec.basis(h.originator, holder, category, data_protection=True),
        "personal data without a data-protection agreement",
    )
    bad(
        handling.classification.rank > Classification(to.accreditation).rank,
        f"{handling.classification.value} above accreditation {to.accreditation}",
    )
    standing = (sent.standing or spec.standing).get(h.originator, StandingSpec())
    bad(holder in standing.deny, "the originator's standing policy denies it")
    bad(personal and holder in standing.no_personal_data, "standing policy: no personal data")
    bad(h.kind.value == "release" and holder not in sent.granted, "a release nobody granted")
    return out


def plaintext_violations(spec: WorldSpec, sent: Sent, holder: str, report: Report) -> list[str]:
    """What the opened report itself must not show this holder."""
    to = spec.member(holder)
    handling = sent.header.handling
    out = []
    for p in report.persons:
        role = p.role.value
        if role in PROTECTED_ROLES and holder not in handling.protected_released_to:
            out.append(f"{holder} reads {role} {p.ref} of {sent.header.id}, not released to it")
        guarded = role in GUARDED_ROLES or p.protection_status.value != "none"
        if guarded and p.nationality == to.country and p.names:
            out.append(
                f"{holder} ({to.country}) reads the identity of its own national {p.ref} in "
                f"{sent.header.id}: non-refoulement guard"
            )
    return out


def persons_data(nationalities: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """Persons for a report: (role, nationality) pairs, each with a name (personal data)."""
    return [
        {
            "ref": f"p{i}",
            "role": role,
            "legal_status": "not-applicable" if role in GUARDED_ROLES else "suspected",
            "nationality": nationality,
            "names": [f"Person {i}"],
        }
        for i, (role, nationality) in enumerate(nationalities)
    ]
