"""MISP events offline: one TLP tag, the distribution rule, round trips and refusals, and
misp-stix reading our STIX export with its TLP."""

from __future__ import annotations

import json
from typing import Any

import pytest
import stix2
from pymisp import MISPEvent

from node.interop import (
    Defaults,
    MarkingsUnmappable,
    distribution,
    export_bundle,
    export_event,
    import_event,
)
from node.interop.misp import HANDLING_COMMENT
from schemas import Tlp, parse_report
from schemas.errors import InputError
from tests.interop._bundles import CREATED, EXAMPLE_NAMES, LATER, MODIFIED, REPORT_ID, report


def _event(prefix: str, **options: Any) -> dict[str, Any]:
    options = {"report_id": REPORT_ID, "created": CREATED, "modified": MODIFIED} | options
    data: dict[str, Any] = json.loads(export_event(report(prefix), **options).to_json())
    return data


def _handling(**fields: Any) -> Any:
    return parse_report(report("02").to_wire() | {"handling": fields}).handling


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_example_loads_with_one_tlp_and_round_trips(name: str) -> None:
    """The event loads into MISPEvent, has exactly one TLP and one PAP tag, and imports back
    to the same report and handling."""
    original = report(name[:2])
    data = _event(name[:2])
    event = MISPEvent()
    event.load(json.dumps(data))
    tags = [t.name for t in event.tags]
    assert [f"tlp:{original.handling.tlp.value.lower()}"] == [t for t in tags if t[:4] == "tlp:"]
    assert 1 == len([t for t in tags if t.startswith("PAP:")])
    draft = import_event(data)
    assert original == draft.report
    assert original.handling == draft.report.handling
    assert REPORT_ID == draft.palermo_id


def test_distribution_rule() -> None:
    """Organisation only under H2, AMBER+STRICT, RED or deny_to; a sharing group of rel_to;
    this community for CLEAR/GREEN to every member; never connected or all communities."""
    assert (0, []) == distribution(_handling(tlp="GREEN", h2=True))
    assert (0, []) == distribution(_handling(tlp="AMBER+STRICT", rel_to=["ITA-GDF"]))
    assert (0, []) == distribution(_handling(tlp="RED", rel_to=["ITA-GDF"]))
    assert (0, []) == distribution(_handling(tlp="GREEN", deny_to=["country:LBY"]))
    assert (0, []) == distribution(_handling(tlp="AMBER"))
    embargo = "2026-06-02T00:00:00Z"  # MISP cannot hold an event until then
    assert (0, []) == distribution(_handling(tlp="GREEN", not_before=embargo))
    assert (0, []) == distribution(_handling(tlp="AMBER", rel_to=["ITA-GDF"], not_before=embargo))
    assert (4, ["ITA-GDF", "group:med"]) == distribution(
        _handling(tlp="AMBER", rel_to=["group:med", "ITA-GDF"])
    )
    assert (1, []) == distribution(_handling(tlp="GREEN"))
    assert (1, []) == distribution(_handling(tlp="CLEAR", rel_to=["all-members"]))


def test_sharing_group_names_exactly_rel_to() -> None:
    """A report to named agencies becomes a sharing group of exactly those."""
    data = _event("07")  # AMBER to named agencies
    orgs = sorted(o["Organisation"]["name"] for o in data["SharingGroup"]["SharingGroupOrg"])
    assert sorted(report("07").handling.rel_to) == orgs
    assert "4" == str(data["distribution"])


def test_sections_are_tagged_and_withheld_sections_left_out() -> None:
    """Personal data travels in attributes tagged with its section; withheld, it is absent."""
    full, bare = _event("10"), _event("10", withhold={"personal-data", "protected-persons"})
    tagged = [
        a
        for a in full["Attribute"]
        if any("palermo:section" in t["name"] for t in a.get("Tag", []))
    ]
    assert tagged
    names = [n for p in report("10").persons for n in p.names]
    assert names
    assert all(n in json.dumps(full) for n in names)
    assert not any(n in json.dumps(bare) for n in names)
    assert [] == import_event(bare).report.identifiers


def test_reexport_and_retraction_keep_uuids() -> None:
    """A later export updates the same event; a retraction deletes every attribute and is not
    imported back."""
    first, later = _event("11"), _event("11", modified=LATER, retracted=True)
    assert first["uuid"] == later["uuid"]
    assert [a["uuid"] for a in first["Attribute"]] == [a["uuid"] for a in later["Attribute"]]
    assert all(a["deleted"] for a in later["Attribute"])
    assert any(t["name"] == "palermo:retracted" for t in later["Tag"])
    with pytest.raises(MarkingsUnmappable, match="retracted"):
        import_event(later)


# --- refusals ---------------------------------------------------------------------------------


def _refused(data: dict[str, Any]) -> list[str]:
    with pytest.raises(MarkingsUnmappable) as caught:
        import_event(data)
    return [why for _, why in caught.value.problems]


