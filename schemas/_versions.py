"""Schema versions of the IIR: ``iir/1`` and ``iir/1.1``, and which fields and terms are new.

IIR 1.1 is additive: every ``iir/1`` report is valid and means the same. A report that uses a
1.1 field or term must say ``"schema": "iir/1.1"``, so that a partner still reading ``iir/1``
never receives a report it would misread (:func:`check_version`). Handling defaults also differ
per version (``schemas._handling.versioned_handling``; decision 0019).
"""

from __future__ import annotations

from enum import Enum
from functools import cache
from typing import Any, Final, Literal

from pydantic import BaseModel

from ._terms import DocumentFraud, LegalStatus, PersonRole

__all__ = [
    "SCHEMA_V1",
    "SCHEMA_V11",
    "SCHEMA_VERSIONS",
    "V11_FIELDS",
    "V11_TERMS",
    "SchemaVersion",
    "check_version",
    "strip_empty_v11",
]

SCHEMA_V1: Final = "iir/1"
SCHEMA_V11: Final = "iir/1.1"
SCHEMA_VERSIONS: Final[tuple[str, ...]] = (SCHEMA_V1, SCHEMA_V11)
SchemaVersion = Literal["iir/1", "iir/1.1"]

V11_FIELDS: Final[dict[str, frozenset[str]]] = {
    "Report": frozenset({"events", "sources", "relations", "statistics"}),
    "Person": frozenset({"roles", "proceedings"}),
    "Transport": frozenset(
        {"ref", "passenger_refs", "driver_refs", "pilot_refs", "escort_refs", "carried_on_ref"}
    ),
    "OrganisedGroup": frozenset({"countries"}),
    "Document": frozenset(
        {
            "ref",
            "quantity",
            "serial_ranges",
            "issuing_authority",
            "issuer_ref",
            "forger_ref",
            "loss",
        }
    ),
    "Concealment": frozenset({"detection_methods", "transport_ref"}),
    "FinancialFlow": frozenset(
        {
            "ref",
            "payer_ref",
            "payee_ref",
            "intermediary_refs",
            "from_country",
            "to_country",
            "previous_ref",
            "in_kind",
            "condition",
        }
    ),
    "Incident": frozenset({"counts", "transport_ref"}),
    "Legislation": frozenset(
        {
            "offences_defined",
            "material_benefit_element",
            "humanitarian_exemption",
            "penalties",
            "adopted",
            "in_force",
        }
    ),
}
"""Per model (by class name), the fields IIR 1.1 added."""

V11_TERMS: Final[frozenset[Enum]] = frozenset(
    {
        DocumentFraud.UNVERIFIED,
        DocumentFraud.VERIFICATION_REQUESTED,
        LegalStatus.ACQUITTED,
        PersonRole.SPONSOR,
    }
)
"""Values IIR 1.1 added to vocabularies that iir/1 already had."""


@cache
def _v11_defaults(model: type[BaseModel]) -> dict[str, Any]:
    # Once per class: pydantic inspects a default factory's signature on every call.
    fields = model.model_fields
    new = V11_FIELDS.get(model.__name__, frozenset())
    return {name: fields[name].get_default(call_default_factory=True) for name in new}


def _uses_v11(node: Any, path: str, out: list[str]) -> None:
    if isinstance(node, BaseModel):
        defaults = _v11_defaults(type(node))
        for name in type(node).model_fields:
            value = getattr(node, name)
            where = f"{path}.{name}" if path else name
            if name in defaults and value != defaults[name]:
                out.append(where)
                continue
            _uses_v11(value, where, out)
    elif isinstance(node, list | tuple):
        for index, item in enumerate(node):
            _uses_v11(item, f"{path}.{index}", out)
    elif isinstance(node, Enum) and node in V11_TERMS:
        out.append(f"{path} ({node.value})")


def check_version(report: BaseModel, schema: str) -> None:
    """Refuse an ``iir/1`` report that uses what only ``iir/1.1`` defines, naming each field."""
    if schema != SCHEMA_V1:
        return
    found: list[str] = []
    _uses_v11(report, "", found)
    if found:
        listed = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise ValueError(
            f'{listed}: new in iir/1.1; set "schema": "iir/1.1" (or run '
            "'palermo schema upgrade FILE')"
        )


_WIRE_LISTS: Final[dict[str, str]] = {
    "persons": "Person",
    "transport": "Transport",
    "groups": "OrganisedGroup",
    "documents": "Document",
    "concealment": "Concealment",
    "finance": "FinancialFlow",
    "incidents": "Incident",
    "legislation": "Legislation",
}


def _strip(item: dict[str, Any], fields: frozenset[str]) -> None:
    for name in fields:
        if item.get(name) == []:
            del item[name]


def strip_empty_v11(data: Any) -> dict[str, Any]:
    """Leave out the empty lists of 1.1 fields from a report's wire data (in place)."""
    _strip(data, V11_FIELDS["Report"])
    # deny_to (issue 15) is accepted under both versions; an empty one is left out like the
    # 1.1 lists, so a body reads as before to a node that does not know it.
    _strip(data.get("handling", {}), frozenset({"deny_to"}))
    for name, model in _WIRE_LISTS.items():
        for item in data.get(name, []):
            _strip(item, V11_FIELDS[model])
    return dict(data)
