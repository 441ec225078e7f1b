"""IIR v1: examples, field-named errors, vocabularies, grading, partition/join, export."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import (
    Admiralty6x6,
    EnvelopeHeader,
    Europol4x4,
    Handling,
    Report,
    SectionInfo,
    Uk3x5x2,
    Uk5x5x5,
    join,
    new_uuid7,
    partition,
)
from schemas._types import from_epoch_ms, to_epoch_ms
from schemas.errors import ReportInvalid
from schemas.export import export_json_schemas, parse_report

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "schemas" / "examples").glob("*.json"))


def _example(name: str) -> dict[str, Any]:
    path = next(p for p in EXAMPLES if p.name.startswith(name))
    return json.loads(path.read_text())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_validates_and_round_trips(path: Path) -> None:
    """Each example is a valid report and survives to_wire/from_wire and partition/join."""
    report = parse_report(path.read_text())
    assert report == Report.from_wire(report.to_wire())
    parts = partition(report)
    assert report == join(parts.main, parts.personal_data, parts.protected_persons)


def test_examples_cover_every_category() -> None:
    """At least one example per Protocol art. 10(1) category, and at least eight in all."""
    categories = {json.loads(p.read_text())["category"] for p in EXAMPLES}
    assert {"routes", "groups", "documents", "concealment", "legislation", "scitech"} <= categories
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("persons", 0, "nationality"), "XXX", "persons.0.nationality"),
        (("transport", 0, "vessel", "imo"), "9074728", "transport.0.vessel.imo"),
        (("finance", 0, "amount", "currency"), "euro", "finance.0.amount.currency"),
        (("priority",), "asap", "priority"),
        (("handling", "tlp"), "PINK", "handling.tlp"),
        (("narrative", "language"), "English", "narrative.language"),
        (("observed",), "2026-11-21T02:00:00", "observed"),
        (("unexpected",), 1, "unexpected"),
    ],
)
def test_invalid_fields_are_named(path: tuple[Any, ...], value: Any, field: str) -> None:
    """A bad value anywhere gives ReportInvalid whose errors name the field."""
    data = _example("07") if path[0] in ("persons", "finance") else _example("09")
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ReportInvalid) as info:
        parse_report(data)
    assert field in [e["field"] for e in info.value.errors]
    assert field in info.value.reason


def test_coordinates_and_references_are_checked() -> None:
    """Latitude out of range, half a coordinate, and dangling person refs are refused."""
    data = _example("01")
    data["itinerary"]["embarkation"][0]["lat"] = 95
    with pytest.raises(ReportInvalid, match="lat"):
        parse_report(data)
    data = _example("01")
    del data["itinerary"]["embarkation"][0]["lon"]
    with pytest.raises(ReportInvalid, match="both lat and lon"):
        parse_report(data)
    data = _example("02")
    data["groups"][0]["member_refs"].append("p9")
    with pytest.raises(ReportInvalid, match="p9"):
        parse_report(data)
    data = _example("02")
    data["persons"][1]["ref"] = "p1"
    with pytest.raises(ReportInvalid, match="unique"):
        parse_report(data)
    data = _example("02")
    data["persons"][0]["group_ref"] = "g9"
    with pytest.raises(ReportInvalid, match="g9"):
        parse_report(data)


def test_not_json_and_too_many_items() -> None:
    """Non-JSON text and lists over their limit are refused clearly."""
    with pytest.raises(ReportInvalid, match="not JSON"):
        parse_report("{nope")
    data = _example("04")
    data["concealment"] = data["concealment"] * 201
    with pytest.raises(ReportInvalid, match="concealment"):
        parse_report(data)


def test_partition_keeps_personal_data_out_of_the_body() -> None:
    """The body holds role stubs only; names, nationalities and identifiers are in sections."""
    report = parse_report(_example("02"))
    parts = partition(report)
    body = json.dumps(parts.main)
    assert "Ardit Example" not in body
    assert "@package_travel_gr" not in body
    assert ["p1", "p2"] == [p["ref"] for p in parts.main["persons"]]
    assert "Ardit Example" in json.dumps(parts.personal_data)
    assert ["personal-data"] == [s.id for s in parts.sections()]


def test_partition_shields_witnesses_and_lists_protected_nationalities() -> None:
    """Witnesses go wholly to the protected section; migrants' nationalities are listed."""
    witness = partition(parse_report(_example("08")))
    assert "Protected Witness" not in json.dumps(witness.main)
    assert "Protected Witness" not in json.dumps(witness.personal_data)
    assert "Protected Witness" in json.dumps(witness.protected_persons)
    migrants = partition(parse_report(_example("07")))
    assert ("ERI", "SDN") == migrants.protected_nationalities


