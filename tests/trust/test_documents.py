"""Signed trust documents: round-trips, canonical JSON, and forgeries refused with typed errors."""

from __future__ import annotations

import copy
import json
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from protocol.keys import SigningKey
from protocol.trust import (
    ROOT,
    MembershipCertificate,
    MembershipRequest,
    RevocationEntry,
    RevocationList,
    Subscriptions,
    TopicFilter,
    canonical_json,
    sign_document,
    verify_document,
)
from schemas import to_epoch_ms
from schemas.errors import SignatureInvalid, TrustError, UnknownIssuer
from tests.trust._support import (
    DAY,
    ITA,
    ITA_ENC,
    MLT,
    MS,
    NOW,
    ROOT_KEY,
    bundle,
    cert,
    entry,
    revocations,
    sign_raw,
    signing_key,
    store,
)

REQUEST = MembershipRequest(
    agency="ITA-GDF",
    name="Fictional Italian node",
    country="ITA",
    signing_key=ITA.public.raw.hex(),
    encryption_key=ITA_ENC.public.raw.hex(),
)
SUBSCRIPTIONS = Subscriptions(
    agency="ITA-GDF",
    seq=4,
    issued=NOW,
    filters=[
        TopicFilter(route="central-med", categories=["routes"], kinds=["alert"]),
        TopicFilter(route="*"),
    ],
)
LOST = RevocationEntry(agency="MLT-AFM", kid=MLT.kid, reason="lost laptop", revoked_at=NOW)
WHOLE = RevocationEntry(agency="LBY-DCIM", reason="left the federation", revoked_at=NOW - DAY)
# (document, key that signs it, signer name)
KINDS: dict[str, tuple[BaseModel, SigningKey, str]] = {
    "membership-request": (REQUEST, ITA, "ITA-GDF"),
    "membership-certificate": (cert(groups=["bali-process", "med-coastal"]), ROOT_KEY, ROOT),
    "key-bundle": (bundle("ITA-GDF", 3, entry(), entry(not_after=NOW + 90 * DAY)), ITA, "ITA-GDF"),
    "revocation-list": (revocations(7, LOST, WHOLE), ROOT_KEY, ROOT),
    "empty-revocation-list": (revocations(1), ROOT_KEY, ROOT),
    "subscriptions": (SUBSCRIPTIONS, ITA, "ITA-GDF"),
}
PROPERTY = settings(max_examples=50, deadline=None)


def _reorder(value: Any, rng: random.Random) -> Any:
    """The same JSON value with every object's keys in a random order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _reorder(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_reorder(v, rng) for v in value]
    return value


def _signed_cert() -> dict[str, Any]:
    return sign_document(cert(), ROOT_KEY, ROOT)


# --- round-trips and canonical JSON -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_kind_round_trips(name: str) -> None:
    """A document signed then verified comes back equal, with the signer and kid recorded."""
    doc, key, signer = KINDS[name]
    signed = sign_document(doc, key, signer)
    assert {"signer": signer, "kid": key.kid} == {
        k: v for k, v in signed["signature"].items() if k != "ed25519"
    }
    assert doc == verify_document(signed, type(doc), key.public, signer)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_reformatted_signed_file_still_verifies(name: str, tmp_path: Path) -> None:
    """Indenting the file and reversing every object's key order does not break the signature."""
    doc, key, signer = KINDS[name]
    path = tmp_path / "signed.json"
    reordered = _reorder(sign_document(doc, key, signer), random.Random(name))
    path.write_text(json.dumps(reordered, indent=7, ensure_ascii=True) + "\n\n")
    assert doc == verify_document(json.loads(path.read_text()), type(doc), key.public, signer)


@given(
    rng=st.randoms(use_true_random=False),
    indent=st.none() | st.integers(0, 8),
    ascii_only=st.booleans(),
)
@PROPERTY
def test_any_json_layout_of_a_signed_certificate_verifies(
    rng: random.Random, indent: int | None, ascii_only: bool
) -> None:
    """Whatever the key order, indentation or escaping of the file, the certificate verifies."""
    doc = cert(name="Guardia di Finanza – Nodo Sud")
    text = json.dumps(
        _reorder(sign_document(doc, ROOT_KEY, ROOT), rng), indent=indent, ensure_ascii=ascii_only
    )
    assert doc == verify_document(json.loads(text), MembershipCertificate, ROOT_KEY.public, ROOT)


def test_canonical_json_is_sorted_compact_utf8() -> None:
    """canonical_json sorts keys at every level, drops whitespace and keeps UTF-8 as is."""
    value = {"b": 1, "a": [3, {"é": None, "c": "ü"}], "A": True}
    expected = '{"A":true,"a":[3,{"c":"ü","é":null}],"b":1}'.encode()
    assert expected == canonical_json(value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)


@given(value=json_values, rng=st.randoms(use_true_random=False))
@PROPERTY
def test_canonical_json_is_stable_under_key_order(value: Any, rng: random.Random) -> None:
    """Any JSON value gives the same canonical bytes whatever order its objects were built in."""
    assert canonical_json(value) == canonical_json(_reorder(value, rng))
    assert value == json.loads(canonical_json(value))


