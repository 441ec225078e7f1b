"""The route map of a report's itinerary: an SVG the node draws itself.

No map tiles and nothing fetched: a page that loaded tiles from a third party would tell that
party which area an officer is looking at, and the Content-Security-Policy allows only the
node's own origin. The map is drawn from coordinates shipped with the node
(``data/countries.json``, ``data/places.json``; sources in ``data/README.md``): a point is placed
at the report's own ``lat``/``lon``, else at its UN/LOCODE, else at its country (then marked
approximate); a point none of these places is listed under the map instead.

Everything in the SVG that comes from the report (place names) is escaped here: the report is
partner-controlled input, and the page inserts this SVG as markup.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path
from typing import Final

from markupsafe import Markup

from schemas import Report
from schemas._common import Point

__all__ = ["MapPoint", "RouteMap", "route_map"]

WIDTH: Final[int] = 640
HEIGHT: Final[int] = 360
PAD: Final[int] = 36
# The smallest span drawn, in degrees: one point alone, or points a few km apart, still get a
# map around them rather than a division by zero or a street-level zoom with no context.
MIN_SPAN_DEG: Final[float] = 6.0
ROLES: Final[tuple[str, ...]] = ("embarkation", "transit", "destination")
# Role colours on the light background: each has at least 4.5:1 contrast with it (WCAG AA,
# tests/console/test_routemap.py checks), and the roles also differ by shape and label.
ROLE_COLOUR: Final[dict[str, str]] = {
    "embarkation": "#0b5d1e",
    "transit": "#6b3fa0",
    "destination": "#a11d1d",
}
BACKGROUND: Final[str] = "#f4f7fa"


@dataclass(frozen=True)
class MapPoint:
    role: str
    label: str
    lat: float
    lon: float
    approximate: bool
    certainty: str


@dataclass(frozen=True)
class RouteMap:
    """The drawn map, the points placed on it and the points it could not place."""

    svg: Markup
    points: tuple[MapPoint, ...]
    unplaced: tuple[str, ...]


@cache
def _coordinates(name: str) -> dict[str, tuple[float, float]]:
    text = (Path(__file__).parent / "data" / name).read_text(encoding="utf-8")
    return {k: (float(v[0]), float(v[1])) for k, v in json.loads(text).items()}


def _label(point: Point) -> str:
    return point.place or point.unlocode or point.country


def _place(role: str, point: Point) -> MapPoint | None:
    label = _label(point)
    certainty = point.certainty.value
    if point.lat is not None and point.lon is not None:
        return MapPoint(role, label, point.lat, point.lon, False, certainty)
    if point.unlocode is not None and point.unlocode in _coordinates("places.json"):
        lat, lon = _coordinates("places.json")[point.unlocode]
        return MapPoint(role, label, lat, lon, False, certainty)
    if point.country in _coordinates("countries.json"):
        lat, lon = _coordinates("countries.json")[point.country]
        return MapPoint(role, label, lat, lon, True, certainty)
    return None


def _points(report: Report) -> tuple[list[MapPoint], list[str]]:
    placed: list[MapPoint] = []
    unplaced: list[str] = []
    if report.itinerary is None:
        return placed, unplaced
    for role in ROLES:
        for point in getattr(report.itinerary, role):
            found = _place(role, point)
            if found is None:
                unplaced.append(f"{role}: {_label(point)} ({point.country})")
            else:
                placed.append(found)
    return placed, unplaced


class _Projection:
    """Equirectangular, longitudes shrunk by the cosine of the middle latitude so that shapes
    near the map's centre are not stretched, fitted into the drawing with a margin."""

    def __init__(self, points: list[MapPoint]) -> None:
        lats = [p.lat for p in points]
        lons = [p.lon for p in points]
        mid_lat = (min(lats) + max(lats)) / 2
        self.k = max(math.cos(math.radians(mid_lat)), 0.2)
        lat_span = max(max(lats) - min(lats), MIN_SPAN_DEG)
        lon_span = max((max(lons) - min(lons)) * self.k, MIN_SPAN_DEG)
        scale = min((WIDTH - 2 * PAD) / lon_span, (HEIGHT - 2 * PAD) / lat_span)
        self.scale = scale
        self.cx = (min(lons) + max(lons)) / 2
        self.cy = mid_lat

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        x = WIDTH / 2 + (lon - self.cx) * self.k * self.scale
        y = HEIGHT / 2 - (lat - self.cy) * self.scale
        return round(x, 1), round(y, 1)

    def inside(self, lat: float, lon: float) -> bool:
        x, y = self.xy(lat, lon)
        return 0 <= x <= WIDTH and 0 <= y <= HEIGHT

    def degrees(self) -> tuple[float, float, float, float]:
        """The latitudes and longitudes at the drawing's edges (south, north, west, east)."""
        half_lat = HEIGHT / 2 / self.scale
        half_lon = WIDTH / 2 / self.scale / self.k
        return self.cy - half_lat, self.cy + half_lat, self.cx - half_lon, self.cx + half_lon


