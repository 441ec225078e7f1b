"""Evaluation codes: kept in their own scheme; the common view never upgrades."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from pydantic import TypeAdapter, ValidationError

from schemas import (
    Admiralty6x6,
    CommonGrade,
    Europol4x4,
    Evaluation,
    Uk3x5x2,
    Uk5x5x5,
    parse_report,
)
from tests.schemas._support import evaluation, minimal

CANNOT_JUDGE = 5

# The common levels each code's published meaning could justify. A code whose meaning spans two
# levels (3x5x2 "reliable" = 5x5x5's "always" or "mostly") lists both; the mapping must take the
# worse (the higher number), so a grade is never upgraded by conversion.
SOURCE: dict[str, dict[str, set[int]]] = {
    "europol-4x4": {"A": {1}, "B": {2}, "C": {4}, "X": {5}},
    "admiralty-6x6": {"A": {1}, "B": {2}, "C": {3}, "D": {4}, "E": {4}, "F": {5}},
    "uk-5x5x5": {"A": {1}, "B": {2}, "C": {3}, "D": {4}, "E": {5}},
    "uk-3x5x2": {"1": {1, 2}, "2": {5}, "3": {4}},
}
INFORMATION: dict[str, dict[str, set[int]]] = {
    # Europol 1 not in doubt; 2 known personally to the source; 3 corroborated; 4 cannot be.
    "europol-4x4": {"1": {1}, "2": {2}, "3": {3}, "4": {5}},
    "admiralty-6x6": {"1": {1}, "2": {2}, "3": {3}, "4": {4}, "5": {4}, "6": {5}},
    # 5x5x5: 4 cannot be judged, 5 suspected false.
    "uk-5x5x5": {"1": {1}, "2": {2}, "3": {3}, "4": {5}, "5": {4}},
    # 3x5x2: A known directly to the source (5x5x5's 1 or 2); B indirectly but corroborated;
    # C indirectly (uncorroborated, Europol's 4); D not known; E suspected false.
    "uk-3x5x2": {"A": {1, 2}, "B": {3}, "C": {5}, "D": {5}, "E": {4}},
}
CLASSES: dict[str, Any] = {
    "europol-4x4": Europol4x4,
    "admiralty-6x6": Admiralty6x6,
    "uk-5x5x5": Uk5x5x5,
    "uk-3x5x2": Uk3x5x2,
}
evaluation_adapter: TypeAdapter[Any] = TypeAdapter(Evaluation)


def _grade(scheme: str, source: str, info: str) -> Any:
    cls = CLASSES[scheme]
    extra = {"handling": {"uk-5x5x5": "1", "uk-3x5x2": "P"}[scheme]} if "uk" in scheme else {}
    key = "information" if "information" in cls.model_fields else "intelligence"
    return cls(source=source, **{key: info}, **extra)


def _all_grades() -> list[tuple[str, str, str]]:
    return [(s, src, inf) for s in SOURCE for src in SOURCE[s] for inf in INFORMATION[s]]


@pytest.mark.parametrize(("scheme", "source", "info"), _all_grades())
def test_every_code_maps_to_the_worst_level_its_meaning_allows(
    scheme: str, source: str, info: str
) -> None:
    """The common view of every code is the worst of the levels its meaning spans."""
    common = _grade(scheme, source, info).common()
    expected = (max(SOURCE[scheme][source]), max(INFORMATION[scheme][info]))
    assert expected == (common.reliability, common.credibility)


@pytest.mark.parametrize("scheme", list(SOURCE))
def test_order_within_a_scheme_is_kept(scheme: str) -> None:
    """A worse code of a scheme never maps better than a better code ("cannot be judged" aside)."""
    info0, source0 = next(iter(INFORMATION[scheme])), next(iter(SOURCE[scheme]))
    reliability = [_grade(scheme, c, info0).common().reliability for c in SOURCE[scheme]]
    credibility = [_grade(scheme, source0, c).common().credibility for c in INFORMATION[scheme]]
    for levels in (reliability, credibility):
        graded = [level for level in levels if level != CANNOT_JUDGE]
        assert sorted(graded) == graded


def test_same_meaning_same_level_across_schemes() -> None:
    """Codes with the same published meaning land on the same common level in every scheme."""
    same_credibility = [
        [("europol-4x4", "2"), ("uk-5x5x5", "2"), ("uk-3x5x2", "A")],  # known to the source
        [("europol-4x4", "3"), ("uk-5x5x5", "3"), ("uk-3x5x2", "B")],  # corroborated hearsay
        [("europol-4x4", "4"), ("uk-5x5x5", "4"), ("uk-3x5x2", "C"), ("admiralty-6x6", "6")],
        [("uk-5x5x5", "5"), ("uk-3x5x2", "E")],  # suspected false
    ]
    for group in same_credibility:
        levels = {max(INFORMATION[s][c]) for s, c in group}
        mapped = {_grade(s, next(iter(SOURCE[s])), c).common().credibility for s, c in group}
        assert levels == mapped
        assert 1 == len(mapped), group


@given(evaluation)
def test_evaluation_is_stored_as_given(data: dict[str, str]) -> None:
    """A report keeps its evaluation in the scheme it came in; the view is computed, not stored."""
    report = parse_report(minimal(evaluation=data))
    assert data == report.to_wire()["evaluation"]
    assert report.evaluation is not None
    assert data["scheme"] == report.evaluation.scheme
    common = report.evaluation.common()
    assert 1 <= common.reliability <= 5
    assert 1 <= common.credibility <= 5


@pytest.mark.parametrize(
    "data",
    [
        {"scheme": "europol-4x4", "source": "D", "information": "1"},
        {"scheme": "admiralty-6x6", "source": "A", "information": "7"},
        {"scheme": "uk-5x5x5", "source": "A", "intelligence": "1"},  # handling missing
        {"scheme": "uk-3x5x2", "source": "1", "intelligence": "A", "handling": "X"},
        {"scheme": "europol-4x4", "source": "A", "information": "1", "handling": "P"},
        {"source": "A", "information": "1"},
    ],
)
def test_invalid_evaluations(data: dict[str, str]) -> None:
    """Codes outside their scheme, missing parts, extra parts and a missing scheme are refused."""
    with pytest.raises(ValidationError):
        evaluation_adapter.validate_python(data)


def test_common_grade_range() -> None:
    """The common scale has five levels on each axis."""
    with pytest.raises(ValidationError):
        CommonGrade(reliability=0, credibility=1)
    with pytest.raises(ValidationError):
        CommonGrade(reliability=1, credibility=6)
