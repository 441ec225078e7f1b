"""The IIR 1.1 field groups refuse what cannot be true, naming the rule to fix."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from schemas import Event, Penalty, Person, PersonRelation


@pytest.mark.parametrize(
    ("model", "data", "message"),
    [
        (
            Event,
            {"kind": "departure", "at": 1, "earliest": 0},
            "either at, or a window",
        ),
        (
            Event,
            {"kind": "departure", "earliest": 2_000, "latest": 1_000},
            "latest must not be before earliest",
        ),
        (
            PersonRelation,
            {"kind": "identified", "from_ref": "w1", "to_ref": "w1"},
            "two different persons",
        ),
        (
            Penalty,
            {
                "offence": "smuggling-of-migrants",
                "imprisonment_min_months": 24,
                "imprisonment_max_months": 12,
            },
            "must not be below",
        ),
        (
            Person,
            {"ref": "p1", "role": "boat-pilot", "roles": ["smuggled-migrant", "smuggled-migrant"]},
            "each role once",
        ),
    ],
)
def test_impossible_facts_are_refused(model: Any, data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        model.model_validate(data)


def test_a_window_and_an_instant_are_both_fine_alone() -> None:
    """An expected departure 'tonight' is a window; an observed one, an instant."""
    window = Event.model_validate(
        {"kind": "departure", "status": "expected", "earliest": 1_000, "latest": 2_000}
    )
    assert window.at is None
    assert window.latest is not None
    assert Event.model_validate({"kind": "departure", "at": 1_000}).earliest is None


def test_a_protected_role_among_roles_protects_the_person() -> None:
    """A migrant who is also a witness is withheld as a witness (issue 14: protected wins)."""
    person = Person.model_validate(
        {"ref": "p1", "role": "smuggled-migrant", "roles": ["witness", "boat-pilot"]}
    )
    assert person.protected
    assert not Person.model_validate({"ref": "p2", "role": "boat-pilot"}).protected


def _v1(**extra: Any) -> dict[str, Any]:
    return {
        "schema": "iir/1",
        "originator": "ITA-GDF",
        "category": "documents",
        "route": "air",
        "title": "Suspect passports at the airport",
        "handling": {"tlp": "GREEN"},
        "narrative": {"language": "en", "text": "Two passports held for examination."},
        "contact": {"unit": "Document desk", "channel": "palermo"},
        **extra,
    }


def test_an_iir_1_report_cannot_use_a_1_1_term() -> None:
    """A term new in 1.1 in an iir/1 report is named, with the fix."""
    from schemas import parse_report
    from schemas.errors import ReportInvalid

    document = {"type": "passport", "issuing_state": "ITA", "fraud": "unverified"}
    with pytest.raises(ReportInvalid, match=r"documents\.0\.fraud \(unverified\): new in iir/1\.1"):
        parse_report(_v1(documents=[document]))
    assert parse_report({**_v1(documents=[document]), "schema": "iir/1.1"}).documents


def test_a_payment_chain_names_payments_of_the_report() -> None:
    """previous_ref names another finance item: not itself, not a missing one."""
    from schemas import parse_report
    from schemas.errors import ReportInvalid

    flows = [{"ref": "f1", "kind": "fee", "previous_ref": "f1"}]
    with pytest.raises(ReportInvalid, match="previous_ref 'f1' is not in finance"):
        parse_report({**_v1(finance=flows), "schema": "iir/1.1"})
