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
from ._links import PERSON_ITEMS, PERSON_LINKS, named_persons
from ._report import PROTECTED_STATUSES, STUB_FIELDS, Person, Report
from ._terms import PersonRole, ProtectionStatus

__all__ = ["PERSONAL_DATA", "PROTECTED_PERSONS", "ReportParts", "join", "partition"]

PERSONAL_DATA: Final[str] = "personal-data"
PROTECTED_PERSONS: Final[str] = "protected-persons"
_ALWAYS_PERSONAL: Final = frozenset({"identifiers"})
"""Identifiers are personal data even when no person is named (a phone number, a wallet)."""
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


def _roles(person: dict[str, Any]) -> list[PersonRole]:
    return [PersonRole(person["role"]), *(PersonRole(r) for r in person.get("roles", []))]


def _guarded(person: dict[str, Any]) -> bool:
    """Whether the non-refoulement guard covers this person's nationality."""
    status = ProtectionStatus(person.get("protection_status", "none"))
    # A smuggled migrant is guarded by role even when no status was recorded (DESIGN,
    # non-refoulement guard): a forgotten field must not expose them to their own State.
    migrant = PersonRole.SMUGGLED_MIGRANT in _roles(person)
    return bool(person.get("nationality")) and (migrant or status in PROTECTED_STATUSES)


class _Sections:
    """What goes into the two sections while a report is partitioned."""

    def __init__(self, protected_refs: set[str]) -> None:
        self.protected_refs = protected_refs
        self.personal: dict[str, Any] = {}
        self.protected: dict[str, Any] = {}

    def of(self, refs: list[str]) -> dict[str, Any]:
        """The section of the most protected of these persons."""
        return self.protected if self.protected_refs.intersection(refs) else self.personal

    def add(self, section: dict[str, Any], key: str, entry: Any) -> None:
        section.setdefault(key, []).append(entry)


def _split_items(data: dict[str, Any], sections: _Sections) -> None:
    """Person items (identifiers, payments) go to the section of the persons they name."""
    for name, fields in PERSON_ITEMS.items():
        keep = []
        for index, item in enumerate(data.pop(name, [])):
            named = list(named_persons(item, fields))
            if named or name in _ALWAYS_PERSONAL:
                sections.add(sections.of(named), name, [index, item])
            else:
                keep.append(item)
        if keep:
            data[name] = keep


def _split_links(data: dict[str, Any], sections: _Sections) -> None:
    """Links on body items go, one by one, to the section of the person each names."""
    for name, fields in PERSON_LINKS.items():
        for index, item in enumerate(data.get(name, [])):
            for field in fields:
                value = item.pop(field, None)
                if isinstance(value, list):
                    for position, ref in enumerate(value):
                        link = [name, index, field, position, ref]
                        sections.add(sections.of([ref]), "links", link)
                elif value is not None:
                    sections.add(sections.of([value]), "links", [name, index, field, None, value])


def partition(report: Report) -> ReportParts:
    data = report.to_wire()
    persons = data.pop("persons", [])
    protected_refs = {p.ref for p in report.persons if p.protected}
    sections = _Sections(protected_refs)
    details, shielded = {}, []
    nationalities, shielded_nationalities = set(), set()
    stubs = []
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
    _split_items(data, sections)
    _split_links(data, sections)
    if stubs:
        data["persons"] = stubs
    personal = sections.personal
    if details or personal:
        personal = {"persons": details, "identifiers": [], **personal}
    protected = sections.protected
    if shielded:
        protected = {"persons": shielded, "identifiers": [], **protected}
    return ReportParts(
        data,
        personal or None,
        protected or None,
        tuple(sorted(nationalities)),
        tuple(sorted(shielded_nationalities)),
    )


def _insert(items: list[Any], indexed: list[list[Any]]) -> list[Any]:
    """Put entries back at their original positions."""
    out = list(items)
    for index, item in sorted(indexed, key=lambda pair: pair[0]):
        out.insert(min(index, len(out)), item)
    return out


def _link_order(link: list[Any]) -> tuple[str, int, str, int]:
    name, index, field, position, _ = link
    return (name, index, field, -1 if position is None else position)


def _restore_links(data: dict[str, Any], links: list[list[Any]], known: set[str]) -> None:
    """Put links back on body items, in their original order; drop links to absent persons."""
    for name, index, field, position, ref in sorted(links, key=_link_order):
        if field not in PERSON_LINKS[name] or ref not in known:
            raise ValueError(f"link {name}.{index}.{field} to {ref!r} does not fit the report")
        item = data[name][index]
        if position is None:
            item[field] = ref
        else:
            item[field] = [*item.get(field, []), ref]  # a new list: main's items stay as given
    for name, fields in PERSON_LINKS.items():
        # Envelopes sealed before links moved into sections carry them inline in the body,
        # including links to persons withheld from this recipient.
        for item in data.get(name, []):
            for field in fields:
                value = item.get(field)
                if isinstance(value, list):
                    item[field] = [r for r in value if r in known]
                elif value is not None and value not in known:
                    del item[field]


def join(
    main: dict[str, Any],
    personal_data: dict[str, Any] | None = None,
    protected_persons: dict[str, Any] | None = None,
) -> Report:
    """The report as this recipient may see it."""
    data = {
        k: [dict(x) if isinstance(x, dict) else x for x in v] if isinstance(v, list) else v
        for k, v in main.items()
    }
    personal, protected = personal_data or {}, protected_persons or {}
    details = personal.get("persons", {})
    persons = [{**stub, **details.get(stub["ref"], {})} for stub in data.get("persons", [])]
    persons = _insert(persons, protected.get("persons", []))
    known = {p["ref"] for p in persons}
    data["persons"] = persons
    for name, fields in PERSON_ITEMS.items():
        items = _insert(data.get(name, []), personal.get(name, []) + protected.get(name, []))
        # Copies: a dangling previous_ref is dropped below, and the sections must stay as they
        # were opened (a full view after a partial one must still be the whole report).
        data[name] = [dict(x) for x in items if set(named_persons(x, fields)) <= known]
    present = {f.get("ref") for f in data["finance"]}
    for flow in data["finance"]:
        if flow.get("previous_ref") not in present:
            flow.pop("previous_ref", None)
    _restore_links(data, personal.get("links", []) + protected.get("links", []), known)
    return Report.from_wire(data)
