"""A STIX 2.1 bundle as IIR drafts (issue 18), refused whole if any marking cannot be mapped.

Handling comes from the markings and nowhere else: the TLP 2.0 (or TLP 1.0) marking of each
object, and the Palermo extension when the bundle came from Palermo, which must agree with the
TLP marking. A draft never gets a wider handling than its markings (decision 0029): anything
Palermo cannot carry exactly (an unknown marking, two TLP colours on one object or one report,
a granular marking Palermo cannot honour, a revoked report) is listed per object in
:class:`MarkingsUnmappable`, and nothing is imported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

import pycountry
import stix2
from pydantic import ValidationError

from schemas import Handling, PersonRole, Tlp
from schemas.errors import InputError
from schemas.export import parse_report

from .drafts import Defaults, Draft
from .errors import MarkingsUnmappable, Problem
from .markings import (
    PALERMO_EXTENSION_ID,
    SECTION_MARKING_IDS,
    TLP1_MARKING_IDS,
    TLP2_EXTENSION_ID,
    TLP2_MARKING_IDS,
)
from .stix_export import NOTE_LISTS, OBJECT_LISTS, POINT_LISTS
from .taxii_index import from_stix_time

__all__ = ["MAX_BUNDLE_BYTES", "import_bundle"]

_TLP_BY_ID: Final[dict[str, Tlp]] = {v: k for k, v in TLP2_MARKING_IDS.items()} | TLP1_MARKING_IDS
_SECTION_BY_ID: Final[dict[str, str]] = {v: k for k, v in SECTION_MARKING_IDS.items()}
_SEALED_FIELDS: Final = frozenset({"persons", "identifiers", "groups", "transport", *NOTE_LISTS})
"""IIR fields whose items (or links) Palermo seals in sections: a section marking there is
honoured by sealing; anywhere else it would be a promise Palermo cannot keep."""
_IDENTIFIER_PATTERN: Final = re.compile(
    r"^\[(?P<path>[a-z0-9-]+:[a-z_]+) = '(?P<value>(?:[^'\\]|\\.)*)'\]$"
)
_KIND_BY_PATH: Final[dict[str, str]] = {
    "email-addr:value": "email",
    "url:value": "website",
    "domain-name:value": "website",
    "user-account:account_login": "messaging-handle",
    "x-palermo-phone:value": "phone",
    "x-palermo-crypto-wallet:address": "crypto-wallet",
    "x-palermo-bank-account:account_number": "bank-account",
    "x-palermo-bank-account:iban": "iban",
}
_PERSON_ROLES: Final = frozenset(r.value for r in PersonRole)
_DEFINITIONS: Final = frozenset({"marking-definition", "extension-definition", "identity"})
_MEMBER_FIELDS: Final = frozenset(
    {*OBJECT_LISTS, *NOTE_LISTS, *(f"itinerary.{leg}" for leg in POINT_LISTS)}
)
"""The IIR lists an object of a Palermo report is an item of (the report object is the rest)."""
_MAX_ITEMS: Final = 100_000
_ALWAYS_WRITTEN: Final = frozenset(
    {"tlp", "rel_to", "deny_to", "h0", "judicial_use", "h2", "h3", "classification",
     "protected_released_to"}
)  # fmt: skip
"""The handling keys a Palermo export always writes (the rest are left out when unset)."""
MAX_BUNDLE_BYTES: Final[int] = 64 * 1024 * 1024
"""The largest bundle (JSON) an import reads: an IIR's bundle is far smaller, and stix2 holds
the whole bundle in memory several times over (parsed, objects, serialised)."""


def _version(obj: Mapping[str, Any]) -> tuple[int, bool]:
    modified = obj.get("modified")
    moment = 0 if modified is None else from_stix_time(str(modified), f"{obj['id']} modified")
    return moment, bool(obj.get("revoked"))


def _placement(ext: Mapping[str, Any]) -> tuple[str, int] | None:
    """Where a Palermo object's item goes back (list name, index); None if the extension
    names no list of the IIR or no position in it."""
    field, index = ext.get("field"), ext.get("index", 0)
    if not isinstance(field, str) or field not in _MEMBER_FIELDS:
        return None
    if not isinstance(index, int) or isinstance(index, bool):
        return None
    return (field, index) if 0 <= index < _MAX_ITEMS else None


def _ext(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    ext = obj.get("extensions", {}).get(PALERMO_EXTENSION_ID)
    return dict(ext) if isinstance(ext, Mapping) else None


class _Reader:
    def __init__(self, objects: list[dict[str, Any]], defaults: Defaults) -> None:
        self.defaults = defaults
        self.problems: list[Problem] = []
        self.by_id: dict[str, dict[str, Any]] = {}
        for obj in objects:
            # Several versions of one object: the newest is the one in force, compared as
            # times (not strings: '09:00:00Z' sorts after '09:00:00.500Z'), and a revocation
            # wins a tie, so an old version cannot bring a revoked object back.
            held = self.by_id.get(obj["id"])
            if held is None or _version(obj) >= _version(held):
                self.by_id[obj["id"]] = obj
        self.markings = self._markings()

    def problem(self, oid: str, why: str) -> None:
        self.problems.append((oid, why))

    def _markings(self) -> dict[str, Tlp | str]:
        """Every marking id this bundle may use -> its TLP, or its Palermo section."""
        known: dict[str, Tlp | str] = {**_TLP_BY_ID, **_SECTION_BY_ID}
        for oid, obj in self.by_id.items():
            if obj["type"] != "marking-definition":
                continue
            tlp2 = obj.get("extensions", {}).get(TLP2_EXTENSION_ID)
            if oid in TLP2_MARKING_IDS.values():
                expected = _TLP_BY_ID[oid].value.lower()
                if not isinstance(tlp2, Mapping) or tlp2.get("tlp_2_0") != expected:
                    self.problem(oid, f"redefines the TLP 2.0 id of TLP:{expected.upper()}")
            elif isinstance(tlp2, Mapping):
                self.problem(oid, "a TLP 2.0 marking with an id that is not the official one")
            elif obj.get("definition_type") == "tlp" and oid not in TLP1_MARKING_IDS:
                self.problem(oid, "a TLP 1.0 marking with an id that is not the official one")
        return known

    def from_palermo(self, report: Mapping[str, Any]) -> bool:
        """Whether this report came from Palermo (then every object must keep the extension)."""
        labels = [str(label) for label in report.get("labels", [])]
        return (
            PALERMO_EXTENSION_ID in self.by_id
            or _ext(report) is not None
            or any(label.startswith("palermo-category:") for label in labels)
        )

    def tlp_of(self, obj: Mapping[str, Any]) -> Tlp | None:
        """The one TLP of an object, checking every marking it carries."""
        oid, found = obj["id"], set()
        for ref in obj.get("object_marking_refs", []):
            marking = self.markings.get(ref)
            if isinstance(marking, Tlp):
                found.add(marking)
            elif marking is None:
                name = self.by_id.get(ref, {}).get("name", "not in the bundle")
                self.problem(oid, f"unknown marking {ref} ({name}): Palermo cannot enforce it")
            else:
                self.problem(oid, f"section marking {ref} must be granular, on the sealed parts")
        for gm in obj.get("granular_markings", []):
            ref = gm.get("marking_ref")
            if ref is None:
                continue  # a language marking says what language a part is in, not who may read
            marking = self.markings.get(ref)
            if isinstance(marking, Tlp):
                self.problem(
                    oid,
                    f"granular TLP:{marking.value} on {', '.join(gm.get('selectors', []))}: "
                    "Palermo holds one TLP per report; split the report or mark it whole",
                )
            elif marking is None:
                self.problem(oid, f"unknown granular marking {ref}: Palermo cannot enforce it")
            elif not self._sealable(obj):
                self.problem(
                    oid,
                    f"granular {marking} marking on a {obj['type']} Palermo does not seal "
                    "(only persons, identifiers and person-linked items are sealed)",
                )
        if len(found) > 1:
            colours = ", ".join(sorted(f"TLP:{t.value}" for t in found))
            self.problem(oid, f"contradictory TLP markings ({colours})")
            return None
        if not found:
            self.problem(oid, "no TLP marking: Palermo needs the originator's TLP")
            return None
        return found.pop()

    @staticmethod
    def _sealable(obj: Mapping[str, Any]) -> bool:
        ext = _ext(obj)
        if ext is not None:
            return str(ext.get("field")) in _SEALED_FIELDS
        return obj["type"] == "indicator" or (
            obj["type"] == "identity" and obj.get("identity_class") == "individual"
        )

    def handling(
        self, report: Mapping[str, Any], members: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """The report's handling: its TLP, and the Palermo block if present, all agreeing."""
        rid = report["id"]
        tlp = self.tlp_of(report)
        ext = _ext(report)
        block = None if ext is None else ext.get("handling")
        for obj in members:
            other = self.tlp_of(obj)
            if tlp is not None and other is not None and other is not tlp:
                self.problem(
                    obj["id"],
                    f"TLP:{other.value} but its report {rid} is TLP:{tlp.value}: Palermo holds "
                    "one TLP per report",
                )
            theirs = _ext(obj)
            if theirs is not None and block is not None and theirs.get("handling") != block:
                self.problem(obj["id"], f"its Palermo handling differs from report {rid}'s")
        if tlp is None:
            return None
        if block is None:
            return {"tlp": tlp.value}
        dropped = sorted(_ALWAYS_WRITTEN - set(block)) if isinstance(block, Mapping) else []
        if dropped:
            # Palermo writes these every time: one missing was removed on the way, and its
            # default (h2 false, an empty deny_to, unclassified) could be wider than the original.
            self.problem(
                rid,
                f"its Palermo handling lacks {', '.join(dropped)}, which every Palermo export "
                "writes: a tool on the way dropped it, and the default could be wider",
            )
            return None
        try:
            handling = Handling.model_validate(block)
        except ValidationError as exc:
            self.problem(rid, f"Palermo handling block is invalid: {exc.errors()[0]['msg']}")
            return None
        if handling.tlp is not tlp:
            self.problem(
                rid,
                f"contradictory TLP: the marking says TLP:{tlp.value}, the Palermo handling "
                f"TLP:{handling.tlp.value}",
            )
            return None
        # The block as given: validating it again inside the report applies the defaults of
        # the report's schema version (an absent action is A1 under iir/1, none under 1.1).
        return dict(block)


