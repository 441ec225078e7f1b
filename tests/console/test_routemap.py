"""The route map: points placed from the report, its UN/LOCODE or its country, escaped."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree

from node.console.routemap import BACKGROUND, ROLE_COLOUR, route_map
from node.console.views import contrast_ratio
from schemas._countries import ISO3166_ALPHA3
from tests.harness import EXAMPLES, example

DATA = Path(__file__).resolve().parents[2] / "node" / "console" / "data"
SVG = "{http://www.w3.org/2000/svg}"


def _with_itinerary(itinerary: dict[str, object]) -> object:
    from schemas.export import parse_report

    data = json.loads(next(EXAMPLES.glob("01*.json")).read_text())
    data["itinerary"] = itinerary
    return parse_report(json.dumps(data))


def test_example_route_is_drawn_from_its_own_and_shipped_coordinates() -> None:
    """Zuwara by its lat/lon, Lampedusa by its UN/LOCODE; a line joins them."""
    drawn = route_map(example("01"))
    assert drawn is not None
    tree = ElementTree.fromstring(str(drawn.svg))
    assert ["embarkation", "destination"] == [p.role for p in drawn.points]
    assert [False, False] == [p.approximate for p in drawn.points]
    assert 1 == len(tree.findall(f"{SVG}line[@class='leg leg-suspected']"))
    labels = [t.text for t in tree.iter(f"{SVG}text") if t.get("class") == "point-label"]
    assert ["Zuwara", "Lampedusa"] == labels
    # The countries around the route give context without tiles.
    assert "MLT" in {t.text for t in tree.iter(f"{SVG}text") if t.get("class") == "country"}


def test_country_fallback_transit_order_and_unplaced_points() -> None:
    """No lat/lon and no known LOCODE: the country's point, marked approximate; a country
    with no shipped point is listed, not drawn; transit points are joined in order."""
    report = _with_itinerary(
        {
            "embarkation": [{"country": "SDN", "place": "Khartoum"}],
            "transit": [
                {"country": "LBY", "place": "Kufra"},
                {"country": "LBY", "unlocode": "LYTOB"},
            ],
            "destination": [{"country": "GRC", "unlocode": "GRMJT"}, {"country": "SSD"}],
        }
    )
    drawn = route_map(report)  # type: ignore[arg-type]
    assert drawn is not None
    assert [
        ("embarkation", True),
        ("transit", True),
        ("transit", False),
        ("destination", False),
    ] == [(p.role, p.approximate) for p in drawn.points]
    assert ("destination: SSD (SSD)",) == drawn.unplaced
    tree = ElementTree.fromstring(str(drawn.svg))
    assert 3 == len([e for e in tree.iter(f"{SVG}line") if "leg" in (e.get("class") or "")])


def test_place_names_are_escaped() -> None:
    """A partner-controlled place name cannot add markup to the SVG."""
    payload = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    report = _with_itinerary({"embarkation": [{"country": "LBY", "place": payload[:200]}]})
    drawn = route_map(report)  # type: ignore[arg-type]
    assert drawn is not None
    tree = ElementTree.fromstring(str(drawn.svg))  # still well-formed XML
    assert not list(tree.iter(f"{SVG}script"))
    assert not list(tree.iter(f"{SVG}img"))
    assert "<script>" not in str(drawn.svg)
    assert any(payload in (t.text or "") for t in tree.iter(f"{SVG}text"))


def test_no_itinerary_no_map() -> None:
    """A report without an itinerary gets no map at all."""
    assert route_map(example("05")) is None


def test_shipped_data_covers_the_codes_and_examples() -> None:
    """Every code is a real ISO alpha-3 with coordinates in range; every UN/LOCODE the
    examples use has a point."""
    countries = json.loads((DATA / "countries.json").read_text())
    places = json.loads((DATA / "places.json").read_text())
    assert set(countries) <= ISO3166_ALPHA3
    assert len(countries) >= 240
    for lat, lon in [*countries.values(), *places.values()]:
        assert -90 <= lat <= 90
        assert -180 <= lon <= 180
    used = {
        m.group(1)
        for f in EXAMPLES.glob("*.json")
        for m in re.finditer(r'"(?:place_)?unlocode": "(\w+)"', f.read_text())
    }
    assert used <= set(places)
    assert {code[:2] for code in places} <= {"AU", "ES", "GR", "ID", "IT", "LK", "LY", "MT", "MY"}


def test_role_colours_meet_aa_on_the_map_background() -> None:
    """Marker and label colours have at least 4.5:1 contrast on the map's background."""
    for colour in ROLE_COLOUR.values():
        assert contrast_ratio(colour, BACKGROUND) >= 4.5
