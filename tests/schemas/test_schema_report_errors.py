"""Invalid reports: every error is a ReportInvalid naming the field to fix."""

from __future__ import annotations

from typing import Any

import pytest

from schemas import parse_report
from schemas.errors import ReportInvalid
from tests.schemas._support import example, minimal, set_path


def _fields(data: Any) -> list[str]:
    with pytest.raises(ReportInvalid) as info:
        parse_report(data)
    fields = [e["field"] for e in info.value.errors]
    for field in fields:
        assert field in info.value.reason or len(fields) > 5
    return fields


CASES: list[tuple[str, str, tuple[Any, ...], Any, str]] = [
    # (test id, example, path, bad value, field named)
    ("bad-iso-country", "07", ("persons", 0, "nationality"), "XXX", "persons.0.nationality"),
    (
        "alpha2-country",
        "01",
        ("itinerary", "embarkation", 0, "country"),
        "LY",
        "itinerary.embarkation.0.country",
    ),
    ("bad-flag-state", "09", ("transport", 0, "vessel", "flag"), "ZZZ", "transport.0.vessel.flag"),
    (
        "bad-imo-check-digit",
        "09",
        ("transport", 0, "vessel", "imo"),
        "9074728",
        "transport.0.vessel.imo",
    ),
    (
        "imo-not-7-digits",
        "09",
        ("transport", 0, "vessel", "imo"),
        "907472",
        "transport.0.vessel.imo",
    ),
    (
        "mmsi-not-9-digits",
        "11",
        ("transport", 0, "vessel", "mmsi"),
        "52500012",
        "transport.0.vessel.mmsi",
    ),
    ("bad-flight", "10", ("transport", 0, "flight"), "flight 123", "transport.0.flight"),
    (
        "bad-currency",
        "07",
        ("finance", 0, "amount", "currency"),
        "euro",
        "finance.0.amount.currency",
    ),
    ("negative-amount", "07", ("finance", 0, "amount", "amount"), "-1", "finance.0.amount.amount"),
    (
        "amount-not-a-number",
        "07",
        ("finance", 0, "amount", "amount"),
        "lots",
        "finance.0.amount.amount",
    ),
    (
        "lat-out-of-range",
        "01",
        ("itinerary", "embarkation", 0, "lat"),
        90.5,
        "itinerary.embarkation.0.lat",
    ),
    (
        "lon-out-of-range",
        "01",
        ("itinerary", "embarkation", 0, "lon"),
        -180.01,
        "itinerary.embarkation.0.lon",
    ),
    (
        "bad-unlocode",
        "10",
        ("itinerary", "transit", 0, "unlocode"),
        "MYKU1",
        "itinerary.transit.0.unlocode",
    ),
    ("bad-iata", "10", ("itinerary", "transit", 0, "iata"), "KULX", "itinerary.transit.0.iata"),
    ("bad-icao", "10", ("itinerary", "transit", 0, "icao"), "wmkk", "itinerary.transit.0.icao"),
    ("naive-datetime", "10", ("observed",), "2026-11-18T21:40:00", "observed"),
    ("naive-expiry", "10", ("handling", "expires"), "2027-05-18T00:00:00", "handling.expires"),
    ("unknown-priority", "01", ("priority",), "asap", "priority"),
    ("unknown-category", "01", ("category",), "weapons", "category"),
    ("unknown-route", "01", ("route",), "route-66", "route"),
    ("unknown-role", "07", ("persons", 0, "role"), "kingpin", "persons.0.role"),
    ("unknown-fraud", "03", ("documents", 0, "fraud"), "fake", "documents.0.fraud"),
    (
        "unknown-death-cause",
        "08",
        ("incidents", 0, "death_causes", 0),
        "boredom",
        "incidents.0.death_causes.0",
    ),
    ("unknown-tlp", "01", ("handling", "tlp"), "PINK", "handling.tlp"),
    ("extra-top-level", "01", ("unexpected",), 1, "unexpected"),
    (
        "extra-nested",
        "07",
        ("persons", 0, "favourite_colour"),
        "blue",
        "persons.0.favourite_colour",
    ),
    ("bad-language-tag", "01", ("narrative", "language"), "English", "narrative.language"),
    ("bad-sha256", "08", ("attachments", 0, "sha256"), "ABC", "attachments.0.sha256"),
    ("bad-media-type", "08", ("attachments", 0, "media_type"), "jpeg", "attachments.0.media_type"),
    ("bad-person-ref", "07", ("persons", 0, "ref"), "M 1", "persons.0.ref"),
    ("future-schema", "01", ("schema",), "iir/2", "schema"),
    ("bad-originator", "01", ("originator",), "ita-gdf", "originator"),
    ("bad-date", "08", ("incidents", 0, "occurred_on"), "10/11/2026", "incidents.0.occurred_on"),
    ("deaths-negative", "08", ("incidents", 0, "deaths"), -3, "incidents.0.deaths"),
    ("empty-title", "01", ("title",), "   ", "title"),
    ("title-too-long", "01", ("title",), "x" * 201, "title"),
    ("narrative-too-long", "01", ("narrative", "text"), "x" * 20_001, "narrative.text"),
    ("unknown-evaluation-scheme", "02", ("evaluation", "scheme"), "gut-feeling", "evaluation"),
    (
        "evaluation-code-of-other-scheme",
        "02",
        ("evaluation", "source"),
        "F",
        "evaluation.europol-4x4.source",
    ),
]


