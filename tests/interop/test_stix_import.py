"""STIX 2.1 import: round trips, never a wider handling, and a refusal per unmappable marking."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.interop import (
    PALERMO_EXTENSION_ID,
    TLP2_MARKING_IDS,
    MarkingsUnmappable,
    export_event,
    import_event,
    wider,
)
from node.interop.drafts import Defaults
from node.interop.markings import TLP1_MARKING_IDS
from node.interop.stix_import import import_bundle
from schemas import Tlp, parse_report
from schemas.errors import InputError
from tests.interop._bundles import (
    CREATED,
    EXAMPLE_NAMES,
    MODIFIED,
    REPORT_ID,
    by_type,
    export,
    report,
)
from tests.policies._factories import handlings
from tests.schemas._support import AGENCIES, report_data


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_export_import_round_trips_every_example(name: str) -> None:
    """Every field and the whole handling block come back as they went out."""
    original = report(name[:2])
    [draft] = import_bundle(export(original))
    assert original == draft.report
    assert REPORT_ID == draft.palermo_id


def test_withheld_sections_import_as_the_recipient_saw_them() -> None:
    """A bundle without personal data imports as the report without it, same handling."""
    original = report("10")
    [draft] = import_bundle(export(original, withhold={"personal-data", "protected-persons"}))
    assert [] == draft.report.identifiers
    assert all(not p.names for p in draft.report.persons)
    assert original.handling == draft.report.handling


@st.composite
def _reports(draw: st.DrawFn) -> dict[str, Any]:
    data = draw(report_data())
    handling = draw(handlings(AGENCIES))
    # The factories' times are relative to their NOW; any consistent times will do here.
    data["handling"] = {k: v for k, v in handling.items() if v is not None}
    if data["handling"]["tlp"] == "RED" and data["handling"].get("rel_to") == []:
        data["handling"]["rel_to"] = [AGENCIES[0]]
    data["handling"]["deny_to"] = [
        a
        for a in draw(st.lists(st.sampled_from(AGENCIES), max_size=2))
        if a not in data["handling"].get("rel_to", [])
        and a not in data["handling"].get("protected_released_to", [])
        and a not in (data["handling"].get("non_refoulement_override") or {}).get("agencies", [])
    ]
    return data


@settings(max_examples=40, deadline=None)
@given(_reports(), st.sets(st.sampled_from(["personal-data", "protected-persons"])))
def test_imported_handling_is_never_wider(data: dict[str, Any], withhold: set[str]) -> None:
    """For generated reports and handling blocks, export -> import through STIX and through
    MISP never widens the handling (and, with nothing withheld, gives the report back)."""
    original = parse_report(data)
    [draft] = import_bundle(export(original, withhold=withhold))
    times = {"report_id": REPORT_ID, "created": CREATED, "modified": MODIFIED}
    event = export_event(original, withhold=withhold, **times)
    via_misp = import_event(event.to_json())
    assert [] == wider(draft.report.handling, original.handling)
    assert [] == wider(via_misp.report.handling, original.handling)
    if not withhold:
        assert original == draft.report
        assert original == via_misp.report


def test_wider_names_each_widening() -> None:
    """The comparison the property relies on does catch a widening, field by field."""
    narrow = parse_report(
        report("02").to_wire()
        | {"handling": {"tlp": "RED", "rel_to": ["ITA-GDF"], "h2": True, "deny_to": ["LBY-DCIM"]}}
    ).handling
    wide = narrow.model_copy(update={"tlp": Tlp.GREEN, "rel_to": [], "h2": False, "deny_to": []})
    reasons = wider(wide, narrow)
    assert 4 == len(reasons), reasons
    assert [] == wider(narrow, narrow)


# --- refusals ---------------------------------------------------------------------------------


def _refused(bundle: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(MarkingsUnmappable) as caught:
        import_bundle(bundle)
    assert caught.value.to_dict()["problems"]
    return caught.value.problems


def _first(bundle: dict[str, Any], stix_type: str) -> dict[str, Any]:
    return by_type(bundle, stix_type)[0]


def test_unknown_marking_is_refused() -> None:
    """A statement marking (or any marking Palermo does not know) cannot be enforced."""
    bundle = export(report("02"))
    statement = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--0b8e5b5a-2a55-4e6b-9c35-9d2b2f9bde0c",
        "created": "2026-01-01T00:00:00.000Z",
        "definition_type": "statement",
        "definition": {"statement": "Copyright partner"},
    }
    bundle["objects"].append(statement)
    _first(bundle, "threat-actor")["object_marking_refs"].append(statement["id"])
    [(oid, why)] = _refused(bundle)
    assert _first(bundle, "threat-actor")["id"] == oid
    assert "unknown marking" in why


def test_two_tlp_colours_on_one_object_are_refused() -> None:
    """An object marked both GREEN and RED contradicts itself."""
    bundle = export(report("02"))
    _first(bundle, "report")["object_marking_refs"].append(TLP2_MARKING_IDS[Tlp.RED])
    problems = _refused(bundle)
    assert any("contradictory TLP" in why for _, why in problems)


def test_an_object_with_another_tlp_than_its_report_is_refused() -> None:
    """Palermo holds one TLP per report: a RED object in an AMBER report is not silently merged."""
    bundle = export(report("02"))
    actor = _first(bundle, "threat-actor")
    actor["object_marking_refs"] = [TLP2_MARKING_IDS[Tlp.RED]]
    assert any(oid == actor["id"] and "one TLP per report" in w for oid, w in _refused(bundle))


def test_extension_contradicting_the_tlp_marking_is_refused() -> None:
    """The Palermo handling block says GREEN while the marking says AMBER."""
    bundle = export(report("02"))
    for obj in bundle["objects"]:
        ext = obj.get("extensions", {}).get(PALERMO_EXTENSION_ID, {})
        if "handling" in ext:
            ext["handling"] = ext["handling"] | {"tlp": "GREEN"}
    assert any("contradictory TLP" in why for _, why in _refused(bundle))


def test_granular_tlp_marking_is_refused() -> None:
    """A granular TLP on one property cannot be honoured by a per-report TLP."""
    bundle = export(report("02"))
    actor = _first(bundle, "threat-actor")
    actor["granular_markings"] = [
        {"marking_ref": TLP2_MARKING_IDS[Tlp.RED], "selectors": ["description"]}
    ]
    [(oid, why)] = _refused(bundle)
    assert (actor["id"], True) == (oid, "granular TLP:RED" in why)


def test_section_marking_on_a_part_palermo_does_not_seal_is_refused() -> None:
    """Personal-data marked on a location: Palermo would not seal it, so it cannot promise to."""
    bundle = export(report("01"))
    location = _first(bundle, "location")
    ref = next(iter(m for m in _section_ids()))
    location["granular_markings"] = [{"marking_ref": ref, "selectors": ["name"]}]
    [(oid, why)] = _refused(bundle)
    assert location["id"] == oid
    assert "does not seal" in why


def _section_ids() -> list[str]:
    from node.interop.markings import SECTION_MARKING_IDS

    return list(SECTION_MARKING_IDS.values())


def test_missing_tlp_and_tlp2_id_redefinition_are_refused() -> None:
    """No TLP at all is refused; so is a bundle that redefines an official TLP 2.0 id."""
    bundle = export(report("02"))
    del _first(bundle, "threat-actor")["object_marking_refs"]
    for obj in bundle["objects"]:
        if obj["id"] == TLP2_MARKING_IDS[Tlp.AMBER]:
            obj["name"] = "TLP:CLEAR"
            obj["extensions"] = copy.deepcopy(obj["extensions"])
            next(iter(obj["extensions"].values()))["tlp_2_0"] = "clear"
    whys = [why for _, why in _refused(bundle)]
    assert any("no TLP marking" in w for w in whys)
    assert any("redefines the TLP 2.0 id" in w for w in whys)


def test_revoked_report_and_loose_objects_are_refused() -> None:
    """A revoked report has nothing to import; an object outside any report is not dropped
    silently."""
    bundle = export(report("02"), retracted=True)
    assert any("revoked" in why for _, why in _refused(bundle))
    bundle = export(report("02"))
    _first(bundle, "report")["object_refs"].remove(_first(bundle, "threat-actor")["id"])
    assert any("in no report" in why for _, why in _refused(bundle))


def test_foreign_bundle_maps_tlp_and_needs_defaults() -> None:
    """A bundle from another tool (TLP 1.0 AMBER, no Palermo extension) imports with that TLP
    and nothing wider, once originator, category and route are given."""
    amber1 = next(k for k, v in TLP1_MARKING_IDS.items() if v is Tlp.AMBER)
    objects: list[dict[str, Any]] = [
        {
            "type": "indicator",
            "spec_version": "2.1",
            "id": "indicator--6c6b7b43-8b0f-4b8b-9c5c-2b1e8f0e6a01",
            "created": "2026-01-01T00:00:00.000Z",
            "modified": "2026-01-01T00:00:00.000Z",
            "pattern": "[email-addr:value = 'boss@example.org']",
            "pattern_type": "stix",
            "valid_from": "2026-01-01T00:00:00Z",
            "object_marking_refs": [amber1],
        },
        {
            "type": "threat-actor",
            "spec_version": "2.1",
            "id": "threat-actor--6c6b7b43-8b0f-4b8b-9c5c-2b1e8f0e6a02",
            "created": "2026-01-01T00:00:00.000Z",
            "modified": "2026-01-01T00:00:00.000Z",
            "name": "Sea wolves",
            "object_marking_refs": [amber1],
        },
        {
            "type": "location",
            "spec_version": "2.1",
            "id": "location--6c6b7b43-8b0f-4b8b-9c5c-2b1e8f0e6a03",
            "created": "2026-01-01T00:00:00.000Z",
            "modified": "2026-01-01T00:00:00.000Z",
            "country": "LY",
            "name": "Zuwara",
            "object_marking_refs": [amber1],
        },
    ]
    rep = {
        "type": "report", "spec_version": "2.1",
        "id": "report--6c6b7b43-8b0f-4b8b-9c5c-2b1e8f0e6a04",
        "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
        "name": "Departures", "published": "2026-01-01T00:00:00Z",
        "object_refs": [o["id"] for o in objects], "object_marking_refs": [amber1],
    }  # fmt: skip
    bundle = {"type": "bundle", "id": "bundle--6c6b7b43-8b0f-4b8b-9c5c-2b1e8f0e6a05",
              "objects": [*objects, rep]}  # fmt: skip
    [(oid, why)] = _refused(bundle)
    assert rep["id"] == oid
    assert "--originator" in why
    defaults = Defaults(originator="ITA-GDF", category="routes", route="central-med")
    [draft] = import_bundle(bundle, defaults=defaults)
    r = draft.report
    assert (Tlp.AMBER, [], None) == (r.handling.tlp, r.handling.rel_to, draft.palermo_id)
    assert ["boss@example.org"] == [i.value for i in r.identifiers]
    assert ["Sea wolves"] == r.groups[0].names
    assert "LBY" == r.itinerary.transit[0].country  # type: ignore[union-attr]


def test_stripped_palermo_extension_is_refused() -> None:
    """A tool that dropped the Palermo extension dropped rel_to, H2 and the rest: a Palermo
    report with only its TLP left would be wider, so it is refused."""
    bundle = export(report("02"))  # AMBER, H2, rel_to groups
    actor = _first(bundle, "threat-actor")
    del actor["extensions"]
    actor.pop("granular_markings", None)  # they select the extension's item
    [(oid, why)] = _refused(bundle)
    assert actor["id"] == oid
    assert "extension was removed" in why


def test_foreign_persons_and_transport_map_or_are_refused() -> None:
    """An individual with a Palermo role becomes a person, an infrastructure a transport; an
    individual without such a role is refused, not dropped."""
    green = TLP2_MARKING_IDS[Tlp.GREEN]
    common = {"spec_version": "2.1", "created": "2026-01-01T00:00:00.000Z",
              "modified": "2026-01-01T00:00:00.000Z", "object_marking_refs": [green]}  # fmt: skip
    person = common | {
        "type": "identity", "id": "identity--0d7f0f7e-8a8e-4d5e-9c2b-6e1e2b0c0001",
        "name": "A. Skipper", "identity_class": "individual", "roles": ["boat-pilot"],
    }  # fmt: skip
    boat = common | {
        "type": "infrastructure", "id": "infrastructure--0d7f0f7e-8a8e-4d5e-9c2b-6e1e2b0c0002",
        "name": "Blue fishing boat",
    }  # fmt: skip
    rep = common | {
        "type": "report", "id": "report--0d7f0f7e-8a8e-4d5e-9c2b-6e1e2b0c0003", "name": "Boat",
        "published": "2026-01-01T00:00:00Z", "object_refs": [person["id"], boat["id"]],
    }  # fmt: skip
    bundle = {"type": "bundle", "id": "bundle--0d7f0f7e-8a8e-4d5e-9c2b-6e1e2b0c0004",
              "objects": [person, boat, rep]}  # fmt: skip
    defaults = Defaults(originator="ITA-GDF", category="routes", route="central-med")
    [draft] = import_bundle(bundle, defaults=defaults)
    assert [("boat-pilot", ["A. Skipper"])] == [
        (p.role.value, p.names) for p in draft.report.persons
    ]
    assert ["Blue fishing boat"] == [t.description for t in draft.report.transport]
    person["roles"] = ["analyst"]
    with pytest.raises(MarkingsUnmappable, match="without a Palermo person role"):
        import_bundle(bundle, defaults=defaults)


def test_not_a_bundle_is_an_input_error() -> None:
    """Garbage and a bundle without a report are refused with a reason, not a traceback."""
    with pytest.raises(InputError, match=r"not a STIX 2\.1 bundle"):
        import_bundle("{not json")
    bundle = export(report("02"))
    bundle["objects"] = [o for o in bundle["objects"] if o["type"] != "report"]
    with pytest.raises(InputError, match="no report"):
        import_bundle(bundle)


def _palermo_exts(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        o["extensions"][PALERMO_EXTENSION_ID]
        for o in bundle["objects"]
        if "handling" in o.get("extensions", {}).get(PALERMO_EXTENSION_ID, {})
    ]


def test_a_handling_key_dropped_on_the_way_is_refused() -> None:
    """A tool that drops ``h2: true`` from every object leaves a consistent block whose default
    (h2 false) is wider: the keys Palermo always writes must all be there."""
    bundle = export(report("02"))  # H2
    for ext in _palermo_exts(bundle):
        del ext["handling"]["h2"]
    [(oid, why)] = _refused(bundle)
    assert _first(bundle, "report")["id"] == oid
    assert "lacks h2" in why


def test_an_older_version_cannot_bring_a_revoked_report_back() -> None:
    """Versions are compared as times, not strings ('09:00:00.000Z' sorts after
    '09:00:00.000001Z' as text, but is earlier), so the revocation stays in force."""
    revoked = export(report("02"), retracted=True)
    for obj in revoked["objects"]:
        if obj.get("revoked"):
            obj["modified"] = "2026-06-01T09:00:00.000001Z"  # a microsecond after MODIFIED
    live = export(report("02"))
    bundle = revoked | {"objects": live["objects"] + revoked["objects"]}
    assert any("revoked" in why for _, why in _refused(bundle))


def test_malformed_extension_placements_are_refused_not_a_traceback() -> None:
    """An extension whose field or index is not a place in the IIR is a reason, not a crash."""
    for field, index in ((["groups"], 0), ("groups", "x"), ("groups", -1), ("report", 0)):
        bundle = export(report("02"))
        ext = _first(bundle, "threat-actor")["extensions"][PALERMO_EXTENSION_ID]
        ext["field"], ext["index"] = field, index
        whys = [why for _, why in _refused(bundle)]
        assert any("places the item at" in w or "does not seal" in w for w in whys), whys
    for prop, value in (("object_marking_refs", None), ("id", ["x"]), ("extensions", [])):
        bundle = export(report("02"))  # given as a mapping, checked as a file's text is
        _first(bundle, "threat-actor")[prop] = value
        with pytest.raises(InputError):
            import_bundle(bundle)


def test_a_bundle_above_the_size_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The limit is a typed error saying what to do, before anything is parsed."""
    import json

    from node.interop import stix_import

    text = json.dumps(export(report("02")))
    monkeypatch.setattr(stix_import, "MAX_BUNDLE_BYTES", len(text) - 1)
    with pytest.raises(InputError, match="split it into one bundle per report"):
        import_bundle(text)
    with pytest.raises(InputError, match="not JSON data"):
        import_bundle({"type": "bundle", "objects": [object()]})