def test_signature_covers_domain_and_canonical_json() -> None:
    """The signature is Ed25519 over 'palermo/v1/trust/<kind>\\0' and the canonical JSON."""
    doc = cert()
    body = doc.model_dump(mode="json", exclude_none=True)
    assert sign_raw(body, ROOT_KEY, ROOT) == sign_document(doc, ROOT_KEY, ROOT)


# --- wrong signer --------------------------------------------------------------------------------


def test_agency_key_claiming_to_be_root_is_unknown_issuer() -> None:
    """A certificate signed by an agency key but labelled as the root's is refused."""
    with pytest.raises(UnknownIssuer, match="pinned the right federation root"):
        store().add_certificate(sign_document(cert(), ITA, ROOT))


def test_other_root_is_unknown_issuer() -> None:
    """A certificate from another federation's root is refused before its signature is checked."""
    with pytest.raises(UnknownIssuer):
        store().add_certificate(sign_document(cert(), signing_key(ROOT, "other"), ROOT))


def test_root_key_under_another_signer_name_is_unknown_issuer() -> None:
    """The root's own signature labelled with an agency's name is not the root's statement."""
    with pytest.raises(UnknownIssuer):
        verify_document(
            sign_document(cert(), ROOT_KEY, "ITA-GDF"), MembershipCertificate, ROOT_KEY.public, ROOT
        )


def test_root_kid_on_another_keys_signature_is_signature_invalid() -> None:
    """A signature block naming the root kid but made with another key does not verify."""
    signed = sign_document(cert(), signing_key(ROOT, "impostor"), ROOT)
    signed["signature"]["kid"] = ROOT_KEY.kid
    with pytest.raises(SignatureInvalid):
        store().add_certificate(signed)


def test_flipped_signature_bit_is_signature_invalid() -> None:
    """One bit of the signature changed: refused."""
    signed = _signed_cert()
    sig = bytearray.fromhex(signed["signature"]["ed25519"])
    sig[10] ^= 0x01
    signed["signature"]["ed25519"] = sig.hex()
    with pytest.raises(SignatureInvalid):
        store().add_certificate(signed)


def test_truncated_signature_is_signature_invalid() -> None:
    """A signature of the wrong length is a failed signature, not a crash."""
    signed = _signed_cert()
    signed["signature"]["ed25519"] = signed["signature"]["ed25519"][:64]
    with pytest.raises(SignatureInvalid):
        store().add_certificate(signed)


# --- altered fields ------------------------------------------------------------------------------

ALTERED: dict[str, Any] = {
    "kind": "key-bundle",
    "serial": 2,
    "agency": "MLT-AFM",
    "name": "Fictional Italian node (new)",
    "country": "LBY",
    "groups": ["bali-process", "med-coastal"],
    "accreditation": "restricted",
    "signing_key": MLT.public.raw.hex(),
    "not_before": to_epoch_ms(NOW - 30 * DAY - MS),
    "not_after": to_epoch_ms(NOW + 3650 * DAY),
}


def test_alterations_cover_every_certificate_field() -> None:
    """The alteration table names every top-level field of a certificate."""
    assert set(MembershipCertificate.model_fields) == set(ALTERED)


@pytest.mark.parametrize("field", sorted(ALTERED))
def test_altered_certificate_field_is_signature_invalid(field: str) -> None:
    """Any top-level field changed (to another valid value) after signing is refused."""
    signed = _signed_cert()
    assert ALTERED[field] != signed["document"][field]
    signed["document"][field] = ALTERED[field]
    with pytest.raises(SignatureInvalid):
        store().add_certificate(signed)


def test_removed_defaulted_field_is_signature_invalid() -> None:
    """Dropping a field the schema would default (groups) still breaks the signature."""
    signed = _signed_cert()
    del signed["document"]["groups"]
    with pytest.raises(SignatureInvalid):
        store().add_certificate(signed)


def test_altered_nested_field_is_signature_invalid() -> None:
    """A key bundle whose entry's validity was extended after signing is refused."""
    signed = sign_document(bundle(), ITA, "ITA-GDF")
    signed["document"]["keys"][0]["not_after"] += 1
    with pytest.raises(SignatureInvalid):
        store().add_bundle(signed)


# --- malformed signed documents ------------------------------------------------------------------

