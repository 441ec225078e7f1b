"""The example reports: all valid, fictional, and together covering every field group."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from schemas import Category, Report, join, parse_report, partition
from schemas._types import AGENCY_ID_PATTERN
from tests.schemas._support import EXAMPLES


def _all() -> list[Report]:
    return [parse_report(p.read_bytes()) for p in EXAMPLES]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_validates_and_round_trips(path: Path) -> None:
    """Each example parses, and survives the wire and partition/join round trips."""
    report = parse_report(path.read_bytes())
    assert report == Report.from_wire(report.to_wire())
    parts = partition(report)
    assert report == join(parts.main, parts.personal_data, parts.protected_persons)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_file_format(path: Path) -> None:
    """Files are NN-<topic>.json, pretty-printed with two spaces, with well-formed agency ids."""
    data: dict[str, Any] = json.loads(path.read_text())
    assert re.match(r"^\d\d-[a-z0-9-]+\.json$", path.name)
    assert path.read_text() == json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    assert re.match(AGENCY_ID_PATTERN, data["originator"])


def test_examples_cover_every_category_and_field_group() -> None:
    """At least eight examples; every art. 10(1) category and every field group appears."""
    reports = _all()
    assert len(reports) >= 8
    assert set(Category) == {r.category for r in reports}
    for group in (
        "itinerary", "transport", "groups", "documents", "concealment", "persons",
        "identifiers", "finance", "incidents", "legislation", "scitech", "attachments",
        "evaluation",
    ):  # fmt: skip
        assert any(getattr(r, group) for r in reports), group


def test_examples_include_the_sensitive_cases() -> None:
    """Migrants with nationality, a witness and a victim, deaths, bribes and every scheme."""
    reports = _all()
    persons = [p for r in reports for p in r.persons]
    assert any(p.role == "smuggled-migrant" and p.nationality for p in persons)
    assert {"witness", "victim"} <= {p.role.value for p in persons}
    assert any(i.deaths and i.death_causes for r in reports for i in r.incidents)
    assert any(f.kind == "bribe" and f.stage for r in reports for f in r.finance)
    schemes = {r.evaluation.scheme for r in reports if r.evaluation}
    assert {"europol-4x4", "admiralty-6x6", "uk-5x5x5", "uk-3x5x2"} == schemes
    assert any(partition(r).protected_nationalities for r in reports)
    assert any(partition(r).protected_persons for r in reports)
