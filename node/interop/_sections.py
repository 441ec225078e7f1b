"""Which part of a report came from which sealed section, so an export can mark it (STIX
granular markings, MISP attribute tags) and leave out what a recipient may not see.

The split is :func:`schemas.partition`'s, the same one sealing uses: what is marked here as
personal data is exactly what a partner without the personal-data key never opens.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from schemas import PERSONAL_DATA, PROTECTED_PERSONS, Report, partition
from schemas.errors import InputError

__all__ = ["SectionMap", "section_map"]

SECTIONS = (PERSONAL_DATA, PROTECTED_PERSONS)


@dataclass(frozen=True)
class SectionMap:
    """Where each sealed part of one report sits."""

    persons: dict[str, str] = field(default_factory=dict)
    """person ref -> the section holding its descriptive data (protected: the whole person)."""
    items: dict[tuple[str, int], str] = field(default_factory=dict)
    """(list name, index) -> section, for items that travel whole in a section."""
    links: dict[tuple[str, int], list[tuple[str, str, str]]] = field(default_factory=dict)
    """(list name, index) -> [(link field, person ref, section)] for links moved into a
    section (a list field may link persons of both sections)."""

    def item(
        self, name: str, index: int, data: dict[str, Any], withhold: Collection[str]
    ) -> tuple[dict[str, Any] | None, set[str]]:
        """The item as exported (None: withheld whole) and the sections it draws on."""
        whole = self.items.get((name, index))
        if whole is not None:
            return (None, set()) if whole in withhold else (data, {whole})
        out, used = dict(data), set()
        for link_field, ref, section in self.links.get((name, index), []):
            if section not in withhold:
                used.add(section)
                continue
            value = out.get(link_field)
            if isinstance(value, list):
                out[link_field] = [r for r in value if r != ref]
                if not out[link_field]:
                    del out[link_field]
            elif value == ref:
                del out[link_field]
        return out, used


def section_map(report: Report, withhold: Collection[str] = ()) -> SectionMap:
    """The sections of ``report``'s parts; ``withhold`` must name known sections only."""
    unknown = set(withhold) - set(SECTIONS)
    if unknown:
        raise InputError(
            f"cannot withhold unknown section(s) {', '.join(sorted(unknown))}; "
            f"the sections are {', '.join(SECTIONS)}"
        )
    parts = partition(report)
    out = SectionMap()
    for section, body in (
        (PERSONAL_DATA, parts.personal_data),
        (PROTECTED_PERSONS, parts.protected_persons),
    ):
        if body is None:
            continue
        persons = body.get("persons", {})
        refs = persons.keys() if isinstance(persons, dict) else [p["ref"] for _, p in persons]
        for ref in refs:
            out.persons[ref] = section
        for name, entries in body.items():
            if name in ("persons", "links"):
                continue
            for index, _ in entries:
                out.items[(name, index)] = section
        for name, index, link_field, _, ref in body.get("links", []):
            out.links.setdefault((name, index), []).append((link_field, ref, section))
    return out