def test_all_communities_for_named_agencies_is_refused() -> None:
    """The issue's case: a report for named agencies cannot come back as 'all communities'."""
    data = _event("07")
    data["distribution"] = "3"
    del data["SharingGroup"]
    [why] = _refused(data)
    assert "'all communities' cannot be mapped" in why


def test_two_tlp_tags_or_none_are_refused() -> None:
    """Exactly one TLP tag: two colours (a removal that did not sync) or none are refused."""
    data = _event("02")
    data["Tag"].append({"name": "tlp:green"})
    assert any("contradictory TLP tags" in w for w in _refused(data))
    data["Tag"] = [t for t in data["Tag"] if not t["name"].startswith("tlp:")]
    assert any("no TLP tag" in w for w in _refused(data))


def test_tag_contradicting_the_handling_attribute_is_refused() -> None:
    """A tlp tag edited to GREEN in MISP does not widen the AMBER handling."""
    data = _event("02")
    for tag in data["Tag"]:
        if tag["name"] == "tlp:amber":
            tag["name"] = "tlp:green"
    assert any("contradictory TLP" in w for w in _refused(data))


def test_removed_h2_tag_is_refused() -> None:
    """A palermo: tag removed in MISP contradicts the handling attribute."""
    data = _event("02")  # H2
    data["Tag"] = [t for t in data["Tag"] if t["name"] != "palermo:h2"]
    assert any("tags contradict the handling" in w for w in _refused(data))


def test_attribute_markings_are_refused() -> None:
    """Palermo holds one handling per report: an attribute's own TLP or distribution is
    refused."""
    data = _event("02")
    data["Attribute"][0]["distribution"] = "3"
    data["Attribute"][1]["Tag"] = [{"name": "tlp:red"}]
    whys = _refused(data)
    assert any("its own distribution" in w for w in whys)
    assert any("its own tlp:red tag" in w for w in whys)


def test_foreign_event_narrows_and_needs_defaults() -> None:
    """An event from another MISP: its TLP, H2 under 'your organisation only', a sharing group
    refused (it names MISP organisations), and the IIR fields it lacks from the defaults."""
    foreign: dict[str, Any] = {
        "uuid": "0b0f3c52-3c1f-4d59-9f42-5d2d8c1a0001",
        "info": "Boat departures",
        "distribution": "0",
        "Tag": [{"name": "tlp:amber"}],
        "Attribute": [
            {"type": "phone-number", "value": "+218 91 000 0000", "category": "Person"},
            {"type": "threat-actor", "value": "Sea wolves", "category": "Attribution"},
            {"type": "text", "value": "Departures from Zuwara at night.", "category": "Other"},
        ],
    }
    assert any("--originator" in w for w in _refused(foreign))
    defaults = Defaults(originator="ITA-GDF", category="routes", route="central-med")
    draft = import_event(foreign, defaults=defaults)
    assert (Tlp.AMBER, True) == (draft.report.handling.tlp, draft.report.handling.h2)
    assert ["+218 91 000 0000"] == [i.value for i in draft.report.identifiers]
    foreign["distribution"] = "4"
    with pytest.raises(MarkingsUnmappable, match="sharing group"):
        import_event(foreign, defaults=defaults)


def test_not_an_event_is_an_input_error() -> None:
    """Garbage is refused with a reason."""
    with pytest.raises(InputError, match="not a MISP event"):
        import_event("[1, 2")


def test_removed_handling_attribute_is_refused() -> None:
    """A Palermo event whose palermo-handling attribute was deleted in MISP would fall back to
    its TLP tag (losing rel_to, H2, deny_to...): refused."""
    data = _event("02")
    data["Attribute"] = [a for a in data["Attribute"] if a["comment"] != HANDLING_COMMENT]
    assert any("palermo-handling attribute was removed" in w for w in _refused(data))


@pytest.mark.filterwarnings("ignore::ImportWarning")  # six, imported by misp-stix's STIX 1 side
def test_misp_stix_converts_our_stix_export_keeping_the_tlp() -> None:
    """misp-stix turns our STIX bundle into a MISP event that carries the same TLP."""
    from misp_stix_converter.stix2misp.external_stix2_to_misp import ExternalSTIX2toMISPParser

    for prefix, tlp in (("02", "tlp:amber"), ("08", "tlp:red"), ("18", "tlp:clear")):
        bundle = export_bundle(
            report(prefix), report_id=REPORT_ID, created=CREATED, modified=MODIFIED
        )
        parser = ExternalSTIX2toMISPParser()
        parser.load_stix_bundle(stix2.parse(bundle.serialize(), allow_custom=True))
        parser.parse_stix_bundle(single_event=True)
        tags = [t.name for t in parser.misp_event.tags]
        assert [tlp] == [t for t in tags if t.startswith("tlp:")]


