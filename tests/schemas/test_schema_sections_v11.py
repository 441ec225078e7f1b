"""IIR 1.1 relations and sealed sections: a person's links, identifiers and payments travel in
that person's section, and nothing of a withheld person is left in what a recipient reads."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import PERSONAL_DATA, PROTECTED_PERSONS, Report, join, parse_report, partition
from schemas._links import PERSON_ITEMS, PERSON_LINKS, named_persons
from schemas._report import PROTECTED_STATUSES, STUB_FIELDS, Person
from schemas._terms import PersonRole
from tests.schemas._support import COUNTRIES, minimal

ROLES = [r.value for r in PersonRole]
STATUSES = ["migrant", "asylum-seeker", "refugee", "unaccompanied-minor", "none"]
_marks = st.sampled_from(["alpha", "bravo", "charlie"])

# --- generated iir/1.1 reports -----------------------------------------------------------------


def _person(draw: st.DrawFn, ref: str, groups: list[str]) -> dict[str, Any]:
    """A person whose every personal detail carries its ref, so a leak can be searched for."""
    person: dict[str, Any] = {
        "ref": ref,
        "role": draw(st.sampled_from(ROLES)),
        "roles": draw(st.lists(st.sampled_from(ROLES), unique=True, max_size=3)),
        "names": [f"name of {ref}"],
    }
    optional: dict[str, Any] = {
        "aliases": st.just([f"alias of {ref}"]),
        "nationality": st.sampled_from(COUNTRIES),
        "protection_status": st.sampled_from(STATUSES),
        "notes": st.just(f"notes on {ref}"),
        "legal_status": st.sampled_from(["convicted", "suspected", "unknown"]),
        "group_ref": st.sampled_from(groups) if groups else st.nothing(),
        "proceedings": st.just(
            [{"stage": "charged", "jurisdiction": "ITA", "offences": ["smuggling-of-migrants"]}]
        ),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            person[key] = draw(strategy)
    if not person["roles"]:
        del person["roles"]
    return person


def _some(draw: st.DrawFn, refs: list[str], max_size: int = 3) -> list[str]:
    return draw(st.lists(st.sampled_from(refs), max_size=max_size)) if refs else []


def _one(draw: st.DrawFn, refs: list[str]) -> str | None:
    return draw(st.sampled_from([None, *refs]))


def _set(item: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """``item`` with the fields that are not None or empty."""
    return item | {k: v for k, v in fields.items() if v not in (None, [])}


@st.composite
def reports_v11(draw: st.DrawFn) -> dict[str, Any]:
    """An iir/1.1 report whose relations name persons in every place a person can be named."""
    refs = [f"p{i}" for i in range(draw(st.integers(0, 6)))]
    group_refs = [f"g{i}" for i in range(draw(st.integers(0, 2)))]
    transport_refs = [f"t{i}" for i in range(draw(st.integers(0, 2)))]
    persons = [_person(draw, ref, group_refs) for ref in refs]
    groups = [
        _set(
            {"ref": g},
            member_refs=_some(draw, refs),
            countries=draw(st.lists(st.sampled_from(COUNTRIES), max_size=2)),
        )
        for g in group_refs
    ]
    transport = [
        _set(
            {"mode": draw(st.sampled_from(["sea-inflatable", "land-lorry", "air-charter"]))},
            ref=t,
            passenger_refs=_some(draw, refs, 4),
            driver_refs=_some(draw, refs, 1),
            pilot_refs=_some(draw, refs, 2),
            escort_refs=_some(draw, refs, 1),
        )
        for t in transport_refs
    ]
    documents = [
        _set(
            {"type": "passport", "issuing_state": draw(st.sampled_from(COUNTRIES))},
            fraud=draw(st.sampled_from(["forged", "genuine", "impostor"])),
            ref=f"d{i}",
            serial=f"serial-{i}",
            holder_ref=_one(draw, refs),
            issuer_ref=_one(draw, refs),
            forger_ref=_one(draw, refs),
        )
        for i in range(draw(st.integers(0, 2)))
    ]
    events = [
        _set(
            {"kind": draw(st.sampled_from(["departure", "detection", "meeting", "hand-over"]))},
            status=draw(st.sampled_from(["observed", "expected"])),
            person_refs=_some(draw, refs),
            transport_ref=_one(draw, transport_refs),
            counts=[{"of": "aboard", "count": draw(st.integers(0, 90)), "nationality": "ERI"}],
        )
        for _ in range(draw(st.integers(0, 2)))
    ]
    identifiers = [
        _set(
            {"kind": draw(st.sampled_from(["phone", "iban", "crypto-wallet"]))},
            value=f"identifier-{i}",
            person_ref=_one(draw, refs),
        )
        for i in range(draw(st.integers(0, 4)))
    ]
    finance: list[dict[str, Any]] = []
    for i in range(draw(st.integers(0, 4))):
        earlier = [f["ref"] for f in finance]
        finance.append(
            _set(
                {"kind": draw(st.sampled_from(["fee", "payment", "bribe"])), "ref": f"f{i}"},
                method=draw(st.sampled_from(["cash", "hawala", "in-kind", "unknown"])),
                payer_ref=_one(draw, refs),
                payee_ref=_one(draw, refs),
                intermediary_refs=_some(draw, refs, 2),
                from_country=draw(st.sampled_from([None, *COUNTRIES])),
                previous_ref=_one(draw, earlier),
            )
        )
    return minimal(
        schema="iir/1.1",
        persons=persons,
        groups=groups,
        transport=transport,
        documents=documents,
        events=events,
        identifiers=identifiers,
        finance=finance,
    )


# --- what the parts must hold ------------------------------------------------------------------


def _strings(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Every string in JSON-shaped data, with where it is."""
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, (*path, index))


