"""tear_line_report(): the version below the tear-line of every example holds no section, keeps
the body every recipient gets, and refs the original."""

from __future__ import annotations

import pytest

from node.reports import tear_line_report
from schemas import join, partition
from schemas.errors import InputError
from tests.harness import EXAMPLES, example

ORIGINAL = "01a205df-79eb-787c-affb-e98c452bf3ac"
NAMES = sorted(p.name[:2] for p in EXAMPLES.glob("*.json"))


@pytest.mark.parametrize("name", NAMES)
def test_the_tear_line_is_the_body_without_sections(name: str) -> None:
    """No personal-data or protected-persons section; everything else as the body has it."""
    report = example(name)
    derivative = tear_line_report(report, ORIGINAL)
    assert [] == partition(derivative).sections()
    assert [*report.refs, ORIGINAL] == derivative.refs
    body = join(partition(report).main).model_copy(update={"refs": derivative.refs})
    assert body == derivative
    assert report.handling == derivative.handling


def test_a_report_cannot_be_its_own_tear_line() -> None:
    """A report already referring to the original is refused with a typed error."""
    report = example("12").model_copy(update={"refs": [ORIGINAL]})
    with pytest.raises(InputError, match="already refs"):
        tear_line_report(report, ORIGINAL)


def test_a_tear_line_over_the_refs_limit_is_refused() -> None:
    """32 refs already: the derivative would not be a valid report, so nothing is sent."""
    report = example("12").model_copy(update={"refs": [f"case-{i}" for i in range(32)]})
    with pytest.raises(InputError, match="write the releasable version by hand"):
        tear_line_report(report, ORIGINAL)
