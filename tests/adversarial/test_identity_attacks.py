"""Who signed it: look-alike agency ids, revoked, superseded and expired keys, lapsed membership."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from palermo.devfed import DevFederation
from protocol import crypto
from protocol.envelope import decode, verify_envelope
from protocol.envelope._format import Stanza
from protocol.keys import SigningKey
from protocol.trust import (
    ROOT,
    MembershipCertificate,
    RevocationEntry,
    RevocationList,
    TrustStore,
    _domain,
    canonical_json,
    sign_document,
)
from schemas.errors import (
    HeaderInvalid,
    KeyNotValid,
    MalformedEnvelope,
    TrustError,
    UnknownSigner,
)
from tests.envelope._factories import NOW, READERS, SIGNERS, resign, sealed
from tests.harness import envelope

GENUINE = "ITA-GDF"
# Each renders as (or normalises to) ITA-GDF, or differs from it only by an invisible character.
LOOK_ALIKES = {
    "cyrillic-i": "\u0406TA-GDF",
    "cyrillic-a": "IT\u0410-GDF",
    "greek-iota": "\u0399TA-GDF",
    "greek-tau-alpha": "I\u03a4\u0391-GDF",
    "fullwidth": "\uff29\uff34\uff21-GDF",
    "zero-width-joiner": "ITA\u200d-GDF",
    "zero-width-space": "ITA-GDF\u200b",
    "nfkc-roman-numeral-one": "\u2160TA-GDF",
    "nfkc-math-bold-i": "\U0001d408TA-GDF",
    "unicode-hyphen": "ITA\u2010GDF",
    "non-breaking-hyphen": "ITA\u2011GDF",
    "combining-acute": "ITA-GDF\u0301",
    "trailing-newline": "ITA-GDF\n",
    "trailing-space": "ITA-GDF ",
}
ENV = decode(sealed(READERS))


def test_look_alikes_are_what_they_claim() -> None:
    """Every variant differs from the genuine id; the NFKC ones normalise to it exactly."""
    assert all(v != GENUINE for v in LOOK_ALIKES.values())
    for name in ("fullwidth", "nfkc-roman-numeral-one", "nfkc-math-bold-i"):
        assert GENUINE == unicodedata.normalize("NFKC", LOOK_ALIKES[name])


def _header_invalid(hdr: dict[str, Any]) -> HeaderInvalid:
    with pytest.raises(HeaderInvalid) as err:
        verify_envelope(resign(replace(ENV, hdr=hdr)), SIGNERS, now=NOW)
    assert "header_invalid" == err.value.code
    return err.value


@pytest.mark.parametrize("variant", LOOK_ALIKES.values(), ids=LOOK_ALIKES.keys())
def test_look_alike_originator_is_header_invalid(variant: str) -> None:
    """A validly signed header naming a look-alike originator fails the schema at originator."""
    err = _header_invalid({**ENV.hdr, "originator": variant})
    assert "originator" == err.errors[0]["field"]
    assert "header fails the schema at originator" in err.reason


@pytest.mark.parametrize("variant", LOOK_ALIKES.values(), ids=LOOK_ALIKES.keys())
def test_look_alike_recipient_is_header_invalid(variant: str) -> None:
    """A look-alike among the recipients (a second 'ITA-GDF' to leak to) fails the schema."""
    hdr = {**ENV.hdr, "recipients": sorted([*ENV.hdr["recipients"], variant])}
    err = _header_invalid(hdr)
    assert err.errors[0]["field"].startswith("recipients.")
    assert "header fails the schema at recipients." in err.reason


@pytest.mark.parametrize("variant", LOOK_ALIKES.values(), ids=LOOK_ALIKES.keys())
def test_look_alike_rel_to_entry_is_header_invalid(variant: str) -> None:
    """A look-alike in handling.rel_to fails the schema with 'neither an agency id'."""
    handling = {**ENV.hdr["handling"], "rel_to": sorted(["group:med-coastal", variant])}
    err = _header_invalid({**ENV.hdr, "handling": handling})
    assert err.errors[0]["field"].startswith("handling.rel_to.")
    assert "neither an agency id" in err.errors[0]["message"]


@pytest.mark.parametrize("variant", LOOK_ALIKES.values(), ids=LOOK_ALIKES.keys())
def test_look_alike_stanza_agency_is_malformed(variant: str) -> None:
    """A key stanza under a look-alike name is a stanza for a non-recipient: malformed."""
    extra = Stanza(variant, ENV.rcpt[0].kid, ENV.rcpt[0].enc)
    rcpt = tuple(sorted([*ENV.rcpt, extra], key=lambda s: (s.agency, s.kid)))
    with pytest.raises(MalformedEnvelope) as err:
        verify_envelope(resign(replace(ENV, rcpt=rcpt)), SIGNERS, now=NOW)
    assert f"stanza for {variant}, which is not a listed recipient" == err.value.reason


FED_NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def fed() -> DevFederation:
    return DevFederation.build(FED_NOW)


def _certificate(fed: DevFederation, agency: str, **changes: Any) -> dict[str, Any]:
    """The agency's certificate re-issued by the root under the next serial with changes."""
    current = fed.agencies[agency].certificate["document"]
    cert = MembershipCertificate.model_validate(
        {**current, "serial": current["serial"] + 100, **changes}
    )
    return sign_document(cert, fed.root, ROOT)