def _links(wire: dict[str, Any]) -> list[list[Any]]:
    """Every person link on the report's body items, as the sections carry them."""
    out = []
    for name, fields in PERSON_LINKS.items():
        for index, item in enumerate(wire.get(name, [])):
            for field in fields:
                value = item.get(field)
                if isinstance(value, list):
                    out += [[name, index, field, pos, ref] for pos, ref in enumerate(value)]
                elif value is not None:
                    out.append([name, index, field, None, value])
    return out


def _key(entry: Any) -> str:
    return json.dumps(entry, sort_keys=True)


def _protected(report: Report) -> set[str]:
    return {p.ref for p in report.persons if p.protected}


def _guarded(person: Person) -> bool:
    migrant = PersonRole.SMUGGLED_MIGRANT in person.all_roles
    return person.nationality is not None and (
        migrant or person.protection_status in PROTECTED_STATUSES
    )


def _check_body(report: Report, main: dict[str, Any]) -> None:
    """Stubs of unprotected persons, their refs only as stub refs; no person item, no link."""
    protected = _protected(report)
    everyone = {p.ref for p in report.persons}
    for path, value in _strings(main):
        if value in everyone:
            assert ("persons", path[1], "ref") == path, f"{value} named in the body at {path}"
            assert value not in protected
    stubs = main.get("persons", [])
    assert [p.ref for p in report.persons if not p.protected] == [s["ref"] for s in stubs]
    assert all(set(stub) <= STUB_FIELDS for stub in stubs)
    assert all("group_ref" not in stub for stub in stubs)
    assert "identifiers" not in main
    assert [] == [
        f for f in main.get("finance", []) if list(named_persons(f, PERSON_ITEMS["finance"]))
    ]
    for name, fields in PERSON_LINKS.items():
        assert all(field not in item for item in main.get(name, []) for field in fields)


def _check_placement(report: Report, personal: dict[str, Any], protected: dict[str, Any]) -> None:
    """Each link, person item and person is in the section of the most protected person named."""
    wire = report.to_wire()
    shielded = _protected(report)
    links = _links(wire)
    expected_links = {
        PROTECTED_PERSONS: [x for x in links if x[-1] in shielded],
        PERSONAL_DATA: [x for x in links if x[-1] not in shielded],
    }
    for section, body in ((PERSONAL_DATA, personal), (PROTECTED_PERSONS, protected)):
        assert sorted(map(_key, expected_links[section])) == sorted(
            map(_key, body.get("links", []))
        )
    for name, fields in PERSON_ITEMS.items():
        for index, item in enumerate(wire.get(name, [])):
            named = set(named_persons(item, fields))
            entry = [index, item]
            in_protected = entry in protected.get(name, [])
            in_personal = entry in personal.get(name, [])
            if named & shielded:
                assert (True, False) == (in_protected, in_personal), f"{name}.{index}"
            elif named or name == "identifiers":
                assert (False, True) == (in_protected, in_personal), f"{name}.{index}"
            else:
                assert (False, False) == (in_protected, in_personal), f"{name}.{index}"
    people = wire.get("persons", [])
    assert [[i, p] for i, p in enumerate(people) if p["ref"] in shielded] == protected.get(
        "persons", []
    )
    assert shielded.isdisjoint(personal.get("persons", {}))