def test_deleted_palermo_attributes_are_a_retraction_even_without_the_tag() -> None:
    """A retraction deletes every attribute and tags the event: with the tag removed (a tag
    removal that did not sync), the deleted attributes still say the report was withdrawn."""
    data = _event("11", modified=LATER, retracted=True)
    data["Tag"] = [t for t in data["Tag"] if t["name"] != "palermo:retracted"]
    whys = _refused(data)
    assert whys
    assert all("is deleted: the report was retracted" in w for w in whys)
    data["Tag"].append({"name": "Palermo:Retracted"})  # the tag in another case is the tag
    assert ["retracted by its originator: there is nothing to import"] == _refused(data)


def test_an_event_with_a_palermo_attribute_but_no_handling_is_refused() -> None:
    """Removing the handling and the body but keeping a sealed part does not make an event
    foreign (its TLP tag alone would lose rel_to, deny_to, H2...)."""
    data = _event("10")
    data["Attribute"] = [
        a for a in data["Attribute"] if a["comment"] not in (HANDLING_COMMENT, "palermo-iir")
    ]
    data["Tag"] = [t for t in data["Tag"] if t["name"].startswith("tlp:")]
    defaults = Defaults(originator="ITA-GDF", category="routes", route="central-med")
    with pytest.raises(MarkingsUnmappable, match="palermo-handling attribute was removed"):
        import_event(data, defaults=defaults)


def test_malformed_events_are_input_errors_that_say_what_is_wrong() -> None:
    """A uuid that is not a UUID (it names the draft's file), no distribution, a sealed part
    that is not a section: typed errors, never a traceback."""
    data = _event("10")
    with pytest.raises(InputError, match="is not a UUID"):
        import_event(data | {"uuid": "../../etc/cron.d/x"})
    with pytest.raises(InputError, match="no distribution"):
        import_event({"uuid": data["uuid"], "info": "x", "Tag": [{"name": "tlp:red"}]})
    for attribute in data["Attribute"]:
        if attribute["comment"] == "palermo-iir:personal-data":
            attribute["value"] = "[1]"
    with pytest.raises(MarkingsUnmappable, match="do not make a report"):
        import_event(data)
    data = _event("02")
    data["Attribute"][0]["comment"] = ["palermo-handling"]  # not a comment: not ours either
    data["Attribute"][1]["deleted"] = None
    with pytest.raises(MarkingsUnmappable, match="palermo-handling attribute was removed"):
        import_event(data)
    data = _event("07")  # a sharing group
    with pytest.raises(InputError, match="every Tag needs a name"):
        import_event(data | {"Tag": [{"name": 5}, *data["Tag"]]})
    for group in ({"SharingGroupOrg": [{"Organisation": {}}]}, []):
        with pytest.raises(MarkingsUnmappable, match="is not the handling's rel_to"):
            import_event(data | {"SharingGroup": group})


def test_drafts_are_written_under_their_directory_only(tmp_path: Any) -> None:
    """A source id that is not a UUID never names a file (a path outside the directory)."""
    from node.cli._stix import write_drafts
    from node.interop import Draft

    draft = Draft(report("02"), "report--../../outside", None)
    with pytest.raises(InputError, match="not a UUID"):
        write_drafts([draft], tmp_path / "drafts")
    assert not (tmp_path / "outside.iir.json").exists()
    ok = Draft(report("02"), "report--0b0f3c52-3c1f-4d59-9f42-5d2d8c1a0001", None)
    [path] = write_drafts([ok], tmp_path / "drafts")
    assert tmp_path / "drafts" / "0b0f3c52-3c1f-4d59-9f42-5d2d8c1a0001.iir.json" == path


def test_retraction_deletes_every_object_and_sends_no_content() -> None:
    """Geolocation objects keep their attributes' uuids across exports (a re-export updates,
    never piles up) and are deleted by a retraction; no value of the report is sent again."""
    r = report("01")  # itinerary points
    first, again = _event("01"), _event("01", modified=LATER)
    gone = _event("01", modified=LATER, retracted=True)

    def uuids(data: dict[str, Any]) -> list[str]:
        return [a["uuid"] for o in data["Object"] for a in o["Attribute"]]

    assert first["Object"]
    assert uuids(first) == uuids(again) == uuids(gone)
    assert all(o["deleted"] for o in gone["Object"])
    assert all(a["deleted"] for o in gone["Object"] for a in o["Attribute"])
    text = json.dumps(gone)
    points = [p for leg in ("embarkation", "transit", "destination")
              for p in getattr(r.itinerary, leg)]  # fmt: skip
    secrets = [r.title, r.narrative.text, *(p.place for p in points if p.place)]
    secrets += [i.value for i in r.identifiers] + [n for g in r.groups for n in g.names]
    assert all(s not in text for s in secrets)
    assert all(s in json.dumps(first) for s in secrets)
    event = MISPEvent()
    event.load(json.dumps(gone))


def test_an_event_above_the_size_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The limit is a typed error saying what to do, before PyMISP reads anything."""
    from node.interop import misp_import

    text = json.dumps(_event("02"))
    monkeypatch.setattr(misp_import, "MAX_EVENT_BYTES", len(text) - 1)
    with pytest.raises(InputError, match="split it into one event per report"):
        import_event(text)
