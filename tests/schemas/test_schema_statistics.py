"""A report of kind statistics carries its header, the words around the figures and the figures,
and nothing else (issue 16 review L2): any other section can describe or identify a person."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from schemas import Report
from schemas._statistics import STATISTICS_REPORT_FIELDS
from tests.schemas._support import EXAMPLES, example

REFUSED = sorted(set(Report.model_fields) - STATISTICS_REPORT_FIELDS)


def _filled(name: str) -> Any:
    """A valid, non-empty value of ``name`` taken from an example report that has one."""
    for path in EXAMPLES:
        value = example(path.name).get(name)
        if value:
            return value
    raise AssertionError(f"no example fills {name}")


def test_the_reviewers_report_is_refused_naming_what_to_remove() -> None:
    data = example("22")
    data["documents"] = [
        {"type": "passport", "issuing_state": "SYR", "fraud": "forged", "serial": "N012345678"}
    ]
    data["transport"] = [
        {"mode": "land-car", "vehicle_plate": "AB 123 CD", "description": "Driven by Mohammed X"}
    ]
    data["groups"] = [{"ref": "g1", "names": ["Abu Y network"]}]
    with pytest.raises(ValidationError, match="remove transport, groups, documents"):
        Report.model_validate(data)


def test_every_section_outside_the_allow_list_is_named() -> None:
    """The refused sections are all the list and object fields of a report but the allowed ones."""
    assert {
        "itinerary", "transport", "groups", "documents", "concealment", "persons", "identifiers",
        "finance", "incidents", "legislation", "scitech", "attachments", "events", "relations",
    } == set(REFUSED)  # fmt: skip


@pytest.mark.parametrize("name", REFUSED)
@pytest.mark.parametrize("prefix", ["22", "25"])
def test_a_statistics_return_refuses(name: str, prefix: str) -> None:
    data = example(prefix)
    data[name] = _filled(name)
    with pytest.raises(
        ValidationError, match=f"a statistics report holds figures only: remove {name}"
    ):
        Report.model_validate(data)


@pytest.mark.parametrize("name", ["documents", "attachments", "itinerary"])
def test_an_iir1_report_of_kind_statistics_refuses(name: str) -> None:
    data = example("22")
    data["schema"] = "iir/1"
    for key in ("statistics", "sources"):
        data.pop(key, None)
    Report.model_validate(data)  # the bare iir/1 statistics report is valid
    data[name] = _filled(name)
    with pytest.raises(ValidationError, match=f"remove {name}"):
        Report.model_validate(data)


def test_the_allowed_fields_are_kept() -> None:
    data = example("22")
    data["refs"] = ["01J2ZK6V8Y3M4N5P6Q7R8S9T0V"]
    assert Report.model_validate(data).refs == data["refs"]