def _person(obj: Mapping[str, Any]) -> bool:
    return obj["type"] == "identity" and (
        _ext(obj) is not None or obj.get("identity_class") == "individual"
    )


def _alpha3(alpha2: str) -> str | None:
    country = pycountry.countries.get(alpha_2=alpha2.upper())
    return None if country is None else str(country.alpha_3)


def _unquote(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


class _Builder:
    """One report's IIR data from its objects."""

    def __init__(self, reader: _Reader, report: Mapping[str, Any]) -> None:
        self.reader = reader
        self.report = report
        self.lists: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self.extra = 0
        self.notes: list[str] = []

    def put(self, field: str, index: int, item: dict[str, Any]) -> None:
        self.lists.setdefault(field, []).append((index, item))

    def foreign(self, obj: Mapping[str, Any]) -> None:
        """An object another tool made: the standard properties that map, or a refusal."""
        self.extra += 1
        order = 10_000 + self.extra  # after Palermo's own items, in bundle order
        kind = obj["type"]
        if kind in ("threat-actor", "intrusion-set"):
            names = [obj["name"], *obj.get("aliases", [])]
            methods = [obj["description"]] if obj.get("description") else []
            self.put("groups", order, {"ref": f"x{self.extra}", "names": names, "methods": methods})
        elif kind == "location":
            country = _alpha3(obj.get("country", ""))
            if country is None:
                self.reader.problem(obj["id"], "a location without an ISO 3166 country")
                return
            point: dict[str, Any] = {"country": country}
            if obj.get("name"):
                point["place"] = obj["name"]
            if obj.get("latitude") is not None and obj.get("longitude") is not None:
                point |= {"lat": obj["latitude"], "lon": obj["longitude"]}
            self.put("itinerary.transit", order, point)
        elif kind == "indicator":
            found = _IDENTIFIER_PATTERN.match(obj.get("pattern", ""))
            if found is None or found["path"] not in _KIND_BY_PATH:
                self.reader.problem(obj["id"], "an indicator pattern with no IIR identifier kind")
                return
            ident = {"kind": _KIND_BY_PATH[found["path"]], "value": _unquote(found["value"])}
            self.put("identifiers", order, ident)
        elif kind == "note":
            self.notes.append(obj.get("content", ""))
        elif kind == "identity":
            roles = [r for r in obj.get("roles", []) if r in _PERSON_ROLES]
            if not roles:
                self.reader.problem(obj["id"], "an individual without a Palermo person role")
                return
            person = {"ref": f"x{self.extra}", "role": roles[0], "names": [obj["name"][:200]]}
            self.put("persons", order, person)
        elif kind == "infrastructure":
            text = " ".join(x for x in (obj.get("name"), obj.get("description")) if x)
            self.put("transport", order, {"mode": "other", "description": text[:4000]})
        else:
            self.reader.problem(obj["id"], f"a {kind} has no IIR mapping")

    def data(self, base: dict[str, Any]) -> dict[str, Any]:
        data = dict(base)
        for field, entries in self.lists.items():
            items = [item for _, item in sorted(entries, key=lambda pair: pair[0])]
            if field.startswith("itinerary."):
                data["itinerary"] = {**data.get("itinerary", {}), field.split(".")[1]: items}
            else:
                data[field] = items
        if self.notes:
            text = data["narrative"]["text"] + "".join(f"\n\nNote: {n}" for n in self.notes)
            data["narrative"] = {**data["narrative"], "text": text}
        return data


def _base(reader: _Reader, report: Mapping[str, Any]) -> dict[str, Any] | None:
    """The report's own fields: the Palermo item, or the defaults plus standard properties."""
    ext = _ext(report)
    if ext is not None and isinstance(ext.get("item"), Mapping):
        return dict(ext["item"])
    d = reader.defaults
    missing = d.missing()
    if missing:
        reader.problem(
            report["id"],
            f"not from Palermo, so the IIR's {', '.join(missing)} must be given "
            "(--originator, --category, --route)",
        )
        return None
    return {
        "originator": d.originator,
        "category": d.category,
        "route": d.route,
        "title": report["name"][:200],
        "narrative": {
            "language": report.get("lang", "en"),
            "text": report.get("description") or report["name"],
        },
        "contact": {"unit": f"{d.contact_unit} from STIX", "channel": "stix"},
    }


def _draft(reader: _Reader, report: dict[str, Any]) -> Draft | None:
    rid = report["id"]
    if report.get("revoked"):
        reader.problem(rid, "revoked by its originator: there is nothing to import")
        return None
    members = []
    for ref in report.get("object_refs", []):
        obj = reader.by_id.get(ref)
        if obj is None:
            reader.problem(rid, f"object_refs names {ref}, which is not in the bundle")
        elif obj["type"] not in _DEFINITIONS or _person(obj):
            members.append(obj)
    stripped = [o for o in (report, *members) if _ext(o) is None]
    if stripped and reader.from_palermo(report):
        for obj in stripped:
            reader.problem(
                obj["id"],
                "came from Palermo but its Palermo extension was removed: its TLP alone "
                "could be wider than the originator's handling",
            )
        return None  # what is left of the report is not worth a second list of problems
    handling = reader.handling(report, members)
    base = _base(reader, report)
    builder = _Builder(reader, report)
    for obj in members:
        ext = _ext(obj)
        if obj.get("revoked"):
            reader.problem(obj["id"], "revoked, in a report that is not")
        elif ext is not None and isinstance(ext.get("item"), Mapping):
            placement = _placement(ext)
            if placement is None:
                reader.problem(
                    obj["id"],
                    f"its Palermo extension places the item at field {str(ext.get('field'))[:40]!r}"
                    f", index {str(ext.get('index'))[:20]!r}: give one of the IIR's lists "
                    f"({', '.join(sorted(_MEMBER_FIELDS))}) and a position from 0",
                )
                continue
            builder.put(*placement, dict(ext["item"]))
        else:
            builder.foreign(obj)
    if handling is None or base is None:
        return None
    data = builder.data(base) | {"handling": handling}
    try:
        draft = parse_report(data)
    except InputError as exc:
        reader.problem(rid, f"does not make a valid IIR: {exc.reason}")
        return None
    ext = _ext(report)
    return Draft(draft, rid, None if ext is None else str(ext.get("report_id")))


def import_bundle(
    bundle: Mapping[str, Any] | str, *, defaults: Defaults | None = None
) -> list[Draft]:
    """Every report of ``bundle`` as an IIR draft; raises :class:`MarkingsUnmappable` listing
    each object whose markings cannot be carried (and then imports nothing)."""
    if isinstance(bundle, Mapping):
        # Read as text like a file: what is imported is always what stix2 parsed and wrote
        # back (the caller's mapping unchecked had lists for ids, nulls for marking lists).
        try:
            bundle = json.dumps(bundle)
        except (TypeError, ValueError) as exc:
            raise InputError(f"not a STIX 2.1 bundle: not JSON data ({exc})") from exc
    if len(bundle) > MAX_BUNDLE_BYTES:
        raise InputError(
            f"the bundle is {len(bundle)} bytes, more than the {MAX_BUNDLE_BYTES} an import "
            "reads: split it into one bundle per report"
        )
    try:
        parsed = stix2.parse(bundle, allow_custom=True)
        data = json.loads(parsed.serialize())
    except Exception as exc:
        raise InputError(f"not a STIX 2.1 bundle: {exc}") from exc
    if data.get("type") != "bundle":
        raise InputError("not a STIX 2.1 bundle: give a JSON object of type 'bundle'")
    reader = _Reader(list(data.get("objects", [])), defaults or Defaults())
    reports = [o for o in reader.by_id.values() if o["type"] == "report"]
    if not reports:
        raise InputError("the bundle holds no report object, so there is no IIR to draft")
    drafts = [d for d in (_draft(reader, r) for r in reports) if d is not None]
    referenced = {ref for r in reports for ref in r.get("object_refs", [])}
    for oid, obj in reader.by_id.items():
        if obj["type"] not in _DEFINITIONS and oid not in referenced and obj["type"] != "report":
            reader.problem(oid, "in no report: Palermo imports reports, not loose objects")
    if reader.problems:
        raise MarkingsUnmappable(reader.problems)
    return drafts
