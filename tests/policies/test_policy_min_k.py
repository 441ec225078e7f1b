"""[rules] statistics_min_k: aggregate-only members take returns suppressed at k or above."""

from __future__ import annotations

import pytest

from policies import Federation, decide
from schemas import EnvelopeHeader
from tests.policies._factories import NOW, header_data, member, small_federation


def _fed(min_k: int | None) -> Federation:
    data = small_federation().model_dump(mode="json")
    data["members"].append(member("UN-STATS", "AUT", ["eu"], aggregate_only=True))
    data["rules"]["statistics_min_k"] = min_k
    return Federation.model_validate(data)


def _codes(min_k: int | None, declared: int | None, recipient: str = "UN-STATS") -> list[str]:
    data = header_data(tlp="GREEN", kind="statistics")
    if declared is not None:
        data["suppression_k"] = declared
    head = EnvelopeHeader.model_validate(data)
    return [r.code for r in decide(head, recipient, _fed(min_k), None, NOW).reasons]


@pytest.mark.parametrize(
    ("min_k", "declared", "expected"),
    [
        (None, None, ["allowed"]),
        (None, 3, ["allowed"]),
        (5, 5, ["allowed"]),
        (5, 10, ["allowed"]),
        (5, 4, ["suppression-below-min-k"]),
        (5, None, ["suppression-below-min-k"]),
    ],
)
def test_aggregate_only_needs_the_minimum_k(
    min_k: int | None, declared: int | None, expected: list[str]
) -> None:
    """Header k absent or below statistics_min_k is refused to an aggregate-only member."""
    assert expected == _codes(min_k, declared)


def test_other_members_are_not_bound_by_min_k() -> None:
    """The rule is for aggregate-only members; a partner agency still receives the return."""
    assert ["allowed"] == _codes(5, None, "MLT-AFM")


def test_the_reason_says_what_to_do() -> None:
    """The message names the required and the declared k."""
    data = header_data(tlp="GREEN", kind="statistics")
    head = EnvelopeHeader.model_validate(data)
    (reason,) = decide(head, "UN-STATS", _fed(5), None, NOW).reasons
    assert (
        "UN-STATS is an aggregate-only member and the federation requires statistics "
        "suppressed at k >= 5, but the header declares none; publish the return again from a "
        "node that suppresses at k >= 5" == reason.message
    )


def test_suppression_k_only_on_statistics() -> None:
    """A header of another kind cannot declare a k."""
    data = header_data(tlp="GREEN", kind="report")
    data["suppression_k"] = 5
    with pytest.raises(ValueError, match="suppression_k belongs to a header of kind statistics"):
        EnvelopeHeader.model_validate(data)
