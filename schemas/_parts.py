"""Splitting a report for sealing, and joining what a recipient may read back together.

``partition`` gives the report body (persons reduced to role stubs, no identifiers), the
personal-data section (descriptive fields of those persons and the identifiers) and the
protected-persons section (witnesses and victims, whole, with their identifiers), plus the
nationalities of protected migrants that the non-refoulement guard needs. ``join`` rebuilds a
valid report from the body and whichever sections were opened: what was withheld stays absent,
and references to withheld persons are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ._header import SectionInfo, SectionKind
from ._report import PROTECTED_STATUSES, STUB_FIELDS, Person, Report
from ._terms import PersonRole, ProtectionStatus

__all__ = ["PERSONAL_DATA", "PROTECTED_PERSONS", "ReportParts", "join", "partition"]

PERSONAL_DATA: Final[str] = "personal-data"
PROTECTED_PERSONS: Final[str] = "protected-persons"
# Defaults (empty name lists, protection status "none") identify nobody: a person who has only
# these beyond the stub carries no personal data, and must not make the report look as if it did.
_UNSET: Final[dict[str, Any]] = {
    name: field.get_default(call_default_factory=True)
    for name, field in Person.model_fields.items()
    if not field.is_required()
}


@dataclass(frozen=True)
class ReportParts:
    main: dict[str, Any]
    personal_data: dict[str, Any] | None
    protected_persons: dict[str, Any] | None
    protected_nationalities: tuple[str, ...]
    shielded_nationalities: tuple[str, ...] = ()
    """Nationalities of guarded persons among the witnesses and victims: the guard applies to
    the protected-persons section too, since a release by name is not a justified override."""

    def sections(self) -> list[SectionInfo]:
        """The header's section list for these parts."""
        out = []
        if self.personal_data is not None:
            out.append(
                SectionInfo(
                    id=PERSONAL_DATA,
                    kind=SectionKind.PERSONAL_DATA,
                    protected_nationalities=list(self.protected_nationalities),
                )
            )
        if self.protected_persons is not None:
            out.append(
                SectionInfo(
                    id=PROTECTED_PERSONS,
                    kind=SectionKind.PROTECTED_PERSONS,
                    protected_nationalities=list(self.shielded_nationalities),
                )
            )
        return out

    def section_bodies(self) -> dict[str, dict[str, Any]]:
        out = {}
        if self.personal_data is not None:
            out[PERSONAL_DATA] = self.personal_data
        if self.protected_persons is not None:
            out[PROTECTED_PERSONS] = self.protected_persons
        return out


def _guarded(person: dict[str, Any]) -> bool:
    """Whether the non-refoulement guard covers this person's nationality."""
    status = ProtectionStatus(person.get("protection_status", "none"))
    # A smuggled migrant is guarded by role even when no status was recorded (DESIGN,
    # non-refoulement guard): a forgotten field must not expose them to their own State.
    migrant = PersonRole(person["role"]) is PersonRole.SMUGGLED_MIGRANT
    return bool(person.get("nationality")) and (migrant or status in PROTECTED_STATUSES)


def partition(report: Report) -> ReportParts:
    data = report.to_wire()
    persons = data.pop("persons", [])
    identifiers = data.pop("identifiers", [])
    protected_refs = {p["ref"] for p in persons if PersonRole(p["role"]).protected}
    stubs, details, shielded = [], {}, []
    nationalities, shielded_nationalities = set(), set()
    for index, person in enumerate(persons):
        if person["ref"] in protected_refs:
            shielded.append([index, person])
            if _guarded(person):
                shielded_nationalities.add(person["nationality"])
            continue
        stubs.append({k: v for k, v in person.items() if k in STUB_FIELDS})
        extra = {
            k: v
            for k, v in person.items()
            if k not in STUB_FIELDS and (k not in _UNSET or v != _UNSET[k])
        }
        if extra:
            details[person["ref"]] = extra
        if _guarded(person):
            nationalities.add(person["nationality"])
    open_ids = [
        [i, x] for i, x in enumerate(identifiers) if x.get("person_ref") not in protected_refs
    ]
    shielded_ids = [
        [i, x] for i, x in enumerate(identifiers) if x.get("person_ref") in protected_refs
    ]
    if stubs:
        data["persons"] = stubs
    personal = {"persons": details, "identifiers": open_ids} if details or open_ids else None
    protected = {"persons": shielded, "identifiers": shielded_ids} if shielded else None
    return ReportParts(
        data,
        personal,
        protected,
        tuple(sorted(nationalities)),
        tuple(sorted(shielded_nationalities)),
    )


def _insert(items: list[Any], indexed: list[list[Any]]) -> list[Any]:
    """Put entries back at their original positions."""
    out = list(items)
    for index, item in sorted(indexed, key=lambda pair: pair[0]):
        out.insert(min(index, len(out)), item)
    return out


def join(
    main: dict[str, Any],
    personal_data: dict[str, Any] | None = None,
    protected_persons: dict[str, Any] | None = None,
) -> Report:
    """The report as this recipient may see it."""
    data = dict(main)
    details = (personal_data or {}).get("persons", {})
    persons = [{**stub, **details.get(stub["ref"], {})} for stub in data.get("persons", [])]
    shielded = (protected_persons or {}).get("persons", [])
    persons = _insert(persons, shielded)
    identifiers = _insert(
        [x for _, x in (personal_data or {}).get("identifiers", [])],
        (protected_persons or {}).get("identifiers", []),
    )
    known = {p["ref"] for p in persons}
    data["persons"] = persons
    data["identifiers"] = [x for x in identifiers if x.get("person_ref") in (None, *known)]
    data["documents"] = [
        d
        if d.get("holder_ref") in (None, *known)
        else {k: v for k, v in d.items() if k != "holder_ref"}
        for d in data.get("documents", [])
    ]
    data["groups"] = [
        {**g, "member_refs": [r for r in g.get("member_refs", []) if r in known]}
        for g in data.get("groups", [])
    ]
    return Report.from_wire(data)
