"""Person-to-person relations in sealed sections: a relation names two persons, so it travels
whole in the most protected section of the two, never in the body, and join puts it back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas import PersonRelationKind, Report, join, parse_report, partition
from tests.schemas._support import minimal

EXAMPLES = Path(__file__).parents[2] / "schemas" / "examples"

PERSONS = [
    {"ref": "w1", "role": "smuggled-migrant", "roles": ["witness"], "names": ["Example Witness"]},
    {"ref": "d1", "role": "driver", "names": ["Example Driver One"]},
    {"ref": "d2", "role": "driver", "names": ["Example Driver Two"]},
]
WITNESS_TO_DRIVER = {"kind": "identified", "from_ref": "w1", "to_ref": "d1", "certainty": "known"}
DRIVER_TO_DRIVER = {"kind": "works-for", "from_ref": "d2", "to_ref": "d1", "certainty": "suspected"}


def _report(*relations: dict[str, Any]) -> Report:
    return parse_report(minimal(schema="iir/1.1", persons=PERSONS, relations=list(relations)))


def _wire(report: Report) -> list[dict[str, Any]]:
    """The report's relations as they are written on the wire."""
    return report.to_wire()["relations"]  # type: ignore[no-any-return]


def test_witness_relation_in_protected_persons_driver_relation_in_personal_data() -> None:
    """Witness–driver: protected-persons; driver–driver: personal-data; each at its position."""
    report = _report(DRIVER_TO_DRIVER, WITNESS_TO_DRIVER)
    driver, witness = _wire(report)
    parts = partition(report)
    assert parts.personal_data is not None
    assert parts.protected_persons is not None
    assert [[0, driver]] == parts.personal_data["relations"]
    assert [[1, witness]] == parts.protected_persons["relations"]


@pytest.mark.parametrize(
    "relation",
    [WITNESS_TO_DRIVER, DRIVER_TO_DRIVER, {"kind": "identified", "from_ref": "d1", "to_ref": "w1"}],
    ids=["witness-driver", "driver-driver", "driver-witness"],
)
def test_a_relation_is_never_in_the_body(relation: dict[str, Any]) -> None:
    """Neither the relation nor its kind is left in what every recipient reads."""
    parts = partition(_report(relation))
    assert "relations" not in parts.main
    assert relation["kind"] not in json.dumps(parts.main)


@pytest.mark.parametrize(
    "relation",
    [{"kind": "travelled-with", "from_ref": "d1", "to_ref": "w1"}, WITNESS_TO_DRIVER],
    ids=["to-witness", "from-witness"],
)
def test_either_end_protected_puts_the_whole_relation_in_protected_persons(
    relation: dict[str, Any],
) -> None:
    """The relation is not split: a protected person at either end takes it whole."""
    parts = partition(_report(relation))
    assert parts.protected_persons is not None
    assert [[0, _wire(_report(relation))[0]]] == parts.protected_persons["relations"]
    assert parts.personal_data is None or "relations" not in parts.personal_data


def test_join_restores_the_relations_in_order() -> None:
    """With every section, join gives back the same relations, in the same order."""
    report = _report(WITNESS_TO_DRIVER, DRIVER_TO_DRIVER, {**WITNESS_TO_DRIVER, "to_ref": "d2"})
    parts = partition(report)
    joined = join(parts.main, parts.personal_data, parts.protected_persons)
    assert report == joined
    assert _wire(report) == _wire(joined)


def test_join_without_protected_persons_drops_only_the_witness_relation() -> None:
    """A recipient without protected-persons keeps the drivers' relation and not the witness's."""
    report = _report(WITNESS_TO_DRIVER, DRIVER_TO_DRIVER)
    parts = partition(report)
    partial = join(parts.main, parts.personal_data)
    assert [DRIVER_TO_DRIVER] == _wire(partial)
    assert [] == join(parts.main).relations


def test_every_relation_kind_round_trips() -> None:
    """Each kind, between a witness and a driver, is sealed and joined unchanged."""
    relations = [{**WITNESS_TO_DRIVER, "kind": kind.value} for kind in PersonRelationKind]
    report = _report(*relations)
    parts = partition(report)
    assert len(PersonRelationKind) == len(parts.protected_persons["relations"])  # type: ignore[index]
    assert report == join(parts.main, parts.personal_data, parts.protected_persons)


def test_a_transport_is_not_carried_on_itself() -> None:
    """carried_on_ref names another transport item; naming itself is refused with the field."""
    from schemas.errors import ReportInvalid

    data = json.loads((EXAMPLES / "15-concealment-lorry-ferry-co2.json").read_text())
    lorry = next(t for t in data["transport"] if t.get("carried_on_ref"))
    lorry["carried_on_ref"] = lorry["ref"]
    with pytest.raises(ReportInvalid, match="not carried on itself"):
        parse_report(data)
