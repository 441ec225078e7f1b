"""Tampering with every field of the signed header: refused by the broker's and the node's checks.

The recipient list, stanzas, body and signature are covered in tests/envelope/test_seal.py (see
CASES.md); this module walks the header field by field, so a field added to the header without
being covered by the signature (or by this test) fails here.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from protocol.envelope import StaticSigners, decode, encode, open_envelope, seal, verify_envelope
from protocol.envelope._format import Stanza
from schemas import EnvelopeHeader, Handling, SectionInfo
from schemas._types import new_uuid7
from schemas.errors import AuthenticationFailed, ClockSkew, HeaderInvalid
from tests.envelope._factories import (
    KEYS,
    NOW,
    NOW_MS,
    READERS,
    SIGNER,
    header,
    sealed,
    signing_key,
)

OUTSIDER = "AUS-ABF"
ATTACKER = signing_key("LBY-DCIM")
ROTATED = signing_key("ITA-GDF", 1)
# The resolver knows every key involved, so a change of originator or kid is judged by the
# signature itself, not refused earlier as an unknown signer.
SIGNERS = StaticSigners.of([SIGNER.public, ATTACKER.public, ROTATED.public])
DATA = sealed(READERS, b"report body", sections={"personal-data": (b"p", READERS[:1])})
ENV = decode(DATA)


def _wire(**fields: Any) -> dict[str, Any]:
    """A valid header (with the envelope's section) whose given fields differ, on the wire."""
    base: dict[str, Any] = {"sections": [SectionInfo(id="personal-data", kind="personal-data")]}
    return header(READERS, **(base | fields)).to_wire()


def _outsider_added() -> dict[str, Any]:
    hdr = {**ENV.hdr, "recipients": sorted([*ENV.hdr["recipients"], OUTSIDER])}
    stanza = Stanza(OUTSIDER, KEYS[OUTSIDER].kid, ENV.rcpt[0].enc)
    rcpt = tuple(sorted([*ENV.rcpt, stanza], key=lambda s: (s.agency, s.kid)))
    return {"hdr": hdr, "rcpt": rcpt}


def _field(name: str, value: Any) -> dict[str, Any]:
    return {"hdr": {**ENV.hdr, name: value}}


# Each signed header field, changed to another value that passes the schema, the canonical
# form and the consistency checks: only the signature can tell.
TAMPERED: dict[str, dict[str, Any]] = {
    "id": _field("id", new_uuid7(NOW_MS, bytes(9) + b"\x01")),
    "originator": {"hdr": {**ENV.hdr, "originator": ATTACKER.agency, "kid": ATTACKER.kid}},
    "kid": _field("kid", ROTATED.kid),
    "created": _field("created", ENV.hdr["created"] - 1),
    "kind": _field("kind", "report"),
    "priority": _field("priority", "urgent"),
    "route": _field("route", "eastern-med"),
    "category": _field("category", _wire(category="groups")["category"]),
    "handling": _field("handling", _wire(handling=Handling(tlp="GREEN"))["handling"]),
    "recipients": _outsider_added(),
    "refs": _field("refs", ["case-2026-0042"]),
    # Only a statistics header may declare a k: the one valid change adds both (decision 0024).
    "suppression_k": {"hdr": {**ENV.hdr, "kind": "statistics", "suppression_k": 5}},
    "sections": _field(
        "sections",
        _wire(sections=[SectionInfo(id="personal-data", kind="protected-persons")])["sections"],
    ),
}


def _alias(name: str) -> str:
    return EnvelopeHeader.model_fields[name].alias or name


def test_every_signed_header_field_is_tampered_below() -> None:
    """The cases cover every field of EnvelopeHeader (schema is refused by the schema itself)."""
    fields = {_alias(n) for n in EnvelopeHeader.model_fields}
    assert fields == {*TAMPERED, "schema"}
    # Fields at their default value are not on the wire (decision 0011); the rest all are.
    assert set(ENV.hdr) == fields - {"schema", "priority", "refs", "suppression_k"}


@pytest.mark.parametrize("name", sorted(TAMPERED))
def test_tampered_header_field_fails_the_signature(name: str) -> None:
    """A schema-valid change of one header field: AuthenticationFailed at stage 'signature'."""
    doctored = encode(replace(ENV, **TAMPERED[name]))
    assert doctored != DATA
    assert doctored[:-64] != DATA[:-64]
    with pytest.raises(AuthenticationFailed) as broker_view:
        verify_envelope(doctored, SIGNERS, now=NOW)
    with pytest.raises(AuthenticationFailed) as node_view:
        open_envelope(doctored, [KEYS[READERS[0]]], SIGNERS, now=NOW)
    for err in (broker_view.value, node_view.value):
        assert ("auth_failed", "signature") == (err.code, err.stage)
        assert "altered or is not for this key" in err.reason


def test_tampered_schema_field_is_header_invalid() -> None:
    """'schema' admits only iir/1: any other value is HeaderInvalid before the signature."""
    doctored = encode(replace(ENV, hdr={**ENV.hdr, "schema": "iir/2"}))
    with pytest.raises(HeaderInvalid) as err:
        verify_envelope(doctored, SIGNERS, now=NOW)
    assert ("header_invalid", "schema") == (err.value.code, err.value.errors[0]["field"])
    assert "header fails the schema at schema" in err.value.reason


def test_untampered_envelope_verifies_with_the_same_resolver() -> None:
    """Control: the envelope the cases start from verifies and opens."""
    assert b"report body" == open_envelope(DATA, [KEYS[READERS[0]]], SIGNERS, now=NOW).body


def test_tampered_created_into_the_future_is_clock_skew_before_the_signature() -> None:
    """'created' pushed past the skew tolerance is refused as ClockSkew, never opened."""
    ahead = ENV.hdr["created"] + int(timedelta(minutes=6).total_seconds() * 1000)
    doctored = encode(replace(ENV, hdr={**ENV.hdr, "created": ahead}))
    with pytest.raises(ClockSkew) as err:
        verify_envelope(doctored, SIGNERS, now=NOW)
    assert ("clock_skew", 360_000) == (err.value.code, err.value.skew_ms)
    assert "check the originator's clock" in err.value.reason


# --- every field of the handling block ----------------------------------------------------------

# A restrictive handling block, and for each of its fields the loosening an attacker would want.
STRICT: dict[str, Any] = {
    "tlp": "AMBER+STRICT",
    "rel_to": ["group:med-coastal"],
    "judicial_use": False,
    "h2": True,
    "h3": [{"code": "no-contact-with-subject", "text": "do not approach the vessel's crew"}],
    "action": "A2",
    "classification": "restricted",
    "not_before": NOW - timedelta(hours=1),
    "expires": NOW + timedelta(days=1),
    "protected_released_to": [READERS[0]],
    "deny_to": ["country:LBY"],
}
LOOSER: dict[str, Any] = {
    "tlp": "CLEAR",
    "rel_to": ["AUS-ABF", "group:med-coastal"],
    "judicial_use": True,
    "h2": False,
    "h3": [],
    "action": "A3",
    "action_text": "arrest the crew on arrival",
    "classification": "unclassified",
    "not_before": None,
    "expires": NOW + timedelta(days=3650),
    "non_refoulement_override": {
        "agencies": [READERS[1]],
        "justification": "the person is not a refugee and not at risk on return",
    },
    "protected_released_to": sorted(READERS),
    "deny_to": [],
}
STRICT_DATA = seal(
    header(READERS, handling=Handling(**STRICT)), b"report body", SIGNER,
    [KEYS[a].public for a in READERS],
)  # fmt: skip
STRICT_ENV = decode(STRICT_DATA)


def _loosened(name: str) -> dict[str, Any]:
    changes = {name: LOOSER[name]}
    if name == "action":
        changes["action_text"] = LOOSER["action_text"]
    return Handling(**{**STRICT, **changes}).model_dump(mode="json", exclude_defaults=True)


def test_every_handling_field_is_tampered_below() -> None:
    """The loosenings cover every field of Handling but h0, which admits only true."""
    assert set(Handling.model_fields) == {*LOOSER, "h0"}


@pytest.mark.parametrize("name", sorted(LOOSER))
def test_loosened_handling_field_fails_the_signature(name: str) -> None:
    """Each handling field loosened in a validly encoded header: 'signature', never opened."""
    loosened = _loosened(name)
    assert loosened != STRICT_ENV.hdr["handling"]
    doctored = encode(replace(STRICT_ENV, hdr={**STRICT_ENV.hdr, "handling": loosened}))
    with pytest.raises(AuthenticationFailed) as err:
        open_envelope(doctored, [KEYS[READERS[0]]], SIGNERS, now=NOW)
    assert ("auth_failed", "signature") == (err.value.code, err.value.stage)


def test_handling_h0_false_is_header_invalid() -> None:
    """H0 ('only for combating crime') cannot be switched off in an iir/1 header (nor, in an
    iir/1.1 one, outside TLP:CLEAR): HeaderInvalid at handling, naming h0."""
    hdr = {**STRICT_ENV.hdr, "handling": {**STRICT_ENV.hdr["handling"], "h0": False}}
    with pytest.raises(HeaderInvalid) as err:
        verify_envelope(encode(replace(STRICT_ENV, hdr=hdr)), SIGNERS, now=NOW)
    assert "handling" == err.value.errors[0]["field"]
    assert "h0: false" in err.value.errors[0]["message"]
    hdr = {**hdr, "schema": "iir/1.1"}
    with pytest.raises(HeaderInvalid) as err:
        verify_envelope(encode(replace(STRICT_ENV, hdr=hdr)), SIGNERS, now=NOW)
    assert "needs TLP:CLEAR" in err.value.errors[0]["message"]
