"""policies.decide_retraction: membership is the only condition for a well-formed retraction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from policies import decide_retraction
from schemas import EnvelopeHeader, Handling, SectionInfo, new_uuid7
from schemas.errors import PolicyError


def _header(kind: str = "retraction", **fields: Any) -> EnvelopeHeader:
    values: dict[str, Any] = {
        "id": new_uuid7(),
        "originator": "ITA-GDF",
        "kid": "0123456789abcdef",
        "created": datetime.now(UTC),
        "kind": kind,
        "route": "central-med",
        "category": "routes",
        # The original report's handling, RED named for GRC-HCG only: it would deny MLT-AFM.
        "handling": Handling(tlp="RED", rel_to=["GRC-HCG"]),
        "recipients": ["MLT-AFM"],
        "refs": [new_uuid7()],
    }
    return EnvelopeHeader(**{**values, **fields})


def _outcome(header: EnvelopeHeader, not_member: str | None = None) -> tuple[bool, list[str]]:
    decision = decide_retraction(header, "MLT-AFM", not_member)
    return decision.allowed, [r.code for r in decision.reasons]


def test_a_member_receives_it_whatever_the_handling_says() -> None:
    """The handling (RED, rel_to another agency) does not stop a retraction to a member."""
    assert (True, ["allowed"]) == _outcome(_header())


def test_a_recipient_without_a_valid_certificate_is_denied() -> None:
    """Revoked or expired: recipient-not-certified, with the certificate's reason."""
    decision = decide_retraction(_header(), "MLT-AFM", "MLT-AFM's certificate is revoked")
    assert (False, "recipient-not-certified", "MLT-AFM's certificate is revoked") == (
        decision.allowed,
        decision.reasons[0].code,
        decision.reasons[0].message,
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"refs": []},
        {"refs": [new_uuid7(), new_uuid7()]},
        {"sections": [SectionInfo(id="personal-data", kind="personal-data")]},
    ],
    ids=["no-ref", "two-refs", "a-section"],
)
def test_anything_but_one_ref_and_no_sections_is_denied(fields: dict[str, Any]) -> None:
    """A retraction is a tombstone for one report: more or less, or sections, is refused."""
    assert (False, ["retraction-invalid"]) == _outcome(_header(**fields))


def test_only_retractions_are_decided_this_way() -> None:
    """A report passed to decide_retraction is a caller bug: PolicyError."""
    with pytest.raises(PolicyError):
        decide_retraction(_header("report"), "MLT-AFM", None)