@pytest.mark.parametrize(
    ("name", "path", "value", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_invalid_value_names_its_field(
    name: str, path: tuple[Any, ...], value: Any, field: str
) -> None:
    """The bad value is refused and the ReportInvalid errors and reason name its field."""
    assert field in _fields(set_path(example(name), path, value))


@pytest.mark.parametrize(
    ("path", "size", "field"),
    [
        (("persons",), 201, "persons"),
        (("concealment",), 201, "concealment"),
        (("refs",), 33, "refs"),
        (("itinerary", "transit"), 65, "itinerary.transit"),
        (("itinerary", "embarkation"), 17, "itinerary.embarkation"),
        (("groups", 0, "names"), 21, "groups.0.names"),
        (("documents", 0, "detection_indicators"), 51, "documents.0.detection_indicators"),
        (("incidents", 0, "death_causes"), 11, "incidents.0.death_causes"),
    ],
)
def test_too_long_lists_name_the_list(path: tuple[Any, ...], size: int, field: str) -> None:
    """A list over its limit is refused at the list itself."""
    data = minimal(
        itinerary={"embarkation": [], "transit": []},
        groups=[{"ref": "g1"}],
        documents=[{"type": "passport", "issuing_state": "ITA", "fraud": "forged"}],
        incidents=[{}],
    )
    items = {
        "persons": [{"ref": f"p{i}", "role": "driver"} for i in range(size)],
        "concealment": [{"method": "other"}] * size,
        "refs": [f"case-{i}" for i in range(size)],
        "itinerary": [{"country": "LBY"}] * size,
        "groups": ["alias"] * size,
        "documents": ["indicator"] * size,
        "incidents": ["drowning"] * size,
    }[path[0]]
    assert [field] == _fields(set_path(data, path, items))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (minimal(persons=[{"ref": "p1", "role": "driver"}] * 2), "person refs must be unique"),
        (minimal(groups=[{"ref": "g1"}, {"ref": "g1"}]), "group refs must be unique"),
        (minimal(groups=[{"ref": "g1", "member_refs": ["p9"]}]), "'p9', who is not in persons"),
        (
            minimal(
                documents=[
                    {"type": "visa", "issuing_state": "ITA", "fraud": "forged", "holder_ref": "p9"}
                ]
            ),
            "documents.0 names person 'p9'",
        ),
        (
            minimal(identifiers=[{"kind": "phone", "value": "+1", "person_ref": "p9"}]),
            "identifiers.0 names person 'p9'",
        ),
        (minimal(persons=[{"ref": "p1", "role": "driver", "group_ref": "g9"}]), "'g9' is not in"),
        (minimal(itinerary={"embarkation": [{"country": "LBY", "lat": 32.9}]}), "both lat and lon"),
    ],
)
def test_cross_field_rules(data: dict[str, Any], message: str) -> None:
    """References must resolve, refs be unique, and coordinates come in pairs."""
    with pytest.raises(ReportInvalid, match=message):
        parse_report(data)


def test_missing_required_fields_are_each_named() -> None:
    """An empty object lists every required field."""
    fields = _fields({})
    expected = ["originator", "category", "route", "title", "handling", "narrative", "contact"]
    assert expected == fields
