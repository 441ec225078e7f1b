"""Shared helpers for the schema tests: the example reports and hypothesis strategies."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from schemas import Category, Route

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "schemas" / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.json"))

AGENCIES = ["ITA-GDF", "MLT-AFM", "GRC-HCG", "ESP-GC", "AUS-ABF", "IDN-IMI", "LBY-DCIM", "TUR-CG"]
COUNTRIES = ["ITA", "LBY", "ERI", "SDN", "AFG", "SYR", "MMR", "AUS", "IDN", "TUR"]
# Valid IMO numbers (check digit: sum of the first six digits weighted 7..2, mod 10).
IMO_NUMBERS = ["9074729", "9176187", "8814275", "1234567"]


@cache
def _examples() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in EXAMPLES}


def example(prefix: str) -> dict[str, Any]:
    """A fresh, mutable copy of the example file whose name starts with ``prefix``."""
    name = next(n for n in _examples() if n.startswith(prefix))
    return copy.deepcopy(_examples()[name])


def minimal(**fields: Any) -> dict[str, Any]:
    """The smallest valid report, plus ``fields``."""
    base: dict[str, Any] = {
        "originator": "ITA-GDF",
        "category": "routes",
        "route": "central-med",
        "title": "Minimal report",
        "handling": {"tlp": "GREEN"},
        "narrative": {"language": "en", "text": "Departures observed."},
        "contact": {"unit": "Operations room", "channel": "palermo"},
    }
    return base | fields


def set_path(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """Set ``data[p0][p1]...[pn] = value`` in place and return ``data``."""
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


# --- hypothesis strategies: JSON-shaped report data ---------------------------------------------

_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)
_texts = st.lists(_words, min_size=1, max_size=4).map(" ".join)
certainty = st.sampled_from(["known", "suspected"])

point = st.fixed_dictionaries(
    {"country": st.sampled_from(COUNTRIES)},
    optional={
        "place": _texts,
        "unlocode": st.sampled_from(["ITPMO", "LYTIP", "MTMLA", "IDKOE"]),
        "iata": st.sampled_from(["PMO", "TIP", "MLA", "SYD"]),
        "icao": st.sampled_from(["LICJ", "HLLT", "LMML", "YSSY"]),
        "certainty": certainty,
    },
).flatmap(
    lambda p: st.one_of(
        st.just(p),
        st.tuples(st.floats(-90, 90, allow_nan=False), st.floats(-180, 180, allow_nan=False)).map(
            lambda ll: p | {"lat": ll[0], "lon": ll[1]}
        ),
    )
)

evaluation = st.one_of(
    st.fixed_dictionaries(
        {
            "scheme": st.just("europol-4x4"),
            "source": st.sampled_from("ABCX"),
            "information": st.sampled_from("1234"),
        }
    ),
    st.fixed_dictionaries(
        {
            "scheme": st.just("admiralty-6x6"),
            "source": st.sampled_from("ABCDEF"),
            "information": st.sampled_from("123456"),
        }
    ),
    st.fixed_dictionaries(
        {
            "scheme": st.just("uk-5x5x5"),
            "source": st.sampled_from("ABCDE"),
            "intelligence": st.sampled_from("12345"),
            "handling": st.sampled_from("12345"),
        }
    ),
    st.fixed_dictionaries(
        {
            "scheme": st.just("uk-3x5x2"),
            "source": st.sampled_from("123"),
            "intelligence": st.sampled_from("ABCDE"),
            "handling": st.sampled_from("PC"),
        }
    ),
)

transport = st.fixed_dictionaries(
    {
        "mode": st.sampled_from(
            ["sea-inflatable", "sea-fishing-vessel", "land-lorry", "air-charter"]
        )
    },
    optional={
        "vessel": st.fixed_dictionaries(
            {},
            optional={
                "name": _texts,
                "imo": st.sampled_from(IMO_NUMBERS),
                "mmsi": st.from_regex(r"\A[0-9]{9}\Z"),
                "flag": st.sampled_from(COUNTRIES),
            },
        ),
        "flight": st.sampled_from(["MH123", "TK1881", "U21234A"]),
        "vehicle_plate": _texts,
        "vehicle_country": st.sampled_from(COUNTRIES),
        "capacity": st.integers(0, 500),
        "certainty": certainty,
    },
)

money = st.fixed_dictionaries(
    {
        "amount": st.decimals(min_value=0, max_value=10**6, places=2).map(str),
        "currency": st.sampled_from(["EUR", "USD", "LYD", "IDR"]),
    }
)

finance = st.fixed_dictionaries(
    {"kind": st.sampled_from(["fee", "payment", "bribe", "laundering"])},
    optional={
        "amount": money,
        "per_person": st.booleans(),
        "method": st.sampled_from(["cash", "hawala", "cryptocurrency", "mobile-money"]),
        "stage": _texts,
        "place": point,
        "certainty": certainty,
    },
)

incident = st.fixed_dictionaries(
    {},
    optional={
        "occurred_on": st.dates().map(str),
        "place": point,
        "deaths": st.integers(0, 100),
        "missing": st.integers(0, 100),
        "death_causes": st.lists(st.sampled_from(["drowning", "hypothermia"]), max_size=2),
        "crimes": st.lists(st.sampled_from(["extortion", "kidnapping"]), max_size=2),
        "certainty": certainty,
    },
)

ROLES = ["organiser", "driver", "broker", "smuggled-migrant", "witness", "victim"]
STATUSES = ["migrant", "asylum-seeker", "refugee", "unaccompanied-minor", "none"]

person_details = st.fixed_dictionaries(
    {},
    optional={
        "legal_status": st.sampled_from(["convicted", "suspected", "unknown"]),
        "certainty": certainty,
        "names": st.lists(_texts, max_size=2),
        "aliases": st.lists(_texts, max_size=2),
        "date_of_birth": st.dates().map(str),
        "age_band": st.sampled_from(["0-13", "18-24", "unknown"]),
        "sex": st.sampled_from(["female", "male", "unknown"]),
        "nationality": st.sampled_from(COUNTRIES),
        "country_of_origin": st.sampled_from(COUNTRIES),
        "protection_status": st.sampled_from(STATUSES),
        "travelling_alone": st.booleans(),
        "notes": _texts,
    },
)


@st.composite
def report_data(draw: st.DrawFn) -> dict[str, Any]:
    """A valid report as JSON-shaped data, exercising every field group and cross-reference."""
    roles = draw(st.lists(st.sampled_from(ROLES), max_size=6))
    refs = [f"p{i}" for i in range(len(roles))]
    group_refs = [f"g{i}" for i in range(draw(st.integers(0, 2)))]
    maybe_person = st.sampled_from([None, *refs])
    persons = []
    for ref, role in zip(refs, roles, strict=True):
        person = {"ref": ref, "role": role} | draw(person_details)
        group = draw(st.sampled_from([None, *group_refs]))
        if group is not None:
            person["group_ref"] = group
        persons.append(person)
    groups = [
        {
            "ref": ref,
            "names": draw(st.lists(_texts, max_size=2)),
            "structure": draw(st.sampled_from(["lone-operator", "organised-group", "unknown"])),
            "member_refs": draw(st.lists(st.sampled_from(refs), max_size=3)) if refs else [],
            "convention_group": draw(st.sampled_from([None, True, False])),
            "certainty": draw(certainty),
        }
        for ref in group_refs
    ]
    documents = []
    for _ in range(draw(st.integers(0, 2))):
        doc = {
            "type": draw(st.sampled_from(["passport", "visa", "national-id"])),
            "issuing_state": draw(st.sampled_from(COUNTRIES)),
            "fraud": draw(st.sampled_from(["counterfeit", "impostor", "stolen-blank"])),
            "detection_indicators": draw(st.lists(_texts, max_size=2)),
        }
        holder = draw(maybe_person)
        if holder is not None:
            doc["holder_ref"] = holder
        documents.append(doc)
    identifiers = []
    for i in range(draw(st.integers(0, 4))):
        ident = {
            "kind": draw(st.sampled_from(["phone", "iban", "crypto-wallet"])),
            "value": f"v{i}",
        }
        owner = draw(maybe_person)
        if owner is not None:
            ident["person_ref"] = owner
        identifiers.append(ident)
    data = minimal(
        originator=draw(st.sampled_from(AGENCIES)),
        category=draw(st.sampled_from([c.value for c in Category])),
        route=draw(st.sampled_from([r.value for r in Route])),
        persons=persons,
        groups=groups,
        documents=documents,
        identifiers=identifiers,
    )
    optional = {
        "priority": st.sampled_from(["urgent", "routine"]),
        "kind": st.sampled_from(["alert", "report"]),
        "observed": st.integers(0, 2**45),
        "evaluation": evaluation,
        "itinerary": st.fixed_dictionaries(
            {},
            optional={
                "embarkation": st.lists(point, max_size=2),
                "transit": st.lists(point, max_size=3),
                "destination": st.lists(point, max_size=2),
            },
        ),
        "transport": st.lists(transport, max_size=2),
        "concealment": st.lists(
            st.fixed_dictionaries(
                {"method": st.sampled_from(["lorry-cargo", "false-wall", "other"])},
                optional={"indicators": st.lists(_texts, max_size=2), "certainty": certainty},
            ),
            max_size=2,
        ),
        "finance": st.lists(finance, max_size=3),
        "incidents": st.lists(incident, max_size=2),
        "legislation": st.lists(
            st.fixed_dictionaries(
                {"jurisdiction": st.sampled_from(COUNTRIES), "title": _texts, "summary": _texts}
            ),
            max_size=1,
        ),
        "scitech": st.lists(
            st.fixed_dictionaries({"title": _texts, "summary": _texts}), max_size=1
        ),
        "attachments": st.lists(
            st.fixed_dictionaries(
                {
                    "sha256": st.from_regex(r"\A[0-9a-f]{64}\Z"),
                    "media_type": st.sampled_from(["image/jpeg", "application/pdf"]),
                    "size": st.integers(0, 10**7),
                }
            ),
            max_size=2,
        ),
        "refs": st.lists(st.from_regex(r"\A[A-Z]{3}-[0-9]{1,6}\Z"), max_size=2),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            data[key] = draw(strategy)
    return data
