"""An IIR as a STIX 2.1 bundle (issue 18): the report, an object per item that maps, notes for
the rest, TLP 2.0 markings, granular markings on what came from a sealed section, and the
Palermo property extension carrying the whole handling block on every object.

Every object carries its own markings and handling because a TAXII server serves objects one by
one: an object separated from its report must still say how it may be used. Ids are UUIDv5 from
the report id and the object's role in the report, so a re-export (a correction, a retraction)
updates the same objects with a newer ``modified`` instead of duplicating them. The mapping
tables are in docs/interop.md and decision 0029.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any, Final

import pycountry
import stix2

from schemas import Report
from schemas._report import STUB_FIELDS  # what of a person is not personal data

from ._sections import SectionMap, section_map
from .markings import (
    PALERMO_EXTENSION_ID,
    PALERMO_NAMESPACE,
    TLP2_MARKING_IDS,
    palermo_objects,
    section_marking,
    tlp_marking,
)

__all__ = [
    "ITEM_SELECTOR",
    "NOTE_LISTS",
    "agency_identity_id",
    "export_bundle",
    "file_report_id",
    "object_id",
]

ITEM_SELECTOR: Final = f"extensions.{PALERMO_EXTENSION_ID}.item"
NOTE_LISTS: Final = (
    "documents",
    "concealment",
    "finance",
    "incidents",
    "legislation",
    "scitech",
    "events",
    "relations",
    "attachments",
)
"""Report lists with no STIX object of their own: each item becomes a note."""
OBJECT_LISTS: Final = ("groups", "persons", "transport", "identifiers")
POINT_LISTS: Final = ("embarkation", "transit", "destination")
_AGENCY_CREATED: Final = datetime(2026, 12, 1, tzinfo=UTC)

# Identifier kind -> the STIX pattern that finds it. Kinds with no STIX Cyber-observable of
# their own use a custom (x-palermo-) object path, which the pattern grammar allows.
_PATTERNS: Final[dict[str, str]] = {
    "email": "email-addr:value",
    "website": "url:value",
    "messaging-handle": "user-account:account_login",
    "social-media": "user-account:account_login",
    "phone": "x-palermo-phone:value",
    "crypto-wallet": "x-palermo-crypto-wallet:address",
    "bank-account": "x-palermo-bank-account:account_number",
    "iban": "x-palermo-bank-account:iban",
}


def object_id(report_id: str, stix_type: str, role: str) -> str:
    """The deterministic id of the object playing ``role`` in report ``report_id``."""
    return f"{stix_type}--{uuid.uuid5(PALERMO_NAMESPACE, f'{report_id}/{role}')}"


def agency_identity_id(agency: str) -> str:
    """One identity per agency, shared by every report it originates."""
    return f"identity--{uuid.uuid5(PALERMO_NAMESPACE, f'agency/{agency}')}"


def file_report_id(report: Report) -> str:
    """An id for a report read from a file (it has no envelope id yet): UUIDv5 of its canonical
    JSON, so exporting the same file twice gives the same objects."""
    canonical = json.dumps(report.to_wire(), sort_keys=True, separators=(",", ":"))
    return str(
        uuid.uuid5(PALERMO_NAMESPACE, "file/" + hashlib.sha256(canonical.encode()).hexdigest())
    )


def _alpha2(alpha3: str) -> str | None:
    country = pycountry.countries.get(alpha_3=alpha3)
    return None if country is None else str(country.alpha_2)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class _Exporter:
    def __init__(
        self,
        report: Report,
        report_id: str,
        created: datetime,
        modified: datetime,
        retracted: bool,
        withhold: Collection[str],
    ) -> None:
        self.report = report
        self.rid = report_id
        self.created = created
        self.modified = modified
        self.retracted = retracted
        self.withhold = frozenset(withhold)
        self.sections: SectionMap = section_map(report, withhold)
        self.handling = report.handling.model_dump(mode="json", exclude_none=True)
        self.tlp = TLP2_MARKING_IDS[report.handling.tlp]
        self.used_sections: set[str] = set()
        self.objects: list[Any] = []

    def common(
        self,
        stix_type: str,
        role: str,
        item: dict[str, Any] | None,
        field: str,
        index: int | None,
        sections: set[str],
        marked: list[str],
    ) -> dict[str, Any]:
        """Properties every SDO of the report shares: id, times, markings, the extension."""
        ext: dict[str, Any] = {
            "extension_type": "property-extension",
            "report_id": self.rid,
            "handling": self.handling,
            "personal_data": bool(sections),
        }
        if sections:
            ext["sections"] = sorted(sections)  # STIX forbids empty lists
        if item is not None:
            ext["field"] = field
            ext["item"] = item
            if index is not None:
                ext["index"] = index
        props: dict[str, Any] = {
            "id": object_id(self.rid, stix_type, role),
            "created": self.created,
            "modified": self.modified,
            "created_by_ref": agency_identity_id(self.report.originator),
            "object_marking_refs": [self.tlp],
            "extensions": {PALERMO_EXTENSION_ID: ext},
        }
        if self.retracted:
            props["revoked"] = True
        if sections:
            self.used_sections |= sections
            selectors = [*marked, ITEM_SELECTOR] if item is not None else marked
            props["granular_markings"] = [
                {"marking_ref": section_marking(s).id, "selectors": selectors}
                for s in sorted(sections)
            ]
        return props

    def add(self, cls: type, props: dict[str, Any]) -> None:
        self.objects.append(cls(**{k: v for k, v in props.items() if v not in (None, [], "")}))

    def groups(self, items: list[dict[str, Any]]) -> None:
        for index, data in enumerate(items):
            item, used = self.sections.item("groups", index, data, self.withhold)
            if item is None:
                continue
            names = item.get("names", [])
            props = self.common(
                "threat-actor", f"group/{item['ref']}", item, "groups", index, used, []
            )
            props |= {
                "name": names[0] if names else f"group {item['ref']}",
                "aliases": names[1:],
                "threat_actor_types": ["crime-syndicate"],
                "description": "; ".join(item.get("methods", [])) or None,
            }
            self.add(stix2.ThreatActor, props)

    def persons(self, items: list[dict[str, Any]]) -> None:
        for index, data in enumerate(items):
            section = self.sections.persons.get(data["ref"])
            if section in self.withhold:
                if section != "personal-data":
                    continue  # a protected person travels whole: withheld whole
                data = {k: v for k, v in data.items() if k in STUB_FIELDS}
                section = None
            used = {section} if section else set()
            names = data.get("names", [])
            name = names[0] if names else f"{data['role']} {data['ref']}"
            whole = section == "protected-persons"  # a witness or victim is sealed whole
            marked = ["name"] if names or whole else []
            marked += ["roles"] if whole else []
            marked += ["description"] if data.get("notes") else []
            props = self.common(
                "identity", f"person/{data['ref']}", data, "persons", index, used, marked
            )
            props |= {
                "name": name,
                "identity_class": "individual",
                "roles": [data["role"], *data.get("roles", [])],
                "description": data.get("notes"),
            }
            self.add(stix2.Identity, props)

    def transport(self, items: list[dict[str, Any]]) -> None:
        for index, data in enumerate(items):
            # Never withheld whole (no person owns a boat here), but its links to persons are.
            item, used = self.sections.item("transport", index, data, self.withhold)
            if item is None:
                continue
            vessel = item.get("vessel", {})
            name = (
                vessel.get("name")
                or item.get("flight")
                or item.get("vehicle_plate")
                or item["mode"]
            )
            role = f"transport/{item.get('ref') or index}"
            props = self.common("infrastructure", role, item, "transport", index, used, [])
            props |= {
                "name": name,
                "infrastructure_types": ["undefined"],
                "description": " ".join(
                    x for x in (item["mode"], item.get("carrier"), item.get("description")) if x
                ),
            }
            self.add(stix2.Infrastructure, props)

    def identifiers(self, items: list[dict[str, Any]]) -> None:
        for index, data in enumerate(items):
            item, used = self.sections.item("identifiers", index, data, self.withhold)
            if item is None:
                continue
            role = f"identifier/{index}"
            marked = ["name", "pattern"]
            props = self.common("indicator", role, item, "identifiers", index, used, marked)
            props |= {
                "name": f"{item['kind']} {item['value']}",
                "indicator_types": ["attribution"],
                "pattern": f"[{_PATTERNS[item['kind']]} = {_quote(item['value'])}]",
                "pattern_type": "stix",
                "valid_from": self.created,
            }
            self.add(stix2.Indicator, props)

    def points(self) -> None:
        itinerary = self.report.itinerary
        if itinerary is None:
            return
        for leg in POINT_LISTS:
            for index, point in enumerate(getattr(itinerary, leg)):
                item = point.model_dump(mode="json", exclude_none=True)
                props = self.common(
                    "location", f"point/{leg}/{index}", item, f"itinerary.{leg}", index, set(), []
                )
                props |= {
                    "name": point.place
                    or point.unlocode
                    or point.iata
                    or point.icao
                    or point.country,
                    "country": _alpha2(point.country) or point.country,
                    "latitude": point.lat,
                    "longitude": point.lon,
                    "description": leg,
                }
                self.add(stix2.Location, props)

    def notes(self, name: str, items: list[dict[str, Any]], report_ref: str) -> None:
        kept = {
            it.get("ref")
            for i, it in enumerate(items)
            if self.sections.item(name, i, it, self.withhold)[0] is not None
        }
        for index, data in enumerate(items):
            item, used = self.sections.item(name, index, data, self.withhold)
            if item is None:
                continue
            if name == "finance" and item.get("previous_ref") not in kept:
                item = {k: v for k, v in item.items() if k != "previous_ref"}
            # The content is the item as JSON: it holds the links too, the abstract does not.
            whole = self.sections.items.get((name, index)) is not None
            marked = ["abstract", "content"] if whole else ["content"] if used else []
            props = self.common("note", f"{name}/{index}", item, name, index, used, marked)
            summary = (
                item.get("title")
                or item.get("kind")
                or item.get("type")
                or item.get("method")
                or name
            )
            props |= {
                "abstract": f"{name}: {summary}",
                "content": json.dumps(item, sort_keys=True, ensure_ascii=False),
                "object_refs": [report_ref],
            }
            self.add(stix2.Note, props)

    def run(self) -> stix2.Bundle:
        data = self.report.to_wire()
        report_ref = object_id(self.rid, "report", "report")
        self.groups(data.get("groups", []))
        self.persons(data.get("persons", []))
        self.transport(data.get("transport", []))
        self.identifiers(data.get("identifiers", []))
        self.points()
        for name in NOTE_LISTS:
            self.notes(name, data.get(name, []), report_ref)
        main = {k: v for k, v in data.items() if k not in (*OBJECT_LISTS, *NOTE_LISTS)}
        if any(main.get("itinerary", {}).values()):
            del main["itinerary"]  # its points are location objects
        main.pop("handling")
        props = self.common("report", "report", main, "report", None, set(), [])
        props |= {
            "name": self.report.title,
            "description": self.report.narrative.text,
            "lang": self.report.narrative.language,
            "published": self.created,  # when it was issued; observed is in the item
            "report_types": ["threat-report"],
            "labels": [
                f"palermo-category:{self.report.category.value}",
                f"palermo-route:{self.report.route.value}",
                f"palermo-kind:{self.report.kind.value}",
            ],
            "object_refs": [o.id for o in self.objects]
            or [agency_identity_id(self.report.originator)],
        }
        self.add(stix2.Report, props)
        originator = stix2.Identity(
            id=agency_identity_id(self.report.originator),
            created=_AGENCY_CREATED,
            modified=_AGENCY_CREATED,
            name=self.report.originator,
            identity_class="organization",
        )
        markings = [tlp_marking(self.report.handling.tlp)]
        if self.retracted:
            # A retraction withdraws the content: say which objects are revoked, and how they
            # were handled, without sending what they held once more (to a tool that may never
            # have had it). Nothing sealed is left, so no section marking either.
            self.objects = [_revoked(o) for o in self.objects]
        else:
            markings += [section_marking(s) for s in sorted(self.used_sections)]
        bundle_id = (
            f"bundle--{uuid.uuid5(PALERMO_NAMESPACE, f'{self.rid}@{self.modified.isoformat()}')}"
        )
        return stix2.Bundle(*palermo_objects(), *markings, originator, *self.objects, id=bundle_id)


_REVOKED_KEEPS: Final = frozenset(
    {"type", "spec_version", "id", "created", "modified", "created_by_ref",
     "object_marking_refs", "revoked"}
)  # fmt: skip
_REVOKED_REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    # What STIX 2.1 requires of each type beyond the common properties, kept as it was (no
    # report content: times, ids of other objects, a country code, open vocabularies).
    "report": ("published", "object_refs", "report_types"),
    "indicator": ("pattern_type", "valid_from"),
    "location": ("country",),
    "note": ("object_refs",),
}
REVOKED_TEXT: Final = "revoked"
"""The placeholder of a revoked object's required text properties (name, content)."""