def test_join_without_sections_drops_withheld_persons() -> None:
    """A recipient without the sections sees stubs only and no dangling references."""
    report = parse_report(_example("08"))
    parts = partition(report)
    seen = join(parts.main)
    assert ["c1"] == [p.ref for p in seen.persons]
    assert seen.persons[0].aliases == []
    with_pd = join(parts.main, parts.personal_data)
    assert ["the captain"] == with_pd.persons[0].aliases


@pytest.mark.parametrize(
    ("grade", "reliability", "credibility"),
    [
        (Europol4x4(source="C", information="4"), 4, 5),
        (Admiralty6x6(source="E", information="5"), 4, 4),
        (Admiralty6x6(source="F", information="6"), 5, 5),
        (Uk5x5x5(source="E", intelligence="5", handling="3"), 5, 4),
        (Uk3x5x2(source="1", intelligence="A", handling="P"), 2, 2),
    ],
)
def test_grading_common_view(grade: Any, reliability: int, credibility: int) -> None:
    """Each scheme maps to the documented common levels."""
    common = grade.common()
    assert (reliability, credibility) == (common.reliability, common.credibility)


def test_grading_never_upgrades() -> None:
    """Within each scheme, a worse grade never maps to a better common level."""
    schemes = [
        (Europol4x4, "ABCX", "1234", {}),
        (Admiralty6x6, "ABCDEF", "123456", {}),
        (Uk5x5x5, "ABCDE", "12345", {"handling": "1"}),
    ]
    for cls, sources, infos, extra in schemes:
        info_field = "information" if "information" in cls.model_fields else "intelligence"
        rel = [
            cls(source=s, **{info_field: infos[0]}, **extra).common().reliability for s in sources
        ]
        graded = [r for r in rel if r != 5]  # "cannot be judged" sits outside the order
        assert graded == sorted(graded)
    # 3x5x2 "reliable" spans 5x5x5's A and B: it maps to the worse, "usually reliable".
    assert 2 == Uk3x5x2(source="1", intelligence="A", handling="P").common().reliability


def test_export_writes_json_schemas(tmp_path: Path) -> None:
    """Three JSON Schema files, each declaring draft 2020-12 and its properties."""
    paths = export_json_schemas(tmp_path)
    loaded = {p.name: json.loads(p.read_text()) for p in paths}
    assert {
        "iir-v1.1.report.schema.json",
        "iir-v1.1.handling.schema.json",
        "envelope-v1.header.schema.json",
    } == set(loaded)
    assert "persons" in loaded["iir-v1.1.report.schema.json"]["properties"]


def test_handling_rules() -> None:
    """A3 needs its text, expiry follows embargo, lists are canonical, codes are listed."""
    with pytest.raises(ValidationError, match="A3"):
        Handling(tlp="AMBER", action="A3")
    now = datetime.now(UTC)
    with pytest.raises(ValidationError, match="after not_before"):
        Handling(tlp="AMBER", not_before=now, expires=now)
    with pytest.raises(ValidationError, match="group:"):
        Handling(tlp="AMBER", rel_to=["group:Bad Id"])
    with pytest.raises(ValidationError, match="neither an agency"):
        Handling(tlp="AMBER", rel_to=["ita-gdf"])
    h = Handling(
        tlp="RED",
        rel_to=["MLT-AFM", "ITA-GDF", "MLT-AFM"],
        h2=True,
        h3=[{"code": "b", "text": "x"}, {"code": "a", "text": "y"}, {"code": "b", "text": "x"}],
    )
    assert ["ITA-GDF", "MLT-AFM"] == h.rel_to
    assert ["a", "b"] == [r.code for r in h.h3]
    assert ["TLP:RED", "H0", "H1", "H2", "H3", "A1"] == h.codes()
    assert h.onward_forbidden
    assert not Handling(tlp="GREEN", judicial_use=True).h1


