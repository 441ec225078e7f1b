"""Splitting a report into body and sealed sections, and joining what a recipient may read."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings

from schemas import (
    PERSONAL_DATA,
    PROTECTED_PERSONS,
    PersonRole,
    Report,
    SectionKind,
    join,
    parse_report,
    partition,
)
from schemas._report import STUB_FIELDS
from tests.schemas._support import example, minimal, report_data


def _persons(*people: dict[str, Any], **fields: Any) -> Report:
    return parse_report(minimal(persons=list(people), **fields))


def test_body_keeps_role_stubs_and_no_personal_data() -> None:
    """Names, aliases, nationality and identifiers leave the body; ref, role and status stay."""
    parts = partition(parse_report(example("10")))
    body = json.dumps(parts.main)
    for secret in ("Example Escort", "Uncle", "1979-03-14", "@travel_uncle_kl", "+60 12"):
        assert secret not in body
        assert secret in json.dumps(parts.personal_data)
    assert [
        {
            "ref": "m1",
            "role": "smuggled-migrant",
            "legal_status": "not-applicable",
            "certainty": "known",
        },
        {
            "ref": "m2",
            "role": "smuggled-migrant",
            "legal_status": "not-applicable",
            "certainty": "known",
        },
        {"ref": "e1", "role": "escort", "legal_status": "charged", "certainty": "known"},
    ] == parts.main["persons"]
    assert "identifiers" not in parts.main
    assert parts.protected_persons is None


def test_witnesses_and_victims_go_wholly_to_the_protected_section() -> None:
    """A victim and their identifiers are in neither the body nor the personal-data section."""
    report = _persons(
        {"ref": "v1", "role": "victim", "names": ["Victim Name"], "nationality": "AFG"},
        {"ref": "o1", "role": "organiser", "names": ["Organiser Name"]},
        identifiers=[
            {"kind": "phone", "value": "+93 victim", "person_ref": "v1"},
            {"kind": "phone", "value": "+62 organiser", "person_ref": "o1"},
        ],
    )
    parts = partition(report)
    outside = json.dumps([parts.main, parts.personal_data])
    assert "Victim Name" not in outside
    assert "+93 victim" not in outside
    assert "v1" not in json.dumps(parts.main)
    protected = parts.protected_persons
    assert protected is not None
    assert [0] == [index for index, _ in protected["persons"]]
    assert "Victim Name" in json.dumps(protected)
    assert "+93 victim" in json.dumps(protected["identifiers"])


def test_protected_nationalities_for_the_non_refoulement_guard() -> None:
    """Migrants (by role or status), refugees and asylum-seekers count, in either section."""
    report = _persons(
        {
            "ref": "a",
            "role": "smuggled-migrant",
            "nationality": "SYR",
            "protection_status": "refugee",
        },
        {"ref": "b", "role": "smuggled-migrant", "nationality": "AFG"},  # no status recorded
        {"ref": "c", "role": "broker", "nationality": "TUR", "protection_status": "asylum-seeker"},
        {"ref": "d", "role": "driver", "nationality": "LBY"},
        {
            "ref": "e",
            "role": "smuggled-migrant",
            "nationality": "AFG",
            "protection_status": "migrant",
        },
        {"ref": "f", "role": "smuggled-migrant", "protection_status": "refugee"},  # stateless
        {"ref": "g", "role": "witness", "nationality": "ERI", "protection_status": "refugee"},
    )
    parts = partition(report)
    assert ("AFG", "SYR", "TUR") == parts.protected_nationalities
    assert ("ERI",) == parts.shielded_nationalities
    assert [
        (PERSONAL_DATA, SectionKind.PERSONAL_DATA, ["AFG", "SYR", "TUR"]),
        (PROTECTED_PERSONS, SectionKind.PROTECTED_PERSONS, ["ERI"]),
    ] == [(s.id, s.kind, s.protected_nationalities) for s in parts.sections()]


def test_stub_only_persons_and_section_bodies() -> None:
    """A person with nothing beyond the stub adds no personal data; bodies match sections."""
    parts = partition(
        _persons(
            {"ref": "d1", "role": "driver", "legal_status": "suspected"},
            {"ref": "w1", "role": "witness"},
        )
    )
    assert parts.personal_data is None
    assert {PROTECTED_PERSONS: parts.protected_persons} == parts.section_bodies()
    assert [PROTECTED_PERSONS] == [s.id for s in parts.sections()]


def test_report_without_persons_has_no_sections() -> None:
    """No persons and no identifiers: nothing to seal separately."""
    parts = partition(parse_report(example("05")))
    assert (None, None, ()) == (
        parts.personal_data,
        parts.protected_persons,
        parts.protected_nationalities,
    )
    assert [] == parts.sections()
    assert {} == parts.section_bodies()


def test_unattributed_identifiers_are_personal_data() -> None:
    """An identifier tied to nobody still goes to the personal-data section."""
    parts = partition(parse_report(minimal(identifiers=[{"kind": "phone", "value": "+218"}])))
    assert {
        "persons": {},
        "identifiers": [[0, {"kind": "phone", "value": "+218", "certainty": "suspected"}]],
    } == parts.personal_data
    assert [PERSONAL_DATA] == list(parts.section_bodies())


def test_join_shows_only_what_was_opened() -> None:
    """Without sections: stubs only; with personal data: no witnesses; with both: everything."""
    report = parse_report(example("11"))
    parts = partition(report)
    bare = join(parts.main)
    assert ["o1", "f1", "x1"] == [p.ref for p in bare.persons]
    assert all(p.names == [] and p.nationality is None for p in bare.persons)
    assert [] == bare.identifiers
    # Links are the persons' data: group membership travels in the members' sections.
    assert [] == bare.groups[0].member_refs
    assert all(p.group_ref is None for p in bare.persons)
    with_pd = join(parts.main, parts.personal_data)
    assert ["Example Organiser"] == with_pd.persons[0].names
    assert "v1" not in [p.ref for p in with_pd.persons]
    assert 4 == len(with_pd.identifiers)
    protected_only = join(parts.main, None, parts.protected_persons)
    assert ["o1", "f1", "x1", "v1"] == [p.ref for p in protected_only.persons]
    assert [] == protected_only.persons[0].names
    assert report == join(parts.main, parts.personal_data, parts.protected_persons)


def test_join_drops_references_to_withheld_persons() -> None:
    """Documents, groups and identifiers that name a withheld witness stay valid without them."""
    report = _persons(
        {"ref": "w1", "role": "witness", "names": ["W"]},
        {"ref": "d1", "role": "driver", "group_ref": "g1"},
        groups=[{"ref": "g1", "member_refs": ["w1", "d1"]}],
        documents=[
            {"type": "passport", "issuing_state": "ERI", "fraud": "genuine", "holder_ref": "w1"},
            {"type": "visa", "issuing_state": "ITA", "fraud": "forged", "holder_ref": "d1"},
        ],
        identifiers=[{"kind": "phone", "value": "+1", "person_ref": "w1"}],
    )
    parts = partition(report)
    seen = join(parts.main, parts.personal_data)
    assert ["d1"] == seen.groups[0].member_refs
    assert [None, "d1"] == [d.holder_ref for d in seen.documents]
    assert [] == seen.identifiers
    assert report == join(parts.main, parts.personal_data, parts.protected_persons)


@settings(max_examples=150, deadline=None)
@given(report_data())
def test_partition_join_round_trip(data: dict[str, Any]) -> None:
    """For any report, join(partition(r)) == r, and each part holds only what it should."""
    report = parse_report(data)
    parts = partition(report)
    assert report == join(parts.main, parts.personal_data, parts.protected_persons)
    shielded = {p.ref for p in report.persons if p.role.protected}
    stubs = parts.main.get("persons", [])
    assert all(set(stub) <= STUB_FIELDS for stub in stubs)
    assert shielded.isdisjoint(stub["ref"] for stub in stubs)
    assert "identifiers" not in parts.main
    assert shielded.isdisjoint((parts.personal_data or {}).get("persons", {}))
    guarded = [
        p
        for p in report.persons
        if p.nationality
        and (p.role is PersonRole.SMUGGLED_MIGRANT or p.protection_status.value != "none")
    ]
    in_body = {p.nationality for p in guarded if not p.role.protected}
    in_protected = {p.nationality for p in guarded if p.role.protected}
    assert tuple(sorted(in_body)) == parts.protected_nationalities  # type: ignore[arg-type]
    assert tuple(sorted(in_protected)) == parts.shielded_nationalities  # type: ignore[arg-type]
    # What a recipient without any section sees is still a valid report.
    bare = join(parts.main)
    assert [p.ref for p in report.persons if not p.role.protected] == [p.ref for p in bare.persons]
    assert json.loads(json.dumps(parts.main)) == parts.main
