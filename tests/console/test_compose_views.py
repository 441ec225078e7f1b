"""The compose form as data: the report it builds, schema errors on their fields, the preview."""

from __future__ import annotations

import pytest

from node.console.views_compose import ComposeForm, field_errors, recipient_preview
from policies import Decision, Reason
from schemas.errors import ReportInvalid

FORM = {
    "kind": "alert", "priority": "urgent", "route": "central-med", "category": "routes",
    "title": "Boat departed", "text": "Seen at dawn.", "unit": "Ops room", "tlp": "AMBER",
    "rel_to": "group:med-coastal, MLT-AFM", "embark_country": "lby", "embark_place": "Zuwara",
    "person_role": "boat-pilot", "person_name": "A. Pilot", "person_nationality": "sen",
}  # fmt: skip


def test_form_makes_a_valid_report() -> None:
    """Upper-cased country codes, split rel_to, one itinerary point, one person."""
    report = ComposeForm(FORM).report("ITA-GDF")
    assert ("ITA-GDF", "alert", "urgent") == (
        report.originator, report.kind.value, report.priority.value
    )  # fmt: skip
    assert ["MLT-AFM", "group:med-coastal"] == report.handling.rel_to
    assert report.itinerary is not None
    assert ("LBY", "Zuwara") == (
        report.itinerary.embarkation[0].country, report.itinerary.embarkation[0].place
    )  # fmt: skip
    assert [] == report.itinerary.destination
    assert ("boat-pilot", ["A. Pilot"], "SEN") == (
        report.persons[0].role.value, report.persons[0].names, report.persons[0].nationality
    )  # fmt: skip


def test_schema_errors_land_on_their_fields() -> None:
    """What 'palermo schema validate' reports, each on the form field that fills the path."""
    bad = {**FORM, "title": "", "embark_country": "XXX", "route": "nowhere", "person_role": ""}
    with pytest.raises(ReportInvalid) as caught:
        ComposeForm(bad).report("ITA-GDF")
    by_field, other = field_errors(caught.value)
    assert {"title", "embark_country", "route", "person_role"} == set(by_field)
    assert "not an ISO 3166-1 alpha-3" in by_field["embark_country"][0]
    assert not by_field["embark_country"][0].startswith("Value error")
    assert [] == other


def test_errors_without_a_field_go_to_the_summary() -> None:
    """An error on a path the form has no field for is listed apart, with its path."""
    exc = ReportInvalid("x", [{"field": "handling.deny_to.0", "message": "bad", "type": "t"}])
    assert ({}, ["handling.deny_to.0: bad"]) == field_errors(exc)


def test_preview_says_who_receives_who_not_and_why() -> None:
    """Allowed candidates receive; refused ones carry policy check's reasons; members that do
    not follow the topic are named; refused only for personal data: the tear-line offer."""
    personal = Reason("policy-no-personal-data", "no personal data to LBY-DCIM")
    decisions = {
        "MLT-AFM": Decision("MLT-AFM", True, (), withheld_sections=("protected-persons",)),
        "LBY-DCIM": Decision("LBY-DCIM", False, (personal,)),
        "GRC-HCG": Decision("GRC-HCG", False, (Reason("not-in-rel-to", "not in rel_to"),)),
        "AUS-ABF": Decision("AUS-ABF", True, ()),
    }
    preview = recipient_preview(
        decisions, ["MLT-AFM", "LBY-DCIM", "GRC-HCG"], ["MLT-AFM", "LBY-DCIM", "GRC-HCG", "AUS-ABF"]
    )
    assert [{"agency": "MLT-AFM", "withheld": ["protected-persons"], "obligations": []}] == (
        preview["receive"]
    )
    assert ["GRC-HCG", "LBY-DCIM"] == [r["agency"] for r in preview["refused"]]
    assert [{"code": "policy-no-personal-data", "message": "no personal data to LBY-DCIM"}] == (
        preview["refused"][1]["reasons"]
    )
    assert (["AUS-ABF"], ["LBY-DCIM"], False) == (
        preview["not_following"], preview["tear_line"], preview["nobody"]
    )  # fmt: skip