def _revoked(obj: Any) -> Any:
    """A revoked version of ``obj`` without its content: the common properties, the handling,
    what its type requires (placeholders for the names, contents and patterns it held)."""
    data: dict[str, Any] = json.loads(obj.serialize())
    out = {k: v for k, v in data.items() if k in _REVOKED_KEEPS}
    out |= {k: data[k] for k in _REVOKED_REQUIRED.get(data["type"], ()) if k in data}
    ext = data["extensions"][PALERMO_EXTENSION_ID]
    out["extensions"] = {
        PALERMO_EXTENSION_ID: {
            "extension_type": "property-extension",
            "report_id": ext["report_id"],
            "handling": ext["handling"],
            "personal_data": False,
        }
    }
    if data["type"] == "indicator":
        out["pattern"] = f"[x-palermo-revoked:value = {_quote(data['id'])}]"
    elif data["type"] == "note":
        out["content"] = REVOKED_TEXT
    elif data["type"] != "location":
        out["name"] = REVOKED_TEXT
    return stix2.parse(out, allow_custom=True)


def export_bundle(
    report: Report,
    *,
    report_id: str,
    created: datetime,
    modified: datetime,
    withhold: Collection[str] = (),
    retracted: bool = False,
) -> stix2.Bundle:
    """``report`` as a STIX 2.1 bundle.

    ``report_id`` is the envelope id (or :func:`file_report_id` for a file); ``created`` the
    report's creation time and ``modified`` this export's (later than any earlier export's, so a
    consumer takes it as the newer version). ``withhold`` names sealed sections
    (``personal-data``, ``protected-persons``) to leave out, as for a recipient that may not
    open them: what came from them is not in the bundle at all. ``retracted`` exports every
    object as ``revoked``, without its content (the same ids, the handling, placeholders).
    """
    if modified < created:
        raise ValueError("modified must not be before created")
    return _Exporter(report, report_id, created, modified, retracted, withhold).run()