@pytest.mark.parametrize("variant", LOOK_ALIKES.values(), ids=LOOK_ALIKES.keys())
def test_look_alike_membership_certificate_is_refused(fed: DevFederation, variant: str) -> None:
    """Even signed by the root, a certificate for a look-alike agency id fails its schema."""
    document = {**fed.agencies[GENUINE].certificate["document"], "agency": variant}
    # Signed the way sign_document does, which itself refuses to sign an invalid model.
    sig = crypto.sign(fed.root.private, _domain(document["kind"]), canonical_json(document))
    signed = {"document": document, "signature": {"signer": ROOT, "kid": fed.root.kid,
                                                  "ed25519": sig.hex()}}  # fmt: skip
    with pytest.raises(TrustError) as err:
        fed.trust_store().add_certificate(signed)
    assert "fails its schema at agency" in err.value.reason


def _store(fed: DevFederation) -> TrustStore:
    return fed.trust_store()


def test_revoked_signing_key_is_key_not_valid(fed: DevFederation) -> None:
    """The root revokes ITA-GDF's signing key (by kid): its envelopes are KeyNotValid."""
    store = _store(fed)
    kid = fed.agencies[GENUINE].signing.kid
    entry = RevocationEntry(agency=GENUINE, kid=kid, reason="stolen laptop", revoked_at=FED_NOW)
    revoked = RevocationList(seq=2, issued=FED_NOW, entries=[entry])
    store.set_revocations(sign_document(revoked, fed.root, ROOT))
    _, data = envelope(fed, created=FED_NOW)
    with pytest.raises(KeyNotValid) as err:
        verify_envelope(data, store, now=FED_NOW + timedelta(seconds=1))
    assert ("key_not_valid", f"signing key {kid} of ITA-GDF is revoked") == (
        err.value.code,
        err.value.reason,
    )


def test_expired_membership_is_key_not_valid(fed: DevFederation) -> None:
    """A membership certificate that lapsed yesterday: KeyNotValid saying to renew it."""
    store = _store(fed)
    store.add_certificate(
        _certificate(
            fed,
            GENUINE,
            not_before=FED_NOW - timedelta(days=400),
            not_after=FED_NOW - timedelta(days=1),
        )
    )
    _, data = envelope(fed, created=FED_NOW)
    with pytest.raises(KeyNotValid) as err:
        verify_envelope(data, store, now=FED_NOW)
    assert "key_not_valid" == err.value.code
    assert "membership certificate is valid" in err.value.reason
    assert "ask the federation operator to renew it" in err.value.reason


def test_membership_not_yet_valid_is_key_not_valid(fed: DevFederation) -> None:
    """A certificate that starts tomorrow does not let its key sign today."""
    store = _store(fed)
    store.add_certificate(_certificate(fed, GENUINE, not_before=FED_NOW + timedelta(days=1)))
    _, data = envelope(fed, created=FED_NOW)
    with pytest.raises(KeyNotValid) as err:
        verify_envelope(data, store, now=FED_NOW)
    assert "membership certificate is valid" in err.value.reason


def test_superseded_signing_key_is_unknown_signer(fed: DevFederation) -> None:
    """After the root re-issues the certificate with a new signing key, the old key's envelopes
    name a kid the federation no longer knows: UnknownSigner."""
    store = _store(fed)
    old_kid = fed.agencies[GENUINE].signing.kid
    new_key = SigningKey.generate(GENUINE)
    store.add_certificate(_certificate(fed, GENUINE, signing_key=new_key.public.raw.hex()))
    _, data = envelope(fed, created=FED_NOW)
    with pytest.raises(UnknownSigner) as err:
        verify_envelope(data, store, now=FED_NOW)
    assert (GENUINE, old_kid) == (err.value.originator, err.value.kid)
    assert "is the agency admitted" in err.value.reason