def _graticule(proj: _Projection) -> list[str]:
    """Lines every 5 or 10 degrees with their labels: the reader's sense of where and how far,
    in place of a base map."""
    south, north, west, east = proj.degrees()
    step = 5 if max(north - south, east - west) < 40 else 10
    out = []
    for lat in range(math.ceil(south / step) * step, math.floor(north / step) * step + 1, step):
        _, y = proj.xy(lat, proj.cx)
        hemi = "N" if lat >= 0 else "S"
        out.append(f'<line class="grid" x1="0" y1="{y}" x2="{WIDTH}" y2="{y}"/>')
        out.append(f'<text class="grid-label" x="4" y="{y - 3}">{abs(lat)}°{hemi}</text>')
    for lon in range(math.ceil(west / step) * step, math.floor(east / step) * step + 1, step):
        x, _ = proj.xy(proj.cy, lon)
        hemi = "E" if lon >= 0 else "W"
        out.append(f'<line class="grid" x1="{x}" y1="0" x2="{x}" y2="{HEIGHT}"/>')
        out.append(
            f'<text class="grid-label" x="{x + 3}" y="{HEIGHT - 4}">{abs(lon)}°{hemi}</text>'
        )
    return out


def _countries(proj: _Projection, points: list[MapPoint]) -> list[str]:
    """The countries whose point falls on the map, as small grey codes: enough to read the
    map as "Libya to Italy" without drawing coastlines."""
    taken = {(round(p.lat, 1), round(p.lon, 1)) for p in points}
    out = []
    for code, (lat, lon) in sorted(_coordinates("countries.json").items()):
        if proj.inside(lat, lon) and (round(lat, 1), round(lon, 1)) not in taken:
            x, y = proj.xy(lat, lon)
            out.append(f'<text class="country" x="{x}" y="{y}">{code}</text>')
    return out


def _legs(points: list[MapPoint]) -> list[tuple[MapPoint, MapPoint]]:
    """Every embarkation to the first transit point, transit points in order, the last one to
    every destination (or embarkation straight to destination when there is no transit)."""
    by_role = {role: [p for p in points if p.role == role] for role in ROLES}
    legs: list[tuple[MapPoint, MapPoint]] = []
    transit = by_role["transit"]
    starts, ends = by_role["embarkation"], by_role["destination"]
    if transit:
        legs += [(s, transit[0]) for s in starts]
        legs += list(itertools.pairwise(transit))
        legs += [(transit[-1], e) for e in ends]
    else:
        legs += [(s, e) for s in starts for e in ends]
    return legs


def _marker(role: str, x: float, y: float) -> str:
    colour = ROLE_COLOUR[role]
    if role == "embarkation":
        return f'<circle cx="{x}" cy="{y}" r="6" fill="{colour}"/>'
    if role == "transit":
        return f'<rect x="{x - 5}" y="{y - 5}" width="10" height="10" fill="{colour}"/>'
    return f'<polygon points="{x},{y - 7} {x + 7},{y + 6} {x - 7},{y + 6}" fill="{colour}"/>'


def route_map(report: Report) -> RouteMap | None:
    """The report's itinerary as an SVG, or None when it has no itinerary point to draw."""
    points, unplaced = _points(report)
    if not points:
        return None if not unplaced else RouteMap(Markup(""), (), tuple(unplaced))
    proj = _Projection(points)
    desc = "; ".join(
        f"{p.role} {p.label}{' (approximate: country)' if p.approximate else ''}" for p in points
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="route-map" viewBox="0 0 {WIDTH} '
        f'{HEIGHT}" role="img" aria-labelledby="route-map-title route-map-desc">',
        '<title id="route-map-title">Route map</title>',
        f'<desc id="route-map-desc">{escape(desc)}</desc>',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="{BACKGROUND}"/>',
        *_graticule(proj),
        *_countries(proj, points),
    ]
    for a, b in _legs(points):
        (x1, y1), (x2, y2) = proj.xy(a.lat, a.lon), proj.xy(b.lat, b.lon)
        dashed = " leg-suspected" if "suspected" in (a.certainty, b.certainty) else ""
        parts.append(f'<line class="leg{dashed}" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}"/>')
    for p in points:
        x, y = proj.xy(p.lat, p.lon)
        approx = " (approx.)" if p.approximate else ""
        parts.append(f'<g class="point point-{p.role}">{_marker(p.role, x, y)}')
        parts.append(
            f'<text class="point-label" x="{x + 9}" y="{y - 8}">'
            f"{escape(p.label)}{approx}</text></g>"
        )
    parts.append("</svg>")
    # Every report-derived string above went through html.escape; the rest is our own markup.
    return RouteMap(Markup("\n".join(parts)), tuple(points), tuple(unplaced))  # noqa: S704
