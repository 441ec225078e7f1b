"""IIR 1.1 vocabulary discipline (issue 14 item 7): every new field and controlled term is
documented in docs/schema.md and used by at least one example in schemas/examples/."""

from __future__ import annotations

import json
import re
from enum import Enum, StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import schemas._facts as facts
import schemas._terms11 as terms11
from schemas import parse_report
from schemas._versions import V11_FIELDS, V11_TERMS
from tests.schemas._support import EXAMPLES

DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"
# The field groups IIR 1.1 added: all their fields are new.
NEW_MODELS: list[type[BaseModel]] = [getattr(facts, name) for name in facts.__all__]
NEW_ENUMS: list[type[StrEnum]] = [getattr(terms11, name) for name in terms11.__all__]


def _new_fields() -> set[str]:
    """Every 1.1 field as ``Model.field``."""
    out = {f"{model}.{name}" for model, names in V11_FIELDS.items() for name in names}
    return out | {f"{m.__name__}.{name}" for m in NEW_MODELS for name in m.model_fields}


def _term(term: Enum) -> str:
    # By name, not the member itself: StrEnum members equal their value, so a set of members
    # would merge EventKind.OTHER with Offence.OTHER, and Route.AIR with BorderType.AIR.
    return f"{type(term).__name__}.{term.value}"


def _new_terms() -> dict[str, Enum]:
    """Every 1.1 term, by ``Enum.value``."""
    terms = [term for enum in NEW_ENUMS for term in enum] + list(V11_TERMS)
    return {_term(t): t for t in terms}


@cache
def _code_spans() -> frozenset[str]:
    return frozenset(re.findall(r"`([^`\n]+)`", DOC.read_text()))


def test_every_new_field_is_documented() -> None:
    """Each 1.1 field's wire name is written as `code` in docs/schema.md."""
    missing = sorted(f for f in _new_fields() if f.split(".")[1] not in _code_spans())
    assert [] == missing, f"document these iir/1.1 fields in docs/schema.md: {missing}"


def test_every_new_term_is_documented() -> None:
    """Each 1.1 controlled term is written as `code` in docs/schema.md, with its definition."""
    missing = sorted(k for k, t in _new_terms().items() if t.value not in _code_spans())
    assert [] == missing, f"document these iir/1.1 terms in docs/schema.md: {missing}"


def test_every_new_term_has_a_table_row() -> None:
    """A term is defined in a table row of its own (term, definition, source), not just named."""
    rows = {
        cells[1].strip().strip("`")
        for line in DOC.read_text().splitlines()
        if line.startswith("| `") and len(cells := line.split("|")) >= 5
    }
    missing = sorted(k for k, t in _new_terms().items() if t.value not in rows)
    assert [] == missing, f"give these terms a row (term | definition | source): {missing}"


def _walk(node: Any, fields: set[str], terms: set[str]) -> None:
    """Record the fields set to other than their default, and the enum values used."""
    if isinstance(node, BaseModel):
        model = type(node)
        for name, info in model.model_fields.items():
            value = getattr(node, name)
            if value != info.get_default(call_default_factory=True) or info.is_required():
                fields.add(f"{model.__name__}.{name}")
            _walk(value, fields, terms)
    elif isinstance(node, list | tuple):
        for item in node:
            _walk(item, fields, terms)
    elif isinstance(node, Enum):
        terms.add(_term(node))


@cache
def _used() -> tuple[frozenset[str], frozenset[str]]:
    fields: set[str] = set()
    terms: set[str] = set()
    for path in EXAMPLES:
        _walk(parse_report(json.loads(path.read_text())), fields, terms)
    return frozenset(fields), frozenset(terms)


def test_walk_sees_set_fields_and_terms() -> None:
    """The walk notices a set 1.1 field and a term, and not a field left at its default."""
    fields: set[str] = set()
    terms: set[str] = set()
    report = {
        "schema": "iir/1.1",
        "originator": "ITA-GDF",
        "category": "routes",
        "route": "central-med",
        "title": "t",
        "handling": {"tlp": "GREEN"},
        "narrative": {"language": "en", "text": "x"},
        "contact": {"unit": "u", "channel": "palermo"},
        "events": [{"kind": "departure", "detection_methods": ["radar"]}],
    }
    _walk(parse_report(report), fields, terms)
    assert {"Report.events", "Event.kind", "Event.detection_methods"} <= fields
    assert "Event.earliest" not in fields
    assert "Report.sources" not in fields
    assert {"DetectionMethod.radar", "EventKind.departure"} <= terms
    assert "Route.central-med" in terms
    assert "EventKind.other" not in terms


def test_every_new_field_is_used_by_an_example() -> None:
    """Each 1.1 field is set in at least one example, so partners see it in use."""
    used, _ = _used()
    missing = sorted(_new_fields() - used)
    assert [] == missing, f"no example in schemas/examples/ sets these iir/1.1 fields: {missing}"


def test_every_new_term_is_used_by_an_example() -> None:
    """Each 1.1 controlled term appears in at least one example."""
    _, used = _used()
    missing = sorted(set(_new_terms()) - used)
    assert [] == missing, f"no example in schemas/examples/ uses these iir/1.1 terms: {missing}"