SIGNED = _signed_cert()
MALFORMED: dict[str, Any] = {
    "no signature block": {"document": SIGNED["document"]},
    "bare document": SIGNED["document"],
    "signature is null": {**SIGNED, "signature": None},
    "signature is text": {**SIGNED, "signature": SIGNED["signature"]["ed25519"]},
    "no ed25519": {**SIGNED, "signature": {"signer": ROOT, "kid": ROOT_KEY.kid}},
    "no kid": {**SIGNED, "signature": {"signer": ROOT, "ed25519": "00" * 64}},
    "ed25519 not hex": {**SIGNED, "signature": {**SIGNED["signature"], "ed25519": "zz" * 64}},
    "ed25519 a number": {**SIGNED, "signature": {**SIGNED["signature"], "ed25519": 7}},
    "not a mapping": [SIGNED["document"], SIGNED["signature"]],
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_missing_signature_block_is_a_helpful_trust_error(case: str) -> None:
    """Without a complete signature block the error says what a signed document looks like."""
    with pytest.raises(TrustError, match="needs 'document' and 'signature'") as info:
        verify_document(MALFORMED[case], MembershipCertificate, ROOT_KEY.public, ROOT)
    assert TrustError is type(info.value)


def test_document_without_kind_is_refused() -> None:
    """A properly signed body with no kind is refused (its domain is unknown)."""
    body = cert().model_dump(mode="json")
    del body["kind"]
    with pytest.raises(TrustError, match="no 'kind'"):
        verify_document(
            sign_raw(body, ROOT_KEY, ROOT), MembershipCertificate, ROOT_KEY.public, ROOT
        )


def test_model_without_kind_cannot_be_signed() -> None:
    """Only documents with a kind can be signed: an entry alone has no domain."""
    with pytest.raises(TrustError, match="no 'kind'"):
        sign_document(entry(), ITA, "ITA-GDF")


def _with_extra(body: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    body = copy.deepcopy(body)
    target: Any = body
    for part in path:
        target = target[part]
    target["comment"] = "added before signing"
    return body


EXTRA: dict[str, tuple[BaseModel, SigningKey, str, tuple[str | int, ...]]] = {
    "certificate": (cert(), ROOT_KEY, ROOT, ()),
    "bundle entry": (bundle(), ITA, "ITA-GDF", ("keys", 0)),
    "revocation entry": (revocations(2, LOST), ROOT_KEY, ROOT, ("entries", 0)),
    "request": (REQUEST, ITA, "ITA-GDF", ()),
}


@pytest.mark.parametrize("case", sorted(EXTRA))
def test_unknown_field_in_properly_signed_document_is_schema_error(case: str) -> None:
    """A field the schema does not know is refused even under a valid signature."""
    doc, key, signer, path = EXTRA[case]
    body = _with_extra(doc.model_dump(mode="json", exclude_none=True), path)
    signed = sign_raw(body, key, signer)
    with pytest.raises(TrustError, match=r"fails its schema at .*comment") as info:
        verify_document(signed, type(doc), key.public, signer)
    assert TrustError is type(info.value)


def test_properly_signed_invalid_value_is_schema_error() -> None:
    """A signed certificate with an invalid country is refused by the schema."""
    body = cert().model_dump(mode="json") | {"country": "XXX"}
    with pytest.raises(TrustError, match="schema at country"):
        store().add_certificate(sign_raw(body, ROOT_KEY, ROOT))


def test_non_canonical_values_are_refused() -> None:
    """A time written as RFC 3339 text validates but is not canonical: refused."""
    body = cert().model_dump(mode="json") | {"not_before": "2026-10-24T00:00:00Z"}
    with pytest.raises(TrustError, match="not in canonical form"):
        store().add_certificate(sign_raw(body, ROOT_KEY, ROOT))


def test_document_of_another_kind_is_refused() -> None:
    """A validly signed membership request is not a key bundle (kinds are domain-separated)."""
    signed = sign_document(REQUEST, ITA, "ITA-GDF")
    with pytest.raises(TrustError, match="schema at kind"):
        store().add_bundle(signed)


def test_revocation_list_of_a_certificate_is_refused() -> None:
    """A root-signed certificate presented as a revocation list is refused by the schema."""
    with pytest.raises(TrustError, match="schema"):
        store().set_revocations(_signed_cert())


def test_exclude_none_keeps_agency_revocations_canonical() -> None:
    """An agency-wide revocation (no kid) is signed without a kid field and verifies."""
    signed = sign_document(revocations(2, WHOLE), ROOT_KEY, ROOT)
    assert "kid" not in signed["document"]["entries"][0]
    held = verify_document(signed, RevocationList, ROOT_KEY.public, ROOT)
    assert held.entries[0].kid is None


def test_explicit_null_kid_is_not_canonical() -> None:
    """A signed revocation entry with an explicit null kid is refused as non-canonical."""
    body = revocations(2, WHOLE).model_dump(mode="json")
    assert body["entries"][0]["kid"] is None
    with pytest.raises(TrustError, match="not in canonical form"):
        verify_document(sign_raw(body, ROOT_KEY, ROOT), RevocationList, ROOT_KEY.public, ROOT)


def test_certificate_times_round_trip_to_the_millisecond() -> None:
    """Validity times keep millisecond precision through signing and verification."""
    doc = cert(not_before=NOW + timedelta(microseconds=1_234_567))
    back = verify_document(sign_document(doc, ROOT_KEY, ROOT), type(doc), ROOT_KEY.public, ROOT)
    assert NOW + timedelta(milliseconds=1234) == back.not_before
