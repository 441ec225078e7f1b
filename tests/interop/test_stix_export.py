"""STIX 2.1 export: valid bundles, TLP 2.0 markings, the Palermo extension, stable ids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import stix2
from stix2validator import ValidationOptions, validate_instance

from node.interop import PALERMO_EXTENSION_ID, TLP2_MARKING_IDS, export_bundle
from node.interop.markings import SECTION_MARKING_IDS, TLP2_EXTENSION_ID
from node.interop.stix_export import ITEM_SELECTOR
from schemas import HandlingV11, Tlp
from schemas.errors import InputError
from tests.interop._bundles import (
    CREATED,
    EXAMPLE_NAMES,
    LATER,
    MODIFIED,
    REPORT_ID,
    by_type,
    export,
    report,
)

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "stix" / "palermo-handling.schema.json"
SDO_TYPES = {
    "report",
    "threat-actor",
    "identity",
    "infrastructure",
    "indicator",
    "location",
    "note",
}


def _sdos(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's own objects (not the shared definitions)."""
    return [
        o
        for o in bundle["objects"]
        if o["type"] != "marking-definition" and PALERMO_EXTENSION_ID in o.get("extensions", {})
    ]


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_example_validates_and_parses_back(name: str) -> None:
    """stix2-validator finds no error in any example's bundle, and stix2.parse reads it back."""
    bundle = export(report(name[:2]))
    results = validate_instance(bundle, ValidationOptions(version="2.1"))
    assert [] == [str(e) for r in [results] for e in r.errors]
    assert results.is_valid
    parsed = stix2.parse(json.dumps(bundle), allow_custom=True)
    assert [o["id"] for o in bundle["objects"]] == [o.id for o in parsed.objects]


def test_tlp_markings_are_the_official_tlp2_definitions() -> None:
    """Every SDO carries the official TLP 2.0 marking id; the definition object is the OASIS one."""
    bundle = export(report("02"))  # TLP:AMBER
    amber = TLP2_MARKING_IDS[Tlp.AMBER]
    assert "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421" == amber
    [marking] = [o for o in bundle["objects"] if o["id"] == amber]
    assert {"extension_type": "property-extension", "tlp_2_0": "amber"} == marking["extensions"][
        TLP2_EXTENSION_ID
    ]
    assert "2022-10-01T00:00:00.000Z" == marking["created"]
    assert all([amber] == o["object_marking_refs"] for o in _sdos(bundle))
    assert {o["type"] for o in _sdos(bundle)} <= SDO_TYPES


def test_extension_carries_the_whole_handling_and_matches_its_schema() -> None:
    """Each object's extension holds the full handling block and validates against the shipped
    JSON schema, whose handling part is the model's own schema."""
    r = report("19")  # H3, AMBER, witness in the protected section
    schema = json.loads(SCHEMA.read_text())
    assert (
        HandlingV11.model_json_schema(mode="serialization")["properties"]
        == (schema["$defs"]["handling"]["properties"])
    )
    for obj in _sdos(export(r)):
        ext = obj["extensions"][PALERMO_EXTENSION_ID]
        jsonschema.validate(ext, schema)
        assert r.handling == type(r.handling).model_validate(ext["handling"])
    for marking in by_type(export(r), "marking-definition"):
        if marking["id"] in SECTION_MARKING_IDS.values():
            jsonschema.validate(marking["extensions"][PALERMO_EXTENSION_ID], schema)


def test_sealed_parts_carry_granular_section_markings() -> None:
    """Persons' descriptive data and identifiers are marked personal-data; a witness is marked
    protected-persons; the report itself has no granular marking."""
    bundle = export(report("19"))
    marked = {
        o["id"]: {g["marking_ref"] for g in o.get("granular_markings", [])} for o in _sdos(bundle)
    }
    [rep] = by_type(bundle, "report")
    assert set() == marked[rep["id"]]
    persons = [o for o in by_type(bundle, "identity") if o.get("identity_class") == "individual"]
    witness = [p for p in persons if "witness" in p["roles"]]
    assert witness
    assert all({SECTION_MARKING_IDS["protected-persons"]} == marked[p["id"]] for p in witness)
    for person in witness:
        [gm] = person["granular_markings"]
        assert {"name", "roles", ITEM_SELECTOR} <= set(gm["selectors"])
    for obj in _sdos(bundle):
        for gm in obj.get("granular_markings", []):
            assert ITEM_SELECTOR in gm["selectors"]
            assert obj["extensions"][PALERMO_EXTENSION_ID]["personal_data"] is True


def test_withheld_sections_are_left_out() -> None:
    """Withholding personal-data and protected-persons leaves no name, identifier or witness."""
    r = report("10")
    full = json.dumps(export(r))
    bare = export(r, withhold={"personal-data", "protected-persons"})
    text = json.dumps(bare)
    assert [] == by_type(bare, "indicator")
    for person in r.persons:
        for name in person.names:
            assert name in full
            assert name not in text
    assert not any(SECTION_MARKING_IDS["personal-data"] in json.dumps(o) for o in _sdos(bare))


def test_withholding_an_unknown_section_is_refused() -> None:
    """A typo in a section name must not export everything."""
    with pytest.raises(InputError, match="unknown section"):
        export(report("10"), withhold={"personal_data"})