def _header(**overrides: Any) -> EnvelopeHeader:
    base: dict[str, Any] = {
        "id": new_uuid7(),
        "originator": "ITA-GDF",
        "kid": "0123456789abcdef",
        "created": datetime.now(UTC),
        "kind": "alert",
        "route": "central-med",
        "category": "routes",
        "handling": {"tlp": "GREEN"},
        "recipients": ["MLT-AFM"],
    }
    return EnvelopeHeader(**(base | overrides))


def test_header_rules() -> None:
    """Naive times, self-addressing, duplicate sections and bad ids are refused."""
    with pytest.raises(ValidationError, match="timezone"):
        _header(created=datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="own recipients"):
        _header(recipients=["ITA-GDF"])
    with pytest.raises(ValidationError, match="unique"):
        _header(sections=[SectionInfo(id="a", kind="personal-data")] * 2)
    with pytest.raises(ValidationError, match="UUIDv7"):
        _header(id="not-a-uuid")
    with pytest.raises(ValidationError, match="time must be"):
        _header(created=True)
    h = _header(
        sections=[
            SectionInfo(id="b", kind="personal-data"),
            SectionInfo(id="a", kind="protected-persons"),
        ],
        created=datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))),
    )
    assert ["a", "b"] == [s.id for s in h.sections]
    assert h.contains_personal_data
    assert ("ITA-GDF", "alert", "central-med", "routes") == h.subject_tokens()
    assert h == EnvelopeHeader.model_validate(h.to_wire())


def test_uuid7_from_parts() -> None:
    """new_uuid7 puts the time first and checks its randomness length."""
    assert new_uuid7(0, bytes(10)).startswith("00000000-0000-7000-8000")
    with pytest.raises(ValueError, match="10 bytes"):
        new_uuid7(0, b"short")


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**47))
def test_epoch_ms_round_trip(ms: int) -> None:
    """Epoch milliseconds survive the datetime round trip exactly."""
    assert ms == to_epoch_ms(from_epoch_ms(ms))


names = (
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=20)
    .map(str.strip)
    .filter(bool)
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["organiser", "driver", "smuggled-migrant", "witness", "victim"]),
            st.lists(names, max_size=2),
            st.sampled_from(["ERI", "SDN", "AFG", "SYR", None]),
            st.sampled_from(["migrant", "asylum-seeker", "refugee", "none"]),
        ),
        max_size=8,
    ),
    st.lists(st.tuples(st.sampled_from(["phone", "iban"]), st.integers(-1, 7)), max_size=6),
)
def test_partition_join_round_trip(people: list[Any], ids: list[Any]) -> None:
    """For any persons and identifiers, join(partition(r)) == r, and withheld parts stay out."""
    data = _example("01")
    data["persons"] = [
        {"ref": f"p{i}", "role": role, "names": ns, "protection_status": status}
        | ({"nationality": nat} if nat else {})
        for i, (role, ns, nat, status) in enumerate(people)
    ]
    data["identifiers"] = [
        {"kind": kind, "value": f"v{j}"}
        | ({"person_ref": f"p{ref}"} if 0 <= ref < len(people) else {})
        for j, (kind, ref) in enumerate(ids)
    ]
    report = parse_report(data)
    parts = partition(report)
    assert report == join(parts.main, parts.personal_data, parts.protected_persons)
    stubs = parts.main.get("persons", [])
    assert all(set(p) <= {"ref", "role", "legal_status", "certainty", "group_ref"} for p in stubs)
    assert "identifiers" not in parts.main
    shielded = {p.ref for p in report.persons if p.role.protected}
    assert shielded.isdisjoint(p["ref"] for p in stubs)
