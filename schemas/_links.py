"""Where a report names its persons, and what therefore travels in a person's sealed section.

Two kinds of naming (docs/schema.md, "Personal data and sealed sections"):

- *Links* on items that stay in the report body (a document's holder, a boat's pilot, a group's
  members, an event's persons): each link is moved into the section of the person it names,
  and put back when that section is opened.
- *Person items* that belong to the persons they name (an identifier, a payment): the whole item
  travels in the most protected section among the persons it names.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

__all__ = ["PERSON_ITEMS", "PERSON_LINKS", "named_persons"]

PERSON_LINKS: Final[dict[str, tuple[str, ...]]] = {
    "documents": ("holder_ref", "issuer_ref", "forger_ref"),
    "transport": ("passenger_refs", "driver_refs", "pilot_refs", "escort_refs"),
    "groups": ("member_refs",),
    "events": ("person_refs",),
}
"""Per list of the report, the fields of its items that link a person (``*_refs`` are lists)."""

PERSON_ITEMS: Final[dict[str, tuple[str, ...]]] = {
    "identifiers": ("person_ref",),
    "finance": ("payer_ref", "payee_ref", "intermediary_refs"),
    "relations": ("from_ref", "to_ref"),
}
"""Per list of the report, the fields that make an item belong to the persons it names."""


def _refs(value: Any) -> list[str]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def named_persons(item: Mapping[str, Any], fields: tuple[str, ...]) -> Iterator[str]:
    """Every person ref in ``fields`` of a wire item, in field order."""
    for name in fields:
        yield from _refs(item.get(name))