def test_reexport_keeps_ids_with_a_newer_modified() -> None:
    """The same report exported later updates the same objects instead of duplicating them."""
    r = report("11")
    first, second = export(r), export(r, modified=LATER)
    assert [o["id"] for o in _sdos(first)] == [o["id"] for o in _sdos(second)]
    assert {"2026-06-02T09:00:00.000Z"} == {o["modified"] for o in _sdos(second)}
    assert {"2026-06-01T08:00:00.000Z"} == {o["created"] for o in _sdos(second)}
    assert first["id"] != second["id"]
    other = export(r, report_id="01935a3e-7c00-7000-8000-000000000002")
    assert not {o["id"] for o in _sdos(first)} & {o["id"] for o in _sdos(other)}


def test_retraction_exports_revoked_objects() -> None:
    """A retracted report's every object is revoked; a live one's none."""
    r = report("12")
    live, gone = export(r), export(r, retracted=True, modified=LATER)
    assert all("revoked" not in o for o in _sdos(live))
    assert all(o["revoked"] is True for o in _sdos(gone))
    assert [o["id"] for o in _sdos(live)] == [o["id"] for o in _sdos(gone)]


def test_modified_before_created_is_refused() -> None:
    """A version older than its creation would be ignored by every consumer."""
    with pytest.raises(ValueError, match="modified"):
        export_bundle(report("01"), report_id=REPORT_ID, created=LATER, modified=CREATED)


def test_identifiers_become_indicators_with_quoted_patterns() -> None:
    """A value with a quote is escaped in the pattern, and the pattern names the kind."""
    r = report("02").model_copy(deep=True)
    data = r.to_wire()
    data["identifiers"][0] = {"kind": "email", "value": "o'brien@example.org"}
    from schemas import parse_report

    bundle = export(parse_report(data))
    patterns = sorted(o["pattern"] for o in by_type(bundle, "indicator"))
    assert "[email-addr:value = 'o\\'brien@example.org']" in patterns
    assert MODIFIED.year == 2026


def test_links_to_persons_are_marked_and_withheld_with_their_section() -> None:
    """A boat's pilot link travels in the pilot's section: marked in the full export, absent
    when that section is withheld (as join() leaves it for a recipient)."""
    r = report("21")  # a migrant who piloted the boat
    linked = [t for t in r.transport if t.pilot_refs]
    assert linked
    full, bare = export(r), export(r, withhold={"personal-data", "protected-persons"})
    [boat_full] = [o for o in by_type(full, "infrastructure") if o.get("granular_markings")]
    assert boat_full["extensions"][PALERMO_EXTENSION_ID]["item"]["pilot_refs"]
    for boat in by_type(bare, "infrastructure"):
        assert "pilot_refs" not in boat["extensions"][PALERMO_EXTENSION_ID]["item"]
        assert "granular_markings" not in boat


def test_a_note_holding_a_link_marks_its_content() -> None:
    """A document note whose holder link is personal data marks its content, which holds it."""
    bundle = export(report("10"))
    notes = [
        o
        for o in by_type(bundle, "note")
        if "holder_ref" in o["extensions"][PALERMO_EXTENSION_ID]["item"]
    ]
    assert notes
    for note in notes:
        [gm] = note["granular_markings"]
        assert {"content", ITEM_SELECTOR} == set(gm["selectors"])


def test_the_documented_id_namespaces_are_the_ones_in_use() -> None:
    """docs/interop.md gives the namespaces so partners can recompute ids: they must not drift."""
    import uuid

    from node.interop.markings import PALERMO_IDENTITY_ID, PALERMO_NAMESPACE, PALERMO_SCHEMA_URL
    from node.interop.taxii_source import COLLECTIONS_NAMESPACE

    doc = (Path(__file__).parents[2] / "docs" / "interop.md").read_text()
    assert uuid.uuid5(uuid.NAMESPACE_URL, PALERMO_SCHEMA_URL) == PALERMO_NAMESPACE
    for value in (
        PALERMO_NAMESPACE,
        COLLECTIONS_NAMESPACE,
        PALERMO_IDENTITY_ID,
        PALERMO_EXTENSION_ID,
    ):
        assert str(value).split("--")[-1] in doc


def test_a_retraction_does_not_send_the_content_again() -> None:
    """Revoked objects say which objects and how they were handled, not what they held: a
    tool that never had the report must not get it with the retraction; still valid STIX."""
    r = report("10")  # persons, identifiers, itinerary, notes
    live, gone = export(r), export(r, retracted=True, modified=LATER)
    text = json.dumps(gone)
    secrets = [r.title, r.narrative.text, *(n for p in r.persons for n in p.names)]
    secrets += [i.value for i in r.identifiers]
    assert all(s and s not in text for s in secrets)
    assert all(s in json.dumps(live) for s in secrets)
    assert not [o for o in gone["objects"] if "granular_markings" in o]
    assert {o["id"] for o in _sdos(live)} == {o["id"] for o in _sdos(gone)}
    for obj in _sdos(gone):
        assert r.handling == type(r.handling).model_validate(
            obj["extensions"][PALERMO_EXTENSION_ID]["handling"]
        )
    results = validate_instance(gone, ValidationOptions(version="2.1"))
    assert results.is_valid, [str(e) for e in results.errors]
    stix2.parse(text, allow_custom=True)
