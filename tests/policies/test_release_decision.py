"""policies.decide on a release envelope: one grant, one target, the original in refs."""

from __future__ import annotations

from typing import Any

import pytest

from policies import decide
from schemas import EnvelopeHeader
from tests.policies._factories import NOW, codes, header_data, small_federation

ORIGINAL = "0190a5e0-0000-7000-8000-0000000000aa"


def _release(**fields: Any) -> EnvelopeHeader:
    data = header_data(kind="release", tlp="RED", rel_to=["MLT-AFM"])
    return EnvelopeHeader.model_validate(
        {**data, "recipients": ["MLT-AFM"], "refs": [ORIGINAL], **fields}
    )


def test_a_release_to_its_one_target_is_allowed_and_flagged_release_used() -> None:
    """The grant's target, the original in refs: allowed, audited with release-used."""
    decision = decide(_release(), "MLT-AFM", small_federation(), None, NOW)
    assert (True, ("release-used",)) == (decision.allowed, decision.audit_flags)


@pytest.mark.parametrize(
    "fields",
    [{"recipients": ["MLT-AFM", "LBY-DCIM"]}, {"refs": []}],
    ids=["two-recipients", "no-original"],
)
def test_a_release_wider_than_one_grant_is_refused(fields: dict[str, Any]) -> None:
    """More than the one target, or no original named: release-invalid, for every recipient."""
    decision = decide(_release(**fields), "MLT-AFM", small_federation(), None, NOW)
    assert (False, "release-invalid") == (decision.allowed, codes(decision)[0])


def test_a_release_keeps_every_other_rule() -> None:
    """A release to an agency the handling or agreements refuse is still refused."""
    release = _release(recipients=["AUS-ABF"])  # RED named for MLT-AFM only; no agreement
    decision = decide(release, "AUS-ABF", small_federation(), None, NOW)
    assert not decision.allowed
    assert {"red-not-named", "no-agreement"} <= set(codes(decision))