def _check_views(report: Report, main: dict[str, Any], personal: Any, protected: Any) -> None:
    """What a recipient reads with one of the two sections withheld."""
    shielded = _protected(report)
    unprotected = {p.ref for p in report.persons} - shielded
    bare = join(main)
    assert [] == bare.identifiers
    assert all(
        not any(named_persons(f.model_dump(), PERSON_ITEMS["finance"])) for f in bare.finance
    )
    assert [] == _links(bare.to_wire())
    assert all(set(p.model_dump(exclude_defaults=True)) <= STUB_FIELDS for p in bare.persons)

    without_protected = join(main, personal).to_wire()
    leaked = [(path, v) for path, v in _strings(without_protected) if v in shielded]
    assert [] == leaked
    assert all(f"of {ref}" not in json.dumps(without_protected) for ref in shielded)

    protected_only = join(main, None, protected)
    for person in protected_only.persons:
        if person.ref in unprotected:
            assert set(person.model_dump(exclude_defaults=True)) <= STUB_FIELDS, person.ref
    dumped = json.dumps(protected_only.to_wire())
    assert all(f"of {ref}" not in dumped and f"on {ref}" not in dumped for ref in unprotected)
    wire = report.to_wire()
    idents = [i for i in wire.get("identifiers", []) if i.get("person_ref") in shielded]
    assert idents == protected_only.to_wire().get("identifiers", [])
    flows = protected_only.to_wire().get("finance", [])
    named = [set(named_persons(f, PERSON_ITEMS["finance"])) for f in flows]
    assert all(not refs or refs & shielded for refs in named)
    assert all(link[-1] in shielded for link in _links(protected_only.to_wire()))


@settings(max_examples=150, deadline=None)
@given(reports_v11())
def test_sections_withhold_exactly_the_personal_data_of_relations(data: dict[str, Any]) -> None:
    """Body, sections and every partial view hold exactly what they should, and join(all) == r."""
    report = parse_report(data)
    parts = partition(report)
    personal, protected = parts.personal_data or {}, parts.protected_persons or {}
    snapshot = copy.deepcopy((parts.main, parts.personal_data, parts.protected_persons))
    _check_body(report, parts.main)
    _check_placement(report, personal, protected)
    _check_views(report, parts.main, parts.personal_data, parts.protected_persons)
    # Joining reads its inputs: a partial view first must not change what a full view gives.
    assert snapshot == (parts.main, parts.personal_data, parts.protected_persons)
    full = join(parts.main, parts.personal_data, parts.protected_persons)
    assert report == full
    assert report.to_wire() == full.to_wire()
    # The header's guard lists: every guarded person's nationality, in the section they are in.
    by_section = {s.id: s.protected_nationalities for s in parts.sections()}
    guarded = [p for p in report.persons if _guarded(p)]
    in_personal = sorted({str(p.nationality) for p in guarded if not p.protected})
    in_protected = sorted({str(p.nationality) for p in guarded if p.protected})
    assert in_personal == by_section.get(PERSONAL_DATA, [])
    assert in_protected == by_section.get(PROTECTED_PERSONS, [])


# --- the cases the issue names -----------------------------------------------------------------


def _witness_and_driver() -> Report:
    return parse_report(
        minimal(
            schema="iir/1.1",
            persons=[
                {"ref": "w1", "role": "smuggled-migrant", "roles": ["witness"],
                 "names": ["Witness Name"], "nationality": "ERI"},
                {"ref": "d1", "role": "driver", "names": ["Driver Name"], "nationality": "LBY"},
            ],
            transport=[{"mode": "land-lorry", "ref": "t1", "passenger_refs": ["w1"],
                        "driver_refs": ["d1"]}],
            finance=[
                {"kind": "fee", "ref": "f1", "payer_ref": "w1", "payee_ref": "d1"},
                {"kind": "payment", "ref": "f2", "payer_ref": "d1", "previous_ref": "f1"},
                {"kind": "bribe", "ref": "f3", "previous_ref": "f2"},
            ],
        )
    )  # fmt: skip


def test_payment_of_a_witness_to_a_driver_travels_with_the_witness() -> None:
    """A fee the witness paid the driver is in protected-persons; the driver's link in personal."""
    report = _witness_and_driver()
    parts = partition(report)
    assert parts.protected_persons is not None
    assert parts.personal_data is not None
    assert ["f1"] == [flow["ref"] for _, flow in parts.protected_persons["finance"]]
    assert ["f2"] == [flow["ref"] for _, flow in parts.personal_data["finance"]]
    assert [{"kind": "bribe", "ref": "f3", "previous_ref": "f2", "per_person": False,
             "method": "unknown", "certainty": "suspected"}] == parts.main["finance"]  # fmt: skip
    assert [["transport", 0, "passenger_refs", 0, "w1"]] == parts.protected_persons["links"]
    assert [["transport", 0, "driver_refs", 0, "d1"]] == parts.personal_data["links"]
    assert ["ERI"] == [s.protected_nationalities for s in parts.sections()][1]


def test_a_partial_join_leaves_the_sections_as_they_were() -> None:
    """Regression: join dropped a dangling previous_ref from the section's own dict, so a full
    join after a partial one lost the payment chain (f2 continues the witness's f1)."""
    report = _witness_and_driver()
    parts = partition(report)
    partial = join(parts.main, parts.personal_data)
    assert {"f2": None, "f3": "f2"} == {f.ref: f.previous_ref for f in partial.finance}
    assert ["w1"] == [p.ref for p in join(parts.main, None, parts.protected_persons).persons][:1]
    assert report == join(parts.main, parts.personal_data, parts.protected_persons)
